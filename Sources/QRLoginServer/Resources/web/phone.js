// The phone page `/q/{id}`, the QR code's url: sign in if needed, scan the request, then the
// confirm step (confirm.js): the number the PC shows, or for a device grant the app, what it
// asks for and the user code the device shows.

import { call, currentToken, showView, ApiError } from "./api.js";
import { signIn } from "./auth.js";
import { outcomeOf, savedScan, showRequest, showResult } from "./confirm.js";

const $ = (id) => document.getElementById(id);
const id = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const path = `/api/v1/qr/${encodeURIComponent(id)}`;
/// Where this tab keeps the scan answer (see savedScan).
const savedKey = `qrlogin.scan.${id}`;
const forget = () => sessionStorage.removeItem(savedKey);

function finish(kind, message) {
  forget();
  showResult(kind, message);
}

const show = (scan) => showRequest(scan, { onSignedOut: start, onFinished: forget });

async function scan() {
  const saved = savedScan(savedKey);
  if (saved) return show(saved);
  showView($("loading-view"));
  try {
    const scan = await call("POST", `${path}/scan`);
    sessionStorage.setItem(savedKey, JSON.stringify(scan));
    show(scan);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return start();
    finish(...outcomeOf(error));
  }
}

async function start() {
  if (!id) return finish("unknown", "This link has no login code in it.");
  if (!(await currentToken())) {
    showView($("auth-view"));
    await signIn();
  }
  await scan();
}

start();
