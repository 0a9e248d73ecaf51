// `/device`, RFC 8628's verification_uri: the phone types the user code a device shows (any
// case, dashes or not), the server finds that device's request and scans it, and the confirm
// step (confirm.js) follows with the typed code as the pick.

import { call, currentToken, showView, ApiError } from "./api.js";
import { signIn } from "./auth.js";
import { outcomeOf, savedScan, showRequest, showResult } from "./confirm.js";

const $ = (id) => document.getElementById(id);
/// Where this tab keeps the scan answer (see savedScan): typing the code again after a reload
/// would find the request already scanned.
const savedKey = "qrlogin.device.scan";
const forget = () => sessionStorage.removeItem(savedKey);
const show = (scan) => showRequest(scan, { onSignedOut: start, onFinished: forget });

/// What to say in the form for an answer that leaves the user a retry; null for the others.
function formMessage(error) {
  if (!(error instanceof ApiError)) return null;
  switch (error.code) {
    case "not_found":
      return "No device is waiting for that code. Check it against the device's screen: codes last a few minutes, then the device shows a new one.";
    case "rate_limited":
      return "Too many codes tried. Wait a minute, then try again.";
    case "network":
      return "The server cannot be reached. Check your connection and try again.";
    default:
      return error.status === 400 ? "That is not a device code. It has 8 letters, like BCDF-GHJK." : null;
  }
}

function askForCode() {
  showView($("code-view"));
  $("user-code").focus();
}

async function submit(event) {
  event.preventDefault();
  const form = $("code-form");
  const field = $("user-code");
  const error = $("code-error");
  error.textContent = "";
  const typed = field.value.trim();
  if (!typed) {
    error.textContent = "Type the code the device shows.";
    field.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const scan = await call("POST", "/api/v1/device", { body: { userCode: typed } });
    sessionStorage.setItem(savedKey, JSON.stringify(scan));
    field.value = "";
    show(scan);
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) return start();
    const message = formMessage(failure);
    if (message === null) return showResult(...outcomeOf(failure, "the device"));
    error.textContent = message;
    field.select();
  } finally {
    button.disabled = false;
  }
}

async function start() {
  if (!(await currentToken())) {
    showView($("auth-view"));
    await signIn();
  }
  const saved = savedScan(savedKey);
  if (saved) return show(saved);
  askForCode();
}

$("code-form").addEventListener("submit", submit);
start();
