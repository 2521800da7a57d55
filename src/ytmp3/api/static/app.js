// ytmp3 page: submit a link, follow each conversion over Server-Sent Events.
"use strict";

const STATUS_WORDS = {
  queued: "Waiting in line",
  downloading: "Downloading",
  converting: "Converting to MP3",
  done: "Ready",
  failed: "Failed",
};

const form = document.getElementById("convert-form");
const input = document.getElementsByName("video_url")[0];
const bitrate = document.getElementById("bitrate");
const button = document.getElementById("convert");
const formMessage = document.getElementById("form-message");
const jobList = document.getElementById("jobs");
const template = document.getElementById("job-template");
const followed = new Map();

function showFormError(text) {
  formMessage.textContent = text || "";
  input.setAttribute("aria-invalid", text ? "true" : "false");
}

async function submit(event) {
  event.preventDefault();
  const url = input.value.trim();
  if (!url) {
    showFormError("Paste the link of a YouTube video first.");
    input.focus();
    return;
  }
  showFormError("");
  button.disabled = true;
  try {
    const response = await fetch("/submit", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ video_url: url, bitrate: Number(bitrate.value) }),
    });
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: handled below */ }
    if (!response.ok || !body) {
      showFormError(body && body.message ? body.message
        : "The service is unavailable right now. Please try again in a moment.");
      return;
    }
    input.value = "";
    follow(body.data);
  } catch (_) {
    showFormError("The service could not be reached. Check your connection and try again.");
  } finally {
    button.disabled = false;
  }
}

function follow(data) {
  let item = followed.get(data.id);
  if (!item) {
    item = template.content.firstElementChild.cloneNode(true);
    item.dataset.id = data.id;
    jobList.prepend(item);
    followed.set(data.id, item);
  }
  render(item, { ...data, progress: data.progress || 0 });
  listen(item, data);
}

function render(item, data) {
  item.querySelector(".job-title").textContent = data.title || `Video ${data.video_id} (${data.bitrate} kbit/s)`;
  const bar = item.querySelector("progress");
  bar.value = data.progress || 0;
  bar.setAttribute("aria-label", `Progress of ${data.title || data.video_id}`);
  item.querySelector(".job-status").textContent = STATUS_WORDS[data.status] || data.status;
  item.querySelector(".job-percent").textContent = data.status === "failed" ? "" : `${data.progress || 0}%`;
  item.querySelector(".job-error").textContent = data.error ? data.error.message : "";
  item.classList.toggle("done", data.status === "done");
  const link = item.querySelector(".job-download");
  if (data.status === "done") {
    link.href = `/download-music/${data.filename || data.id}`;
    link.hidden = false;
  }
}

function listen(item, data) {
  if (item.source) return;
  const source = new EventSource(`/status/${encodeURIComponent(data.id)}/events`);
  item.source = source;
  source.onmessage = (message) => {
    const state = JSON.parse(message.data);
    state.filename = data.filename || data.id;
    render(item, state);
    if (state.status === "done" || state.status === "failed") {
      source.close();
      item.source = null;
    }
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) item.source = null;
  };
}

form.addEventListener("submit", submit);
