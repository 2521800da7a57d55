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
const playlistTemplate = document.getElementById("playlist-template");
const trackTemplate = document.getElementById("track-template");
const choice = document.getElementById("choice");
const chooseVideo = document.getElementById("choose-video");
const choosePlaylist = document.getElementById("choose-playlist");
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

// POST a JSON body; the answer and its JSON (null when it is not JSON: a fallback
// message then).
async function postJson(path, payload) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
  });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  return { response, body };
}

function post(url, bitrate) {
  return postJson("/submit", { video_url: url, bitrate });
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
  const kind = linkKind(url);
  if (kind === "both") {
    // a video in a list: the person says which they want
    showFormMessage("");
    choice.hidden = false;
    chooseVideo.focus();
    return;
  }
  choice.hidden = true;
  if (kind === "playlist") {
    await send(url, "playlist");
    return;
  }
  await send(url, "video");
}

async function send(url, kind) {
  sending = true;
  button.setAttribute("aria-disabled", "true");
  button.textContent = "Sending…";
  showFormMessage("");
  try {
    const { response, body } = kind === "playlist"
      ? await postPlaylist(url, chosenBitrate())
      : await post(url, chosenBitrate());
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
    if (kind === "playlist") followPlaylist(body.data, url);
    else follow(body.data, url);
    if (known) {
      const what = kind === "playlist" ? "playlist" : "video";
      showFormMessage(`This ${what} is already in your list below.`, "info");
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

// Follow a conversion or a playlist over its event stream: `render` at each change,
// `poll` instead when too many streams are open or the server refuses one.
function stream(item, url, render, poll) {
  if (item.finished || item.source || item.timer) return;
  if (streams >= MAX_STREAMS) {
    poll(item);
    return;
  }
  const source = new EventSource(url);
  item.source = source;
  streams += 1;
  source.onmessage = (message) => {
    let data = null;
    try { data = JSON.parse(message.data); } catch (_) { return; }
    note(item, "");
    render(item, data);
  };
  source.addEventListener("expired", () => {
    stopWatching(item);
    expired(item);
  });
  source.onerror = () => {
    if (item.finished) return;
    if (source.readyState === EventSource.CLOSED) {
      // The server refused the stream (unknown id, service down): ask once, then retry.
      stopWatching(item);
      poll(item);
    } else {
      note(item, "Connection lost. Reconnecting…");
    }
  };
}

function watch(job) {
  stream(job, `/status/${encodeURIComponent(job.id)}/events`, render, poll);
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
  ask(job, `/status/${encodeURIComponent(job.id)}`, render, watch);
}

// Ask once after a pause, `render` the answer, then `watch` again (its stream, or another
// ask): for a conversion or a playlist whose stream could not be had.
function ask(item, url, render, watch) {
  item.timer = window.setTimeout(async () => {
    item.timer = null;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.status === 404) {
        expired(item);
        return;
      }
      const body = await response.json();
      if (response.ok && body.data) {
        note(item, "");
        render(item, body.data);
      } else {
        note(item, body.message || fallbackMessage(response.status));
      }
    } catch (_) {
      note(item, "The service could not be reached. Still trying…");
    }
    if (!item.finished) watch(item);
  }, POLL_MS);
}

function expired(job) {
  job.finished = true;
  job.item.dataset.status = "failed";
  job.item.querySelector(".job-status").textContent = "Expired";
  job.item.querySelector(".job-percent").textContent = "";
  const link = job.item.querySelector(job.playlist ? ".playlist-zip" : ".job-download");
  link.hidden = true;
  job.item.querySelector(".job-retry").hidden = false;
  note(job, job.playlist
    ? "This playlist has expired. Convert it again."
    : "This conversion has expired. Convert the video again.");
}

function retry(job) {
  again(job, () => post(job.url, job.bitrate), (data) => follow(data, job.url, job));
}

// "Try again" of a conversion or a playlist: `send` submits it anew, `follow` takes the
// answer's data; one press at a time.
async function again(item, send, follow) {
  const retryButton = item.item.querySelector(".job-retry");
  if (retryButton.getAttribute("aria-disabled")) return;
  retryButton.setAttribute("aria-disabled", "true");
  try {
    const { response, body } = await send();
    if (!response.ok || !body || !body.data) {
      note(item, body && body.message ? body.message : fallbackMessage(response.status));
      return;
    }
    follow(body.data);
    (jobs.get(body.data.id) || item).item.focus();
  } catch (_) {
    note(item, "The service could not be reached. Check your connection and try again.");
  } finally {
    retryButton.removeAttribute("aria-disabled");
  }
}

// "video", "playlist" (a playlist or album link) or "both" (a watch link with &list=).
// The server decides what is valid; this only picks the route to ask.
function linkKind(text) {
  let url;
  try { url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`); } catch (_) { return "video"; }
  const list = url.searchParams.get("list");
  if (!list) return "video";
  return url.pathname.replace(/\/$/, "") === "/playlist" ? "playlist" : "both";
}

function postPlaylist(url, bitrate) {
  return postJson("/playlists", { playlist_url: url, bitrate });
}

function choose(kind) {
  const url = input.value.trim();
  choice.hidden = true;
  if (!sending && url) send(url, kind);
}

chooseVideo.addEventListener("click", () => choose("video"));
choosePlaylist.addEventListener("click", () => choose("playlist"));
choice.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    choice.hidden = true;
    input.focus();
  }
});
input.addEventListener("input", () => { choice.hidden = true; });

const PLAYLIST_PHASES = {
  resolving: "Reading the playlist",
  converting: "Converting",
  done: "Ready",
  failed: "Failed",
};

function followPlaylist(data, url, replacing) {
  let list = jobs.get(data.id);
  if (!list) {
    if (replacing) drop(replacing);
    list = { item: playlistTemplate.content.firstElementChild.cloneNode(true), rows: new Map() };
    Object.assign(list, {
      id: data.id, url, bitrate: data.bitrate, phase: null, finished: false, playlist: true,
    });
    list.item.dataset.id = data.id;
    list.item.querySelector(".job-retry").onclick = () => retryPlaylist(list);
    jobList.prepend(list.item);
    jobs.set(data.id, list);
    section.hidden = false;
    renderPlaylist(list, { ...data, status: "resolving", entries: [], total: 0, done: 0, failed: 0, progress: 0 });
  }
  watchPlaylist(list);
}

function renderPlaylist(list, data) {
  const item = list.item;
  const name = data.title || list.title || `Playlist ${data.playlist_id}`;
  if (data.title) list.title = data.title;
  const failed = data.status === "failed";
  const done = data.status === "done";
  const progress = Math.max(0, Math.min(100, Math.round(data.progress || 0)));
  const phase = PLAYLIST_PHASES[data.status] || data.status;
  item.querySelector(".job-title").textContent = name;
  const meta = [`${data.bitrate || list.bitrate} kbit/s`];
  if (data.total) meta.push(`${data.total} tracks`);
  if (data.done || data.failed) meta.push(`${data.done} ready`);
  if (data.failed) meta.push(`${data.failed} failed`);
  if (data.truncated) meta.push("only the first ones");
  item.querySelector(".job-meta").textContent = meta.join(" · ");
  const bar = item.querySelector(".bar");
  bar.setAttribute("aria-valuenow", String(progress));
  bar.setAttribute("aria-valuetext", failed ? "Failed" : `${phase}, ${progress}%`);
  bar.setAttribute("aria-label", `Progress of ${name}`);
  item.querySelector(".bar-fill").style.width = `${failed ? 100 : progress}%`;
  item.querySelector(".job-status").textContent = phase;
  item.querySelector(".job-percent").textContent = failed ? "" : `${progress}%`;
  item.querySelector(".job-error").textContent = data.error ? data.error.message : "";
  item.dataset.status = data.status === "resolving" ? "queued" : data.status;
  const tracks = item.querySelector(".tracks");
  for (const entry of data.entries || []) {
    let row = list.rows.get(entry.position);
    if (!row) {
      row = trackTemplate.content.firstElementChild.cloneNode(true);
      list.rows.set(entry.position, row);
      tracks.append(row);
    }
    renderTrack(row, entry);
  }
  const zip = item.querySelector(".playlist-zip");
  if (done) {
    zip.href = `/playlists/${encodeURIComponent(list.id)}/zip`;
    zip.setAttribute("aria-label", `Download all of ${name} (ZIP)`);
  }
  zip.hidden = !done;
  item.querySelector(".job-retry").hidden = !failed;
  if (list.phase !== data.status) {
    list.phase = data.status;
    if (done) announce(`${name} is ready: ${data.done} of ${data.total} tracks.`);
    else if (failed) announce(`${name} failed. ${data.error ? data.error.message : ""}`);
    else announce(`${name}: ${phase}.`);
  }
  if (done || failed) {
    list.finished = true;
    stopWatching(list);
  }
}

function renderTrack(row, entry) {
  const title = entry.title || `Video ${entry.video_id}`;
  const progress = Math.max(0, Math.min(100, Math.round(entry.progress || 0)));
  const failed = entry.status === "failed";
  row.dataset.status = entry.status;
  row.querySelector(".track-title").textContent = `${entry.position}. ${title}`;
  row.querySelector(".track-state").textContent = failed
    ? (entry.error ? entry.error.message : "Failed")
    : entry.status === "done" ? "Ready" : `${PHASES[entry.status] || entry.status} ${progress}%`;
  const bar = row.querySelector(".bar");
  bar.setAttribute("aria-valuenow", String(progress));
  bar.setAttribute("aria-label", `Progress of ${title}`);
  row.querySelector(".bar-fill").style.width = `${failed ? 100 : progress}%`;
  const link = row.querySelector(".track-download");
  if (entry.download_url) {
    link.href = entry.download_url;
    link.setAttribute("aria-label", `Download MP3 of ${title}`);
  }
  link.hidden = !entry.download_url;
}

function watchPlaylist(list) {
  stream(list, `/playlists/${encodeURIComponent(list.id)}/events`, renderPlaylist, pollPlaylist);
}

function pollPlaylist(list) {
  ask(list, `/playlists/${encodeURIComponent(list.id)}`, renderPlaylist, watchPlaylist);
}

function retryPlaylist(list) {
  again(
    list,
    () => postPlaylist(list.url, list.bitrate),
    (data) => followPlaylist(data, list.url, data.id === list.id ? null : list),
  );
}

form.addEventListener("submit", onSubmit);
