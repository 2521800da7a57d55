// ytmp3 page, sign-in: shown only when the service asks for a key (YTMP3_AUTH=keys).
// The key is sent once, to POST /session; what the browser keeps is an HttpOnly cookie
// that scripts cannot read.
"use strict";

(() => {
  const signinForm = document.getElementById("signin-form");
  const keyInput = document.getElementById("api-key");
  const signinMessage = document.getElementById("signin-message");
  const account = document.getElementById("account");
  const accountName = document.getElementById("account-name");
  const signout = document.getElementById("signout");
  const convertForm = document.getElementById("convert-form");

  function show(state) {
    const needsKey = state.auth === "keys" && !state.signed_in;
    signinForm.hidden = !needsKey;
    convertForm.hidden = needsKey;
    account.hidden = !(state.auth === "keys" && state.signed_in);
    accountName.textContent = state.name || "";
    if (needsKey) keyInput.focus();
  }

  async function session(method, body) {
    const response = await fetch("/session", {
      method,
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    let answer = null;
    try { answer = await response.json(); } catch (_) { /* not JSON */ }
    return { response, answer };
  }

  async function refresh() {
    try {
      const { response, answer } = await session("GET");
      if (response.ok && answer) show(answer.data);
    } catch (_) { /* the page works on; the next answer tells */ }
  }

  signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    signinMessage.textContent = "";
    const key = keyInput.value.trim();
    if (!key) {
      signinMessage.textContent = "Paste your API key first.";
      return;
    }
    try {
      const { response, answer } = await session("POST", { key });
      if (response.ok && answer) {
        keyInput.value = "";
        show(answer.data);
        document.getElementById("video_url").focus();
      } else {
        signinMessage.textContent = (answer && answer.message) || "That key did not work.";
      }
    } catch (_) {
      signinMessage.textContent = "The service could not be reached. Please try again.";
    }
  });

  signout.addEventListener("click", async () => {
    try { await session("DELETE"); } finally { refresh(); }
  });

  // app.js says so when an answer was 401: the session ended (signed out elsewhere, revoked).
  document.addEventListener("ytmp3:signin-needed", refresh);
  refresh();
})();
