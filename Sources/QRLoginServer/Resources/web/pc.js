// The PC login page: shows a QR code for a login request signed with this browser's key, follows
// its state (SSE read through fetch streaming, long-poll as fallback), renews the code when it
// expires, and once confirmed keeps the token and shows the account. As an app's login screen
// (authorize.js) it names the app, offers a password instead, and once signed in goes back to
// the app rather than to the account.

import { call, authHeaders, learnClock, saveToken, currentToken, serverNow, browserName, formatTime, showView, ApiError, isTransient } from "./api.js";
import { appSignIn, finishMessage, finishWithPassword, finishWithQR, sendCode, finishWithCode } from "./authorize.js";
import { renderDevices, typeName } from "./devicelist.js";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["confirmed", "denied", "expired", "cancelled"]);
/// `?transport=poll` forces long-polling (tests use it; it is also the fallback).
const forcePoll = new URLSearchParams(location.search).get("transport") === "poll";
/// How often a signed-in page checks that its token still works (remote logout).
const SESSION_CHECK_MS = 4000;

let current = null; // { id, pollSecret, expiresAt, abort }
let countdownTimer = null;
let sessionTimer = null;

function setState(word, message) {
  $("state").textContent = word;
  $("countdown-wrap").hidden = !["pending", "scanned"].includes(word);
  // A finished code must not look scannable.
  $("qr-box").classList.toggle("faded", word !== "pending");
  document.body.dataset.state = word;
  if (message !== undefined) $("status-message").textContent = message;
}

function stopRequest() {
  current?.abort.abort();
  current = null;
  clearInterval(countdownTimer);
}

async function newCode() {
  stopRequest();
  showView($("login-view"));
  $("scan-info").hidden = true;
  $("renew").hidden = true;
  let created;
  try {
    const body = { device: { type: "web", name: browserName() } };
    // The server checks the request and names the app on the phone.
    if (appSignIn) body.authorize = appSignIn.query;
    created = await call("POST", "/api/v1/qr", { auth: "none", body });
  } catch (error) {
    setState("error", `Cannot start a login: ${error.message}`);
    $("renew").hidden = false;
    return;
  }
  const request = { id: created.id, pollSecret: created.pollSecret, expiresAt: created.expiresAt, abort: new AbortController(), state: "pending" };
  current = request;
  setState("pending", "");
  const image = $("qr");
  image.src = `/api/v1/qr/${encodeURIComponent(created.id)}/qr.svg`;
  image.dataset.requestId = created.id;
  startCountdown(request);
  follow(request);
}

function startCountdown(request) {
  clearInterval(countdownTimer);
  const tick = () => {
    if (current !== request) return;
    const left = Math.max(0, Math.round((Date.parse(request.expiresAt) - serverNow()) / 1000));
    $("countdown").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    // The server pushes `expired`; this is the safety net if that event is lost.
    if (left === 0 && Date.parse(request.expiresAt) + 3000 < serverNow() && !FINAL.has(request.state)) newCode();
  };
  tick();
  countdownTimer = setInterval(tick, 500);
}

/// Applies one status document of the request. Returns true when the request is final.
async function apply(request, status) {
  if (current !== request) return true;
  request.state = status.state;
  if (status.expiresAt) request.expiresAt = status.expiresAt;
  switch (status.state) {
    case "pending":
      setState("pending");
      return false;
    case "scanned":
      setState("scanned", "");
      $("scanner-name").textContent = status.scanner?.displayName ?? "your phone";
      $("match").textContent = String(status.match ?? "");
      $("scan-info").hidden = false;
      return false;
    case "confirmed":
      stopRequest();
      if (!status.token) {
        setState("error", "The login was confirmed but no token arrived. Try again.");
        $("renew").hidden = false;
        return true;
      }
      setState("confirmed", appSignIn ? `Confirmed. Taking you back to ${appSignIn.clientName}…` : "Confirmed. Signing in…");
      // An app's login screen keeps its token in memory only: it buys the redirect to the app
      // once, and the browser stays signed in to QRLogin only through the session cookie.
      if (appSignIn) {
        await returnToApp(status.token.accessToken, status.id);
      } else {
        await saveToken(status.token.accessToken, status.token.expiresAt);
        await showAccount();
      }
      return true;
    case "denied":
      stopRequest();
      $("scan-info").hidden = true;
      setState("denied", status.reason === "wrong_match"
        ? "Login declined: a wrong number was picked on the phone."
        : "Login declined on the phone.");
      $("renew").hidden = false;
      $("renew").focus();
      return true;
    case "cancelled":
      stopRequest();
      setState("cancelled", "This login request was cancelled.");
      $("renew").hidden = false;
      return true;
    case "expired":
      setState("expired", "The code expired. Here is a fresh one.");
      newCode();
      return true;
    default:
      return false;
  }
}

/// Handles a call that failed for the request as a whole (it is gone, expired, or not ours).
function failed(request, error) {
  if (current !== request) return;
  if (error instanceof ApiError && [401, 404, 409, 410].includes(error.status)) {
    setState("expired", "The code is no longer valid. Here is a fresh one.");
    newCode();
  } else {
    setState("error", `Lost contact with the server: ${error.message}`);
    stopRequest();
    $("renew").hidden = false;
  }
}

async function follow(request) {
  if (!forcePoll && "body" in Response.prototype && typeof ReadableStream === "function") {
    const outcome = await followStream(request);
    if (outcome !== "unsupported") return;
  }
  await followLongPoll(request);
}

/// Server-Sent Events through fetch (EventSource cannot send the auth headers). Reconnects
/// after an early end of stream; returns "unsupported" to fall back to long-poll when
/// streaming does not work at all.
async function followStream(request) {
  const path = `/api/v1/qr/${encodeURIComponent(request.id)}`;
  let gotEvent = false;
  for (let attempt = 0; current === request; attempt++) {
    let response;
    try {
      const headers = await authHeaders("GET", path, { token: request.pollSecret, scheme: "Bearer", accept: "text/event-stream" });
      response = await fetch(path, { headers, signal: request.abort.signal, cache: "no-store", credentials: "omit" });
    } catch (error) {
      if (error.name === "AbortError") return "done";
      if (!gotEvent) return "unsupported";
      await sleep(1000);
      continue;
    }
    learnClock(response);
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch { /* not JSON */ }
      // The server or its database is briefly away (another instance takes over): ask again.
      if (isTransient(response.status, problem) && attempt < 8) {
        await sleep(Math.min(5000, 250 * 2 ** attempt));
        continue;
      }
      failed(request, new ApiError(response.status, problem));
      return "done";
    }
    if (!response.body || !(response.headers.get("Content-Type") || "").startsWith("text/event-stream")) return "unsupported";
    try {
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trimStart();
          }
          if (!data) continue;
          gotEvent = true;
          const parsed = JSON.parse(data);
          if (name === "error") {
            failed(request, new ApiError(parsed.status ?? 410, parsed));
            return "done";
          }
          if (await apply(request, parsed)) return "done";
        }
      }
    } catch (error) {
      if (error.name === "AbortError" || current !== request) return "done";
      if (!gotEvent) return "unsupported";
    }
    // The stream ended before a final state (server restart, proxy timeout): reconnect.
    await sleep(Math.min(5000, 500 * (attempt + 1)));
  }
  return "done";
}

/// Long-poll: each call returns as soon as the state differs from the one we know.
async function followLongPoll(request) {
  const path = `/api/v1/qr/${encodeURIComponent(request.id)}`;
  let known = null, failures = 0;
  while (current === request) {
    try {
      const query = known ? `?wait=25&state=${known}` : "";
      const status = await call("GET", path + query, { auth: { token: request.pollSecret, scheme: "Bearer" }, signal: request.abort.signal });
      known = status.state;
      failures = 0;
      if (await apply(request, status)) return;
    } catch (error) {
      if (error.name === "AbortError" || current !== request) return;
      if (error instanceof ApiError && isTransient(error.status, error.problem) && failures++ < 8) {
        await sleep(Math.min(5000, 250 * 2 ** failures));
        continue;
      }
      failed(request, error);
      return;
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// The app's login screen after a QR login: the new token buys the redirect back to the app.
async function returnToApp(token, loginRequest) {
  try {
    await finishWithQR(token, loginRequest);
  } catch (error) {
    setState("error", `Cannot finish signing in to ${appSignIn.clientName}: ${finishMessage(error)}`);
    $("renew").hidden = false;
  }
}

/// Ends the QR login request the page shows (best effort, and it outlives the page), so that
/// a phone scanning it later is not told it signed anything in.
function cancelCode() {
  const request = current;
  stopRequest();
  if (!request) return;
  call("DELETE", `/api/v1/qr/${encodeURIComponent(request.id)}`, { auth: { token: request.pollSecret, scheme: "Bearer" }, keepalive: true }).catch(() => {});
}

/// The app's login screen: the heading names the app (as text), and a password form is offered
/// for a user without their phone.
function setUpAppSignIn() {
  $("login-title").textContent = `Sign in to ${appSignIn.clientName}`;
  document.title = `Sign in to ${appSignIn.clientName} · QRLogin`;
  $("app-intro").hidden = false;
  $("password-box").hidden = false;
  const form = $("password-form");
  const error = $("password-error");
  if (appSignIn.loginHint) form.username.value = appSignIn.loginHint;
  $("password-box").addEventListener("toggle", () => { if ($("password-box").open) form.username.focus(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await finishWithPassword(form.username.value.trim(), form.password.value, cancelCode);
    } catch (failure) {
      error.textContent = finishMessage(failure);
      form.password.select();
      button.disabled = false;
    }
  });
  setUpCodeSignIn();
}

/// The one-time-code fallback: send a code to the phone number, then sign in with it.
function setUpCodeSignIn() {
  $("code-box").hidden = false;
  const form = $("code-form");
  const error = $("code-error");
  $("code-send").addEventListener("click", async () => {
    error.textContent = "";
    try {
      await sendCode(form.phone.value.trim());
      error.textContent = "If the number has an account, a code is on its way.";
      form.code.focus();
    } catch (failure) {
      error.textContent = finishMessage(failure);
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await finishWithCode(form.phone.value.trim(), form.code.value.trim(), cancelCode);
    } catch (failure) {
      error.textContent = finishMessage(failure);
      button.disabled = false;
    }
  });
}

async function showAccount() {
  let me;
  try {
    me = await call("GET", "/api/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut("Your session ended. Sign in again by scanning the code.");
    setState("error", `Cannot load your account: ${error.message}`);
    return;
  }
  stopRequest();
  $("notice").hidden = true;
  showView($("account-view"));
  setState("confirmed", "");
  $("account").textContent = me.account.displayName;
  $("account-username").textContent = me.account.username;
  $("device-name").textContent = me.device.name;
  $("device-facts").textContent = `${typeName(me.device.type)} · signed in ${formatTime(me.token.createdAt)} · session ends ${formatTime(me.token.expiresAt)}`;
  await refreshDevices();
  clearInterval(sessionTimer);
  sessionTimer = setInterval(checkSession, SESSION_CHECK_MS);
}

async function refreshDevices() {
  try {
    await renderDevices($("devices"), { onError: (error) => sessionError(error) });
  } catch (error) {
    sessionError(error);
  }
}

function sessionError(error) {
  if (error instanceof ApiError && error.status === 401) signedOut("This device was logged out.");
  else $("account-error").textContent = error.message;
}

/// The token may be revoked at any time from another device: the next call fails with 401
/// and the page goes back to the QR code.
async function checkSession() {
  try {
    await call("GET", "/api/v1/me");
    $("account-error").textContent = "";
  } catch (error) {
    sessionError(error);
  }
}

async function signedOut(notice) {
  clearInterval(sessionTimer);
  await saveToken(null);
  $("notice").textContent = notice || "";
  $("notice").hidden = !notice;
  await newCode();
}

$("renew").addEventListener("click", () => newCode());
$("signout").addEventListener("click", async () => {
  try { await call("POST", "/api/v1/auth/logout"); } catch { /* signed out either way */ }
  signedOut("You signed out.");
});
$("refresh-devices").addEventListener("click", () => refreshDevices());
document.addEventListener("visibilitychange", () => { if (!document.hidden && sessionTimer) checkSession(); });

(async () => {
  // An app's login screen always asks for a fresh sign-in: the app wants to know it is you now.
  if (appSignIn) {
    setUpAppSignIn();
    await newCode();
  } else if (await currentToken()) await showAccount();
  else await newCode();
})();
