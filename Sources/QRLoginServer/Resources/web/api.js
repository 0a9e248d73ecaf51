// The JSON API client of the pages: this browser's device key (P-256, non-extractable, kept in
// IndexedDB with the access token), DPoP proofs signed with WebCrypto, and calls that turn
// problem JSON into ApiError.

const DB_NAME = "qrlogin";
const STORE = "device";
const RECORD = "self";

/// The server's public base URL, which proofs' `htu` must start with. The server writes it
/// into every page, so a server behind a proxy or reached by another host name still checks
/// the URL it expects.
export const publicBaseURL = (document.querySelector('meta[name="qrlogin-public-url"]')?.content || location.origin).replace(/\/+$/, "");

/// WebCrypto exists only in secure contexts: HTTPS, or http on localhost. Say so plainly
/// instead of failing somewhere deep in a click handler.
if (!globalThis.crypto?.subtle) {
  const card = document.createElement("section");
  card.className = "card";
  card.setAttribute("role", "alert");
  const title = document.createElement("h1");
  title.textContent = "This page needs HTTPS";
  const text = document.createElement("p");
  text.textContent = "Signing in uses your browser's built-in cryptography, which browsers offer only over HTTPS (or on localhost). Open this page through the server's https:// address.";
  card.append(title, text);
  document.querySelector("main")?.replaceChildren(card);
  throw new Error("WebCrypto is unavailable: not a secure context");
}

/// Seconds to add to the local clock to get the server's, learnt from `Date` headers.
let clockOffset = 0;
export const serverNow = () => Date.now() + clockOffset * 1000;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || (status === 0 ? "network" : `http_${status}`);
    this.problem = problem;
  }
}

function openDB() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function dbDo(mode, action) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const b64urlText = (text) => b64url(new TextEncoder().encode(text));

let devicePromise = null;

/// This browser's device: `{keyPair, jwk, token, tokenExpiresAt}`. The private key is created
/// non-extractable, so no script (ours included) can ever read it; only sign with it.
export function device() {
  devicePromise ??= (async () => {
    let record = await dbDo("readonly", (store) => store.get(RECORD));
    if (!record) {
      const keyPair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
      const full = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
      record = { keyPair, jwk: { crv: full.crv, kty: full.kty, x: full.x, y: full.y }, token: null, tokenExpiresAt: null };
      await dbDo("readwrite", (store) => store.put(record, RECORD));
    }
    return record;
  })();
  return devicePromise;
}

/// The stored access token, or null when signed out or expired.
export async function currentToken() {
  const record = await device();
  if (!record.token) return null;
  if (record.tokenExpiresAt && Date.parse(record.tokenExpiresAt) <= serverNow()) return null;
  return record.token;
}

/// Keeps `token` (or forgets it, with null) next to the key.
export async function saveToken(token, expiresAt) {
  const record = await device();
  record.token = token;
  record.tokenExpiresAt = expiresAt ?? null;
  await dbDo("readwrite", (store) => store.put(record, RECORD));
}

/// An RFC 9449 proof for `method` on `path` (no query), with `ath` when a token is sent.
export async function proof(method, path, token) {
  const record = await device();
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: record.jwk };
  const claims = { htm: method, htu: publicBaseURL + path, iat: Math.floor(serverNow() / 1000), jti: b64url(crypto.getRandomValues(new Uint8Array(16))) };
  if (token) claims.ath = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  const input = b64urlText(JSON.stringify(header)) + "." + b64urlText(JSON.stringify(claims));
  // WebCrypto's ECDSA signature is already r || s, the JWS ES256 form.
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, record.keyPair.privateKey, new TextEncoder().encode(input));
  return input + "." + b64url(signature);
}

/// Headers of a call: a fresh proof, and `Authorization: SCHEME token` when a token is given.
export async function authHeaders(method, path, { token, scheme = "DPoP", accept } = {}) {
  const headers = { DPoP: await proof(method, path.split("?")[0], token) };
  if (token) headers.Authorization = `${scheme} ${token}`;
  if (accept) headers.Accept = accept;
  return headers;
}

export function learnClock(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) {
    const offset = Math.round((date - Date.now()) / 1000);
    clockOffset = Math.abs(offset) > 2 ? offset : 0;
  }
}

/// Calls the API. `auth`: "device" (the stored token), "none" (a proof only), or
/// `{token, scheme}`. Cookies are neither sent nor taken unless `credentials` says
/// "same-origin" (the login screen's CSRF and session cookies); `keepalive` lets a call outlive
/// the page. Returns the parsed JSON (null for 204); throws ApiError.
export async function call(method, path, { body, auth = "device", signal, accept, credentials = "omit", keepalive = false } = {}, retried = false) {
  let token = null, scheme = "DPoP";
  if (auth === "device") {
    token = await currentToken();
    if (!token) throw new ApiError(401, { code: "missing_credentials", detail: "Not signed in." });
  } else if (auth && auth !== "none") {
    ({ token, scheme } = auth);
  }
  const headers = await authHeaders(method, path, { token, scheme, accept });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: "no-store", credentials, keepalive });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { code: "network", detail: "The server cannot be reached." });
  }
  learnClock(response);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    // Every proof is signed once, so a replayed one was re-sent by a proxy (a load balancer
    // that retried a GET on another instance): the request is safe to sign and send again.
    if (replayedByProxy(response.status, data)) {
      if (!retried && (method === "GET" || method === "HEAD")) return call(method, path, { body, auth, signal, accept, credentials, keepalive }, true);
      throw new ApiError(response.status, data);
    }
    if (auth === "device" && response.status === 401) await saveToken(null);
    throw new ApiError(response.status, data);
  }
  return data;
}

/// Whether an answer says a proof this page signed once arrived twice (see `call`).
export function replayedByProxy(status, problem) {
  return status === 401 && problem?.code === "dpop_proof_replayed";
}

/// Whether a failed answer is worth asking again after a pause: the server or a proxy in front
/// of it cannot answer now (5xx, 429), or a proxy re-sent a proof.
export function isTransient(status, problem) {
  return status >= 500 || status === 429 || status === 0 || replayedByProxy(status, problem);
}

/// A short readable name for this browser, e.g. "Chrome on Linux".
export function browserName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad|iPod/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /CrOS/.test(ua) ? "ChromeOS" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}

/// The device type the API expects for a phone-side browser.
export function phoneDeviceType() {
  const ua = navigator.userAgent;
  return /Android/.test(ua) ? "android" : /iPhone|iPad|iPod/.test(ua) ? "ios" : "web";
}

/// A local date and time for an ISO 8601 string.
export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/// Shows `element` and hides its siblings marked `data-view`.
export function showView(element) {
  for (const view of document.querySelectorAll("[data-view]")) view.hidden = view !== element;
}
