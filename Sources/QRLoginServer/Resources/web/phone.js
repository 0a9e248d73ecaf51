// The phone page `/q/{id}`, the QR code's url: sign in if needed, scan the request, show who is
// asking, let the user pick the number the PC shows, then Confirm or Deny (the default).

import { call, currentToken, formatTime, showView, ApiError } from "./api.js";
import { signIn } from "./auth.js";
import { typeName } from "./devicelist.js";

const $ = (id) => document.getElementById(id);
const id = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const path = `/api/v1/qr/${encodeURIComponent(id)}`;
/// The scan answer survives a reload of this tab, since a request can be scanned only once.
const savedKey = `qrlogin.scan.${id}`;

/// One plain message per way a request can be unusable.
function outcomeOf(error) {
  if (!(error instanceof ApiError)) return ["error", "Something went wrong. Try again."];
  switch (error.code) {
    case "not_found":
      return ["unknown", "This login code is unknown. Check that you scanned the code on the computer's screen."];
    case "expired":
    case "ticket_expired":
      return ["expired", "This login code has expired. Get a fresh code on the computer and scan it again."];
    case "already_scanned":
    case "not_scanner":
    case "invalid_ticket":
      return ["not-yours", "This login request is not yours: another phone has already scanned it. Nothing was approved from this phone."];
    case "wrong_match":
      return ["denied", "That was not the number on the computer, so the login was declined to keep your account safe. Start again on the computer."];
    case "network":
      return ["error", "The server cannot be reached. Check your connection and try again."];
    default:
      if (error.code?.startsWith("request_")) {
        return ["used", "This login code has already been used. Get a fresh code on the computer."];
      }
      return ["error", error.message || "Something went wrong."];
  }
}

function showResult(kind, message) {
  sessionStorage.removeItem(savedKey);
  showView($("result-view"));
  const result = $("result");
  result.dataset.outcome = kind;
  result.textContent = message;
  $("result-title").textContent = kind === "confirmed" ? "Done" : kind === "denied" ? "Declined" : "Cannot continue";
  $("result-view").focus();
}

function showRequest(scan) {
  showView($("request-view"));
  const facts = $("requester");
  facts.replaceChildren();
  const rows = [
    ["Device", `${typeName(scan.requester.type)} · ${scan.requester.name}`],
    ["IP address", scan.requester.ip],
    ["Browser", scan.requester.userAgent || "unknown"],
    ["Time", formatTime(scan.requester.createdAt)],
  ];
  for (const [label, value] of rows) {
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.textContent = value;
    facts.append(term, detail);
  }

  let picked = null;
  const confirm = $("confirm");
  const deny = $("deny");
  const choices = $("choices");
  choices.replaceChildren();
  for (const number of scan.matchChoices) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "choice";
    button.dataset.testid = "match-choice";
    button.textContent = String(number);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => {
      picked = number;
      for (const other of choices.children) other.setAttribute("aria-pressed", String(other === button));
      confirm.disabled = false;
    });
    choices.append(button);
  }
  confirm.disabled = true;

  const decide = async (action) => {
    confirm.disabled = true;
    deny.disabled = true;
    try {
      const body = action === "confirm" ? { ticket: scan.ticket, match: picked } : { ticket: scan.ticket };
      await call("POST", `${path}/${action}`, { body });
      if (action === "confirm") showResult("confirmed", "Confirmed. The computer is now signed in to your account.");
      else showResult("denied", "Declined. The computer was not signed in.");
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return start();
      showResult(...outcomeOf(error));
    } finally {
      deny.disabled = false;
    }
  };
  confirm.onclick = () => { if (picked !== null) decide("confirm"); };
  deny.onclick = () => decide("deny");
  // Declining is the safe default.
  deny.focus();
}

async function scan() {
  const saved = sessionStorage.getItem(savedKey);
  if (saved) {
    const scan = JSON.parse(saved);
    if (Date.parse(scan.ticketExpiresAt) > Date.now()) return showRequest(scan);
    sessionStorage.removeItem(savedKey);
  }
  showView($("loading-view"));
  try {
    const scan = await call("POST", `${path}/scan`);
    sessionStorage.setItem(savedKey, JSON.stringify(scan));
    showRequest(scan);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return start();
    showResult(...outcomeOf(error));
  }
}

async function start() {
  if (!id) return showResult("unknown", "This link has no login code in it.");
  if (!(await currentToken())) {
    showView($("auth-view"));
    await signIn();
  }
  await scan();
}

start();
