// The confirm step of the phone-side pages, shared by `/q/{id}` (the QR's url) and `/device`
// (a typed user code): who is asking, the pick, then Confirm or Deny (the default). A QR login
// offers the number the PC shows; an app's sign-in on the PC's login screen (OpenID Connect)
// also names the app and what it asks for; a device grant (RFC 8628) names the app and what
// it asks for, and offers the user code the device shows. Everything from the API is written
// with textContent, never as HTML: client names and scopes are client-supplied text.

import { call, formatTime, showView, ApiError } from "./api.js";
import { typeName } from "./devicelist.js";

const $ = (id) => document.getElementById(id);

/// True when `scan` is a device grant's: the phone picks a user code, not a number.
export const isDeviceGrant = (scan) => Array.isArray(scan?.userCodeChoices);

/// True when `scan` is an app's sign-in on a computer's login screen: the app is named, and
/// the phone picks the number the computer shows.
export const isAppSignIn = (scan) => !isDeviceGrant(scan) && Boolean(scan?.client);

/// The app's name as an element tests can find.
function clientName(scan) {
  const name = document.createElement("span");
  name.dataset.testid = "client-name";
  name.textContent = scan.client?.name || scan.client?.id || "An app";
  return name;
}

/// One plain message per way a request can be unusable: `[outcome, text]`. `subject` names
/// what asks ("the computer", "the device").
export function outcomeOf(error, subject = "the computer") {
  if (!(error instanceof ApiError)) return ["error", "Something went wrong. Try again."];
  switch (error.code) {
    case "not_found":
      return ["unknown", `This login code is unknown. Check that you scanned the code on ${subject}'s screen.`];
    case "expired":
    case "ticket_expired":
      return ["expired", `This login code has expired. Get a fresh code on ${subject} and scan it again.`];
    case "already_scanned":
    case "not_scanner":
    case "invalid_ticket":
      return ["not-yours", "This login request is not yours: another phone has already scanned it. Nothing was approved from this phone."];
    case "wrong_match":
      return subject === "the computer"
        ? ["denied", "That was not the number on the computer, so the login was declined to keep your account safe. Start again on the computer."]
        : ["denied", `That was not the code on ${subject}, so the sign-in was declined to keep your account safe. Start again on ${subject}.`];
    case "network":
      return ["error", "The server cannot be reached. Check your connection and try again."];
    default:
      if (error.code?.startsWith("request_")) {
        return ["used", `This login code has already been used. Get a fresh code on ${subject}.`];
      }
      return ["error", error.message || "Something went wrong."];
  }
}

/// The scan answer kept in this tab under `key`, while its ticket lives; else null. A request
/// is scanned only once, so a reload must find the answer rather than scan again.
export function savedScan(key) {
  const saved = sessionStorage.getItem(key);
  if (!saved) return null;
  const scan = JSON.parse(saved);
  if (Date.parse(scan.ticketExpiresAt) > Date.now()) return scan;
  sessionStorage.removeItem(key);
  return null;
}

/// Shows the result card: `kind` is the outcome tests and styles key on.
export function showResult(kind, message) {
  showView($("result-view"));
  const result = $("result");
  result.dataset.outcome = kind;
  result.textContent = message;
  $("result-title").textContent = kind === "confirmed" ? "Done" : kind === "denied" ? "Declined" : "Cannot continue";
  $("result-view").focus();
}

function facts(list, rows) {
  list.replaceChildren();
  for (const [label, value] of rows) {
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.textContent = value;
    list.append(term, detail);
  }
}

/// Fills the heading, intro and scope list for a QR login, for an app's sign-in on a computer,
/// or for the app of a device grant.
function describeAsker(scan) {
  const title = $("request-title");
  const grant = isDeviceGrant(scan);
  const app = grant || isAppSignIn(scan);
  $("app-request").hidden = !app;
  $("request-intro").hidden = app;
  $("request-note").textContent = grant
    ? "If you did not just start signing in on a device you are using, tap Deny."
    : "If you did not just scan a code on a device you are using, tap Deny.";
  if (!grant) {
    if (app) {
      title.replaceChildren("Sign in to ", clientName(scan));
      listScopes(scan);
    } else {
      title.textContent = "Sign in on another device?";
    }
    $("choice-legend").textContent = "Which number does that device show?";
    facts($("requester"), [
      ["Device", `${typeName(scan.requester.type)} · ${scan.requester.name}`],
      ["IP address", scan.requester.ip],
      ["Browser", scan.requester.userAgent || "unknown"],
      ["Time", formatTime(scan.requester.createdAt)],
    ]);
    return;
  }
  title.replaceChildren(clientName(scan), " wants to sign in as you");
  listScopes(scan);
  $("choice-legend").textContent = scan.userCodeChoices.length === 1 ? "The code you entered" : "Pick the code shown on the device";
  facts($("requester"), [
    ["Asked from", scan.requester.ip],
    ["Software", scan.requester.userAgent || "unknown"],
    ["Time", formatTime(scan.requester.createdAt)],
  ]);
}

/// What the app asks for, in plain words.
function listScopes(scan) {
  const scopes = $("scopes");
  scopes.replaceChildren();
  for (const scope of scan.scopes || []) {
    const item = document.createElement("li");
    item.textContent = scope.description || scope.name;
    item.dataset.scope = scope.name;
    scopes.append(item);
  }
  if (!scopes.children.length) {
    const item = document.createElement("li");
    item.textContent = "Know that it is you, nothing more";
    scopes.append(item);
  }
}

/// Shows the confirm card for the scan answer `scan`. `onSignedOut` runs when the server no
/// longer takes this phone's token (sign in again); `onFinished` once the request is decided
/// or unusable, before the result shows.
export function showRequest(scan, { onSignedOut, onFinished } = {}) {
  showView($("request-view"));
  describeAsker(scan);
  // QRLjacking: a code a phisher relays was created on the phisher's network. Only a server
  // that compared (true or false) is believed; one that did not says nothing.
  $("network-warning").hidden = scan.requester.sameNetwork !== false;
  const app = isDeviceGrant(scan);
  const subject = app ? "the device" : "the computer";
  const asker = app ? scan.client?.name || "The app" : "The computer";
  const appName = isAppSignIn(scan) ? scan.client.name || scan.client.id || "the app" : null;

  let picked = null;
  const confirm = $("confirm");
  const deny = $("deny");
  const choices = $("choices");
  choices.replaceChildren();
  choices.classList.toggle("codes", app);
  const offered = app ? scan.userCodeChoices : scan.matchChoices;
  const press = (button, value) => {
    picked = value;
    for (const other of choices.children) other.setAttribute("aria-pressed", String(other === button));
    confirm.disabled = false;
  };
  for (const value of offered) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "choice";
    button.dataset.testid = app ? "code-choice" : "match-choice";
    button.textContent = String(value);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => press(button, value));
    choices.append(button);
  }
  confirm.disabled = true;
  // A typed code is the pick already: there is nothing left to choose.
  if (app && offered.length === 1) press(choices.firstChild, offered[0]);

  const decide = async (action) => {
    confirm.disabled = true;
    deny.disabled = true;
    try {
      const body = action === "deny" ? { ticket: scan.ticket } : app ? { ticket: scan.ticket, userCode: picked } : { ticket: scan.ticket, match: picked };
      await call("POST", `/api/v1/qr/${encodeURIComponent(scan.id)}/${action}`, { body });
      onFinished?.();
      if (appName) {
        if (action === "confirm") showResult("confirmed", `Confirmed. The computer is signing you in to ${appName}.`);
        else showResult("denied", `Declined. You were not signed in to ${appName}.`);
      } else if (action === "confirm") showResult("confirmed", `Confirmed. ${asker} is now signed in to your account.`);
      else showResult("denied", `Declined. ${asker} was not signed in.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return onSignedOut?.();
      onFinished?.();
      showResult(...outcomeOf(error, subject));
    } finally {
      deny.disabled = false;
    }
  };
  confirm.onclick = () => { if (picked !== null) decide("confirm"); };
  deny.onclick = () => decide("deny");
  // Declining is the safe default.
  deny.focus();
}
