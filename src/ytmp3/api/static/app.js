// ytmp3 page: submit a link, follow each conversion over Server-Sent Events.
// Hand-written, no build step, no third-party code: the page talks to this service only.
"use strict";

const PHASES = {
  queued: "Waiting in line",
  downloading: "Downloading",
  converting: "Converting to MP3",
  done: "Ready",
  failed: "Failed",
};
const STEP_ORDER = ["queued", "downloading", "converting", "done"];
// Browsers open at most 6 connections to one origin over HTTP/1.1: past this many
// open event streams, further conversions are followed by polling instead.
const MAX_STREAMS = 4;
const POLL_MS = 1500;

const form = document.getElementById("convert-form");
const input = form.elements.namedItem("video_url");
const button = document.getElementById("convert");
const formMessage = document.getElementById("form-message");
const section = document.querySelector(".jobs-section");
const jobList = document.getElementById("jobs");
const template = document.getElementById("job-template");
const announcer = document.getElementById("announcer");
const jobs = new Map(); // id -> {item, filename, url, bitrate, phase, source, timer}
let streams = 0;
let sending = false;
let announceTimer = 0;
let messageTimer = 0;

// What to say when the answer carries no message of its own (a proxy's HTML page, say).
function fallbackMessage(status) {
  if (status === 429) return "Too many conversions requested. Please wait a minute and try again.";
  if (status === 413) return "That link is far too long to be a YouTube link.";
  if (status === 507) return "The server has no room for new MP3s right now. Please try again later.";
  if (status >= 500) return "The service is unavailable right now. Please try again in a moment.";
  return "Something went wrong. Please try again.";
}

function announce(text) {
  // Cleared first, so the same sentence twice in a row is still read out.
  window.clearTimeout(announceTimer);
  announcer.textContent = "";
  announceTimer = window.setTimeout(() => { announcer.textContent = text; }, 50);
}

// kind: "error" about the link itself, "problem" with the service, "info", or none to clear.
function showFormMessage(text, kind) {
  window.clearTimeout(messageTimer);
  formMessage.textContent = "";
  formMessage.className = `message ${kind === "info" ? "info" : "error"}`;
  input.setAttribute("aria-invalid", kind === "error" && text ? "true" : "false");
  if (text) messageTimer = window.setTimeout(() => { formMessage.textContent = text; }, 30);
}

function chosenBitrate() {
  const checked = form.querySelector('input[name="bitrate"]:checked');
  return checked ? Number(checked.value) : 192;
}

async function post(url, bitrate) {
  const response = await fetch("/submit", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ video_url: url, bitrate }),
  });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: a fallback message below */ }
  return { response, body };
}

async function onSubmit(event) {
  event.preventDefault();
  if (sending) return;
  const url = input.value.trim();
  if (!url) {
    showFormMessage("Paste the link of a YouTube video first.", "error");
    input.focus();
    return;
  }
  sending = true;
  button.setAttribute("aria-disabled", "true");
  button.textContent = "Sending…";
  showFormMessage("");
  try {
    const { response, body } = await post(url, chosenBitrate());
    if (!response.ok || !body || !body.data || !body.data.id) {
      if (response.status === 401) document.dispatchEvent(new Event("ytmp3:signin-needed"));
      const text = body && body.message ? body.message : fallbackMessage(response.status);
      // A wrong link is fixed in the field; for anything else the button is tried again.
      const aboutLink = response.status === 400 || response.status === 422 || response.status === 413;
      showFormMessage(text, aboutLink ? "error" : "problem");
      if (aboutLink) input.focus();
      return;
    }
    input.value = "";
    const known = jobs.has(body.data.id);
    follow(body.data, url);
    if (known) {
      showFormMessage("This video is already in your list below.", "info");
      jobs.get(body.data.id).item.focus();
    }
  } catch (_) {
    showFormMessage("The service could not be reached. Check your connection and try again.", "problem");
  } finally {
    sending = false;
    button.removeAttribute("aria-disabled");
    button.textContent = "Convert to MP3";
  }
}

function follow(data, url, replacing) {
  let job = jobs.get(data.id);
  if (job) {
    if (replacing && replacing !== job) drop(replacing);
  } else {
    job = replacing || { item: template.content.firstElementChild.cloneNode(true) };
    if (replacing) jobs.delete(replacing.id);
    Object.assign(job, {
      id: data.id, filename: data.filename || data.id, url, bitrate: data.bitrate,
      phase: null, finished: false,
    });
    job.item.dataset.id = data.id;
    job.item.querySelector(".job-retry").onclick = () => retry(job);
    if (!replacing) jobList.prepend(job.item);
    jobs.set(data.id, job);
    section.hidden = false;
    // A placeholder until the stream's first event, which carries the whole current state.
    const status = data.status === "done" || data.status === "failed" ? "queued" : data.status;
    render(job, { ...data, status, progress: 0, error: null, title: null });
  }
  watch(job);
}

function drop(job) {
  stopWatching(job);
  jobs.delete(job.id);
  job.item.remove();
}

function label(job, data) {
  return data.title || job.title || `Video ${data.video_id}`;
}

function render(job, data) {
  const item = job.item;
  if (data.title) job.title = data.title;
  const name = label(job, data);
  const progress = Math.max(0, Math.min(100, Math.round(data.progress || 0)));
  const failed = data.status === "failed";
  const done = data.status === "done";
  const phase = PHASES[data.status] || data.status;

  item.querySelector(".job-title").textContent = name;
  const meta = [`${data.bitrate || job.bitrate} kbit/s`];
  if (data.duration) meta.push(clock(data.duration));
  if (data.size_bytes) meta.push(`${(data.size_bytes / 1e6).toFixed(1)} MB`);
  item.querySelector(".job-meta").textContent = meta.join(" · ");

  const bar = item.querySelector(".bar");
  bar.setAttribute("aria-valuenow", String(progress));
  bar.setAttribute("aria-valuetext", failed ? "Failed" : `${phase}, ${progress}%`);
  bar.setAttribute("aria-label", `Progress of ${name}`);
  item.querySelector(".bar-fill").style.width = `${failed ? 100 : progress}%`;
  item.querySelector(".job-status").textContent = phase;
  item.querySelector(".job-percent").textContent = failed ? "" : `${progress}%`;

  // A failure leaves the steps where it happened; the card's colour tells the rest.
  const reached = STEP_ORDER.indexOf(data.status);
  if (!failed) {
    item.querySelectorAll(".steps li").forEach((step, index) => {
      step.classList.toggle("past", reached > index || done);
      if (index === reached && !done) step.setAttribute("aria-current", "step");
      else step.removeAttribute("aria-current");
    });
  }

  item.querySelector(".job-error").textContent = data.error ? data.error.message : "";
  item.dataset.status = data.status;
  const link = item.querySelector(".job-download");
  if (done) {
    link.href = `/download-music/${encodeURIComponent(job.filename)}`;
    link.setAttribute("aria-label", `Download MP3 of ${name}`);
  }
  link.hidden = !done;
  item.querySelector(".job-retry").hidden = !failed;

  if (job.phase !== data.status) {
    job.phase = data.status;
    if (done) announce(`${name} is ready to download.`);
    else if (failed) announce(`${name} failed. ${data.error ? data.error.message : ""}`);
    else announce(`${name}: ${phase}.`);
  }
  if (done || failed) {
    job.finished = true;
    stopWatching(job);
  }
}

function clock(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function note(job, text) {
  job.item.querySelector(".job-error").textContent = text;
}

function watch(job) {
  if (job.finished || job.source || job.timer) return;
  if (streams >= MAX_STREAMS) {
    poll(job);
    return;
  }
  const source = new EventSource(`/status/${encodeURIComponent(job.id)}/events`);
  job.source = source;
  streams += 1;
  source.onmessage = (message) => {
    let data = null;
    try { data = JSON.parse(message.data); } catch (_) { return; }
    note(job, "");
    render(job, data);
  };
  source.addEventListener("expired", () => {
    stopWatching(job);
    expired(job);
  });
  source.onerror = () => {
    if (job.finished) return;
    if (source.readyState === EventSource.CLOSED) {
      // The server refused the stream (unknown id, service down): ask once, then retry.
      stopWatching(job);
      poll(job);
    } else {
      note(job, "Connection lost. Reconnecting…");
    }
  };
}

function stopWatching(job) {
  if (job.source) {
    job.source.close();
    job.source = null;
    streams -= 1;
  }
  if (job.timer) {
    window.clearTimeout(job.timer);
    job.timer = null;
  }
}

function poll(job) {
  job.timer = window.setTimeout(async () => {
    job.timer = null;
    try {
      const response = await fetch(`/status/${encodeURIComponent(job.id)}`, {
        headers: { Accept: "application/json" },
      });
      if (response.status === 404) {
        expired(job);
        return;
      }
      const body = await response.json();
      if (response.ok && body.data) {
        note(job, "");
        render(job, body.data);
      } else {
        note(job, body.message || fallbackMessage(response.status));
      }
    } catch (_) {
      note(job, "The service could not be reached. Still trying…");
    }
    if (!job.finished) watch(job);
  }, POLL_MS);
}

function expired(job) {
  job.finished = true;
  job.item.dataset.status = "failed";
  job.item.querySelector(".job-status").textContent = "Expired";
  job.item.querySelector(".job-percent").textContent = "";
  job.item.querySelector(".job-download").hidden = true;
  job.item.querySelector(".job-retry").hidden = false;
  note(job, "This conversion has expired. Convert the video again.");
}

async function retry(job) {
  const retryButton = job.item.querySelector(".job-retry");
  if (retryButton.getAttribute("aria-disabled")) return;
  retryButton.setAttribute("aria-disabled", "true");
  try {
    const { response, body } = await post(job.url, job.bitrate);
    if (!response.ok || !body || !body.data) {
      note(job, body && body.message ? body.message : fallbackMessage(response.status));
      return;
    }
    follow(body.data, job.url, job);
    (jobs.get(body.data.id) || job).item.focus();
  } catch (_) {
    note(job, "The service could not be reached. Check your connection and try again.");
  } finally {
    retryButton.removeAttribute("aria-disabled");
  }
}

form.addEventListener("submit", onSubmit);
