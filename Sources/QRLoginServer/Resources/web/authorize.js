// The PC page as an app's login screen (OpenID Connect). `GET /authorize` serves index.html with
// the authorization request, a CSRF token and the app's name in meta tags (empty on `/`). The
// page signs in by QR as usual and then trades its fresh token for the app's redirect at
// `POST /authorize/qr`, or signs in with a password at `POST /authorize/password`; either answer
// is `{redirect}`, where the page goes at once. Both calls are fetches, not form posts: the
// CSP's `form-action 'self'` would also block a form's redirect to the app.

import { call, ApiError } from "./api.js";

/// getAttribute undoes the HTML escaping of the attribute; the value is never written as HTML.
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") || "";

/// `{query, csrf, clientName}` when this page is an app's login screen, else null.
export const appSignIn = (() => {
  const query = meta("qrlogin-authorize");
  if (!query) return null;
  // login_hint (OpenID Connect Core §3.1.2.1) prefills the password form's username.
  const loginHint = new URLSearchParams(query).get("login_hint") || "";
  return { query, csrf: meta("qrlogin-csrf"), clientName: meta("qrlogin-client-name") || "the app", loginHint };
})();

const MESSAGES = {
  invalid_credentials: "Wrong username or password.",
  invalid_code: "The code is wrong, expired or already used.",
  too_many_attempts: "Too many wrong codes. Send a new code.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  network: "The server cannot be reached. Check your connection.",
};

/// A plain sentence for a failed finish call.
export const finishMessage = (error) => MESSAGES[error.code] || error.message || "Something went wrong.";

/// Posts `extra` with the request and CSRF token to `path`, sending the CSRF cookie and taking
/// the session cookie, runs `beforeLeave`, then replaces this page with the redirect.
async function finish(path, extra, auth, beforeLeave) {
  const answer = await call("POST", path, {
    auth,
    body: { query: appSignIn.query, csrf: appSignIn.csrf, ...extra },
    credentials: "same-origin",
  });
  const redirect = answer?.redirect;
  // The server builds it from the client's registered redirect URIs; still, never run script.
  let scheme = "";
  try { scheme = new URL(redirect).protocol; } catch { /* not a URL */ }
  if (!scheme || ["javascript:", "data:", "blob:", "vbscript:"].includes(scheme)) {
    throw new ApiError(502, { code: "bad_redirect", detail: "The server did not say where to go next." });
  }
  beforeLeave?.();
  location.replace(redirect);
}

/// Finishes with the token a QR login just handed this browser (DPoP-bound to its key).
export const finishWithQR = (token, loginRequest) => finish("/authorize/qr", { loginRequest }, { token, scheme: "DPoP" });

/// Finishes with a password. `beforeLeave` runs once it worked, before the page goes.
export const finishWithPassword = (username, password, beforeLeave) =>
  finish("/authorize/password", { username, password }, "none", beforeLeave);

/// Asks the server to text a one-time code to `phone` (the same answer whether or not the
/// number has an account).
export const sendCode = (phone) =>
  call("POST", "/authorize/code/start", { auth: "none", body: { csrf: appSignIn.csrf, phone }, credentials: "same-origin" });

/// Finishes with the one-time code sent to `phone`.
export const finishWithCode = (phone, code, beforeLeave) =>
  finish("/authorize/code", { phone, code }, "none", beforeLeave);
