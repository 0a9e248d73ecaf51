#!/usr/bin/env python3
"""OAuth interop check: OpenID Connect sign-in (authorization code + PKCE + DPoP) through Chromium.

The relying party is `requests-oauth2client` (PyPI), used through its public API: OpenID Connect
discovery (which also fetches the JWKS), `AuthorizationRequest` with PKCE S256, state, nonce and
`dpop_jkt` of a DPoP key the library makes, `validate_callback` (state and RFC 9207 `iss`), the
authorization_code grant proofed with that key, `validate_id_token` (signature against the JWKS,
iss, aud, azp, exp, nonce, at_hash), and UserInfo with the DPoP token. The ID token is checked a
second time without the library's validator: jwskate against the JWKS fetched from `jwks_uri`.

The browser step is headless Chromium (Playwright): it opens the authorization URL, lands on
QRLogin's QR page, a phone (QRLogin's JSON API with DPoP, as in device_flow.py) scans the page's
QR code and confirms the number the page shows, and the page sends Chromium to the redirect URI,
served by a tiny HTTP server this script starts on 127.0.0.1 (the port of REDIRECT_URI). The
full redirect URL that reached it is what the library validates.

Then single sign-on: a second authorization in the same browser (for --second-client-id, a
second app whose ID tokens are RS256, left at the library's default alg) comes back without a
login screen, with the same sub and sid. Its code is then presented with another DPoP key
(invalid_dpop_proof, nothing changes), redeemed, and presented again (invalid_grant, and the
tokens it gave are revoked: UserInfo refuses them).

Where 1.8.0 needs help (each spot says why):
- its expected ID token alg defaults to RS256 (OpenID Connect Registration's default); QRLogin
  signs ES256 unless a client is registered with RS256, so the first client is told ES256;
- OAuth2Client.authorization_request does not pass on authorization_response_iss_parameter_supported
  from discovery, and validate_callback does not keep `iss` as the response's issuer, so both
  are handed over here for the library's own iss checks;
- validate_id_token on a DPoPToken raises TypeError after its checks (it rebuilds the token
  without its key): the checks are rerun on a Bearer view of the same response;
- any 401 with a DPoP challenge from a resource server is taken for a nonce request.
The last line is preceded by a `note:` line for each of the last two that still happens.

Usage: code_flow.py BASE_URL CLIENT_ID REDIRECT_URI [--client-name NAME] [--second-client-id ID]
                    [--artifacts DIR]
  BASE_URL is the issuer, without a trailing slash; CLIENT_ID is a public client registered with
  the authorization_code grant, REDIRECT_URI and ES256 ID tokens (the server's default).
Exits non-zero with a message naming the failed check.
"""
import argparse
import base64
import hashlib
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwskate
import requests
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright
from requests_oauth2client import (AuthorizationRequest, AuthorizationResponse, BearerToken, DPoPKey, DPoPToken, IdToken,
                                   InvalidIdToken, MismatchingIssuer, MismatchingState,
                                   MissingIssuer, OAuth2Client, OAuth2Error, oidc_discovery_document_url)
from requests_oauth2client.dpop import InvalidUseDPoPNonceResponse

from device_flow import Failed, Phone, check  # the phone side, shared with the device flow check

SCOPE = "openid profile"
DISPLAY_NAME = "OAuth Interop"  # what device_flow.Phone registers
LIBRARY = "requests-oauth2client " + version("requests-oauth2client")
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Callback:
    """The redirect URI: a tiny HTTP server on 127.0.0.1 that records every URL it is sent to."""

    def __init__(self, redirect_uri: str):
        parts = urlsplit(redirect_uri)
        check(parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port,
              f"REDIRECT_URI must be http://127.0.0.1:PORT/...: {redirect_uri}")
        self.origin, self.hits = f"http://127.0.0.1:{parts.port}", []
        hits, path = self.hits, parts.path

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if urlsplit(self.path).path != path:  # Chromium's /favicon.ico and the like
                    self.send_error(404)
                    return
                hits.append(self.path)
                body = b"<!doctype html><title>callback</title><p data-testid=callback>back at the app</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", parts.port), Handler)
        except OSError as exc:
            raise Failed(f"cannot listen on {self.origin} for the redirect URI: {exc}")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self) -> str:
        check(self.hits, "the redirect URI was never requested")
        return self.origin + self.hits[-1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def discover(base: str, client_id: str, redirect_uri: str, id_token_alg: str | None) -> OAuth2Client:
    """OpenID Connect discovery by the library (it also fetches the JWKS), checked against the document."""
    url = oidc_discovery_document_url(base)
    check(url == base + "/.well-known/openid-configuration", f"library derived discovery URL {url}")
    response = requests.get(url, timeout=10)
    check(response.status_code == 200, f"GET {url}: {response.status_code} {response.text[:300]}")
    document = response.json()
    check(document.get("issuer") == base, f"issuer is {document.get('issuer')!r}, expected exactly {base!r}")
    check("S256" in document.get("code_challenge_methods_supported", []), "discovery: PKCE S256 not supported")
    check(document.get("authorization_response_iss_parameter_supported") is True,
          "discovery: authorization_response_iss_parameter_supported is not true")
    check("ES256" in document.get("dpop_signing_alg_values_supported", []), "discovery: DPoP ES256 not supported")
    # from_discovery_endpoint raises if the document's issuer is not `base`; testing=True lets
    # the library accept http:// and a port. id_token_signed_response_alg is the library's
    # expected ID token alg (its default is RS256, OpenID Connect Registration's default).
    kwargs = {} if id_token_alg is None else {"id_token_signed_response_alg": id_token_alg}
    client = OAuth2Client.from_discovery_endpoint(issuer=base, client_id=client_id, redirect_uri=redirect_uri,
                                                  testing=True, **kwargs)
    check(client.authorization_endpoint == document["authorization_endpoint"], "library lost authorization_endpoint")
    check(client.userinfo_endpoint == document.get("userinfo_endpoint"), "library lost userinfo_endpoint")
    check(client.authorization_response_iss_parameter_supported is True, "library did not read the iss support")
    check(len(client.authorization_server_jwks.jwks) >= 1, "library fetched no keys from jwks_uri")
    return client


def authorization_request(client: OAuth2Client) -> AuthorizationRequest:
    """PKCE S256, state, nonce and dpop_jkt of a key the library makes; the library enforces iss."""
    azr = client.authorization_request(
        scope=SCOPE, dpop=True,
        # OAuth2Client reads this from discovery but does not hand it to the request it builds.
        authorization_response_iss_parameter_supported=client.authorization_response_iss_parameter_supported)
    query = {name: values[0] for name, values in parse_qs(urlsplit(azr.uri).query).items()}
    for name in ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
                 "code_challenge_method", "dpop_jkt"):
        check(name in query, f"the library's authorization request lacks {name}: {azr.uri}")
    check(query["code_challenge_method"] == "S256", f"PKCE method {query['code_challenge_method']}")
    check(query["code_challenge"] == b64url(hashlib.sha256(azr.code_verifier.encode()).digest()),
          "the library's code_challenge is not S256 of its code_verifier")
    check(isinstance(azr.dpop_key, DPoPKey) and query["dpop_jkt"] == azr.dpop_key.dpop_jkt,
          "dpop_jkt is not the thumbprint of the library's DPoP key")
    return azr


class Browser:
    """Headless Chromium; one context (cookie jar) for every authorization, for single sign-on."""

    def __init__(self, playwright, artifacts: Path | None):
        self.artifacts = artifacts
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.navigations: list[tuple[int, str]] = []
        self.page.on("response", lambda r: self.navigations.append((r.status, r.url))
                     if r.request.is_navigation_request() else None)
        self.qr_posts: list[str] = []
        self.context.on("request", lambda r: self.qr_posts.append(r.post_data or "")
                        if r.method == "POST" and urlsplit(r.url).path == "/api/v1/qr" else None)

    def shot(self, name: str):
        if self.artifacts:
            try:
                self.artifacts.mkdir(parents=True, exist_ok=True)
                self.page.screenshot(path=str(self.artifacts / f"code-flow-{name}.png"), full_page=True)
            except PlaywrightError:
                pass

    def wait_for_redirect(self, redirect_uri: str, name: str):
        try:
            self.page.wait_for_url(lambda url: url.startswith(redirect_uri + "?"), timeout=TIMEOUT_MS)
        except PlaywrightError:
            self.shot(f"{name}-stuck")
            raise Failed(f"{name}: Chromium was not sent to {redirect_uri}; it is at {self.page.url} "
                         f"(page errors: {self.errors})")

    def close(self):
        self.context.close()
        self.browser.close()


def qr_sign_in(browser: Browser, base: str, azr: AuthorizationRequest, phone: Phone, client_name: str | None):
    """Opens the authorization URL; the phone scans the page's QR code and picks the page's number."""
    page = browser.page
    page.goto(azr.uri)
    check(page.url.startswith(base + "/authorize?"), f"the authorization URL did not show QRLogin's page: {page.url}")
    try:
        page.wait_for_function(
            """() => /\\/api\\/v1\\/qr\\/[^/]+\\/qr\\.svg/.test(document.querySelector('[data-testid="qr"]')?.getAttribute('src') || '')""",
            timeout=TIMEOUT_MS)
    except PlaywrightError:
        browser.shot("no-qr")
        raise Failed(f"QRLogin's login page shows no QR code; page errors: {browser.errors}")
    shown = page.locator('meta[name="qrlogin-client-name"]').get_attribute("content")
    if client_name is not None:
        check(shown == client_name, f"the login page names the app {shown!r}, not {client_name!r}")
    check(any('"authorize"' in body for body in browser.qr_posts),
          f"the page's POST /api/v1/qr carries no authorization request: {browser.qr_posts}")
    login_id = re.search(r"/api/v1/qr/([^/]+)/qr\.svg", page.locator('[data-testid="qr"]').get_attribute("src")).group(1)
    print(f"ok: Chromium is on QRLogin's QR page for {shown!r} (login {login_id[:8]}…)")

    scan = phone.call("POST", f"/api/v1/qr/{login_id}/scan")
    check((scan.get("client") or {}).get("id") == azr.client_id, f"the phone was told the client is {scan.get('client')}")
    scopes = [s if isinstance(s, str) else s.get("name") for s in scan.get("scopes", [])]
    check(set(scopes) == set(SCOPE.split()), f"the phone was told the scopes {scopes}, expected {SCOPE}")
    try:
        page.wait_for_function("""() => /^\\d+$/.test(document.querySelector('[data-testid="match"]')?.textContent.trim() || '')""",
                               timeout=TIMEOUT_MS)
    except PlaywrightError:
        browser.shot("no-match")
        raise Failed("the page did not show the number to pick after the scan")
    number = int(page.locator('[data-testid="match"]').inner_text().strip())
    check(number in scan.get("matchChoices", []), f"the page shows {number}, not among the phone's {scan.get('matchChoices')}")
    phone.call("POST", f"/api/v1/qr/{login_id}/confirm", {"ticket": scan["ticket"], "match": number}, expect=(200, 204))
    print(f"  phone: scanned, picked {number} among {scan['matchChoices']}, confirmed")
    browser.wait_for_redirect(azr.redirect_uri, "QR sign-in")


def validate_response(azr: AuthorizationRequest, url: str, label: str) -> AuthorizationResponse:
    """The library validates the response (state, iss); tampered copies must be refused by it."""
    query = parse_qs(urlsplit(url).query)
    for name in ("code", "state", "iss"):
        check(len(query.get(name, [])) == 1, f"{label}: the authorization response has no single {name}: {url}")
    azresp = azr.validate_callback(url)
    check(azresp.code == query["code"][0] and azresp.dpop_key is azr.dpop_key and azresp.nonce == azr.nonce,
          f"{label}: the library's AuthorizationResponse does not carry the request's code/key/nonce")
    without_iss = re.sub(r"([?&])iss=[^&]*&?", r"\1", url).rstrip("&?")
    for tampered, refusal in ((url.replace("iss=", "iss=x"), MismatchingIssuer), (without_iss, MissingIssuer),
                              (url.replace("state=", "state=x"), MismatchingState)):
        try:
            azr.validate_callback(tampered)
        except refusal:
            continue
        except Exception as exc:  # noqa: BLE001
            raise Failed(f"{label}: tampered response {tampered}: {type(exc).__name__} instead of {refusal.__name__}")
        raise Failed(f"{label}: the library accepted a tampered response: {tampered}")
    print(f"ok: {label}: the library validated the authorization response (state, iss; tampered iss/state refused)")
    return azresp


def redeem(client: OAuth2Client, azresp: AuthorizationResponse, label: str) -> DPoPToken:
    """authorization_code grant proofed with the request's key; the library validates the ID token."""
    # validate=False: with validate=True, 1.8.0 validates the ID token and then fails to rebuild
    # the DPoPToken (see validate_id_token below), losing the tokens.
    token = client.authorization_code(azresp, validate=False)
    check(isinstance(token, DPoPToken), f"{label}: got {type(token).__name__}, expected a DPoPToken")
    check(token.token_type == "DPoP", f"{label}: token_type {token.token_type!r}, expected 'DPoP'")
    check(token.dpop_key is azresp.dpop_key, f"{label}: the token is not bound to the key named by dpop_jkt")
    check(isinstance(token.id_token, IdToken), f"{label}: no ID token")
    check(set((token.scope or "").split()) == set(SCOPE.split()), f"{label}: scope {token.scope!r}")
    # The library's AuthorizationResponse keeps the response's `iss` among its extra parameters,
    # not as its `issuer`, so validate_id_token would skip the ID token's iss: filled in here.
    with_issuer = AuthorizationResponse(code=azresp.code, redirect_uri=azresp.redirect_uri,
                                        code_verifier=azresp.code_verifier, state=azresp.state, nonce=azresp.nonce,
                                        issuer=client.issuer, dpop_key=azresp.dpop_key)
    validate_id_token(client, token, with_issuer)
    print(f"ok: {label}: DPoP token; the library validated the {token.id_token.alg} ID token "
          "(signature against the JWKS, iss, aud, azp, exp, nonce, at_hash)")
    return token


NOTES: list[str] = []


def validate_id_token(client: OAuth2Client, token: BearerToken, azresp: AuthorizationResponse):
    """BearerToken.validate_id_token: every check, then it rebuilds the token with its class.

    For a DPoPToken that rebuild omits the key and raises TypeError in 1.8.0, after all checks
    passed; then the same checks run on a Bearer view of the same response (the token type plays
    no part in them) so that a failing check still raises.
    """
    try:
        token.validate_id_token(client, azresp)
        return
    except TypeError as exc:
        if not isinstance(token, DPoPToken) or "_dpop_key" not in str(exc):
            raise
        note = f"{LIBRARY}: DPoPToken.validate_id_token raises TypeError ({exc}); validated on a Bearer view"
        if note not in NOTES:
            NOTES.append(note)
    BearerToken(token.access_token, expires_at=token.expires_at, scope=token.scope,
                id_token=token.id_token).validate_id_token(client, azresp)


def library_refuses(client: OAuth2Client, token: DPoPToken, azresp: AuthorizationResponse, label: str):
    """The library's validator is live: a broken signature, another nonce or issuer are refused."""
    head, payload, signature = str(token.id_token).split(".")
    flipped = b64url(bytes([base64.urlsafe_b64decode(signature + "==")[0] ^ 1]) +
                     base64.urlsafe_b64decode(signature + "==")[1:])
    cases = (("a flipped signature bit", f"{head}.{payload}.{flipped}", azresp),
             ("another nonce", str(token.id_token), AuthorizationResponse(
                 code=azresp.code, redirect_uri=azresp.redirect_uri, nonce="not-the-nonce", dpop_key=azresp.dpop_key)),
             ("another issuer", str(token.id_token), AuthorizationResponse(
                 code=azresp.code, redirect_uri=azresp.redirect_uri, nonce=azresp.nonce, issuer=client.issuer + "/x",
                 dpop_key=azresp.dpop_key)))
    for what, id_token, response in cases:
        forged = DPoPToken(token.access_token, _dpop_key=token.dpop_key, token_type="DPoP", id_token=id_token)
        try:
            validate_id_token(client, forged, response)
        except (InvalidIdToken, jwskate.InvalidSignature):
            continue
        raise Failed(f"{label}: the library accepted an ID token with {what}")
    print(f"ok: {label}: the library refuses the ID token with a flipped signature bit, another nonce or issuer")


def check_id_token(base: str, jwks_uri: str, token: DPoPToken, azr: AuthorizationRequest, alg: str, label: str) -> dict:
    """Without the library's validator: jwskate against the JWKS fetched here, and every claim."""
    response = requests.get(jwks_uri, timeout=10)
    check(response.status_code == 200, f"GET {jwks_uri}: {response.status_code}")
    jwks = jwskate.JwkSet(response.json())
    check(all(not jwk.is_private for jwk in jwks.jwks), "the JWKS holds a private key")
    id_token = jwskate.SignedJwt(str(token.id_token))
    check(id_token.alg == alg, f"{label}: ID token alg {id_token.alg}, expected {alg}")
    check(id_token.kid, f"{label}: the ID token has no kid")
    try:
        jwk = jwks.get_jwk_by_kid(id_token.kid)
    except KeyError:
        raise Failed(f"{label}: kid {id_token.kid} is not in {jwks_uri}")
    check(jwk.alg in (None, alg) and jwk.use in (None, "sig"), f"{label}: JWKS key {id_token.kid} is {jwk.alg}/{jwk.use}")
    check(id_token.verify_signature(jwk, alg=alg), f"{label}: the ID token's signature does not verify with {id_token.kid}")
    claims = id_token.claims
    now = time.time()
    check(claims.get("iss") == base, f"{label}: iss {claims.get('iss')!r}")
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    check(audiences == [azr.client_id], f"{label}: aud {claims.get('aud')!r}, expected {azr.client_id}")
    check(claims.get("azp") == azr.client_id, f"{label}: azp {claims.get('azp')!r}")
    check(claims.get("nonce") == azr.nonce, f"{label}: nonce {claims.get('nonce')!r}, expected {azr.nonce}")
    check(isinstance(claims.get("exp"), int) and claims["exp"] > now, f"{label}: exp {claims.get('exp')} is past")
    check(isinstance(claims.get("iat"), int) and now - 120 < claims["iat"] <= now + 60, f"{label}: iat {claims.get('iat')}")
    check(claims["exp"] - claims["iat"] <= 3600, f"{label}: the ID token lives {claims['exp'] - claims['iat']} s")
    digest = hashlib.sha256(token.access_token.encode()).digest()  # ES256 and RS256 both hash with SHA-256
    check(claims.get("at_hash") == b64url(digest[:16]), f"{label}: at_hash {claims.get('at_hash')!r} does not match the access token")
    check(claims.get("amr") == ["qr"], f"{label}: amr {claims.get('amr')!r}, expected ['qr']")
    for name in ("sub", "auth_time", "sid", "preferred_username"):
        check(claims.get(name), f"{label}: the ID token has no {name}")
    check(claims.get("name") == DISPLAY_NAME, f"{label}: name {claims.get('name')!r}")
    check(claims["auth_time"] <= now + 60, f"{label}: auth_time {claims['auth_time']} is in the future")
    print(f"ok: {label}: jwskate verified the {alg} signature with {id_token.kid} from {jwks_uri}; iss, aud, azp, "
          f"nonce, exp, iat, at_hash, amr {claims['amr']}, sub {claims['sub']}")
    return claims


def check_userinfo(client: OAuth2Client, token: DPoPToken, claims: dict, label: str):
    info = client.userinfo(token)  # DPoPToken as auth: Authorization: DPoP + a proof with ath
    check(isinstance(info, dict) and info.get("sub") == claims["sub"], f"{label}: UserInfo sub {info!r} vs {claims['sub']}")
    check(info.get("preferred_username") == claims["preferred_username"] and info.get("name") == DISPLAY_NAME,
          f"{label}: UserInfo profile claims {info}")
    bare = requests.get(client.userinfo_endpoint, headers={"Authorization": "DPoP " + token.access_token}, timeout=10)
    check(bare.status_code == 401, f"{label}: UserInfo without a DPoP proof answered {bare.status_code}")
    bearer = requests.get(client.userinfo_endpoint, headers={"Authorization": "Bearer " + token.access_token}, timeout=10)
    check(bearer.status_code == 401, f"{label}: UserInfo took the DPoP-bound token as a Bearer token ({bearer.status_code})")
    print(f"ok: {label}: UserInfo through the library with the DPoP token: sub and profile match the ID token; "
          "without a proof or as Bearer: 401")


def sso(browser: Browser, base: str, client: OAuth2Client, label: str):
    """A second authorization in the same browser: no login screen, the same sub and sid."""
    azr = authorization_request(client)
    browser.navigations.clear()
    posts_before = len(browser.qr_posts)
    browser.page.goto(azr.uri)
    browser.wait_for_redirect(azr.redirect_uri, label)
    at_authorize = [(status, url) for status, url in browser.navigations if url.startswith(base + "/authorize")]
    check(at_authorize and all(300 <= status < 400 for status, _ in at_authorize),
          f"{label}: /authorize did not redirect straight back: {browser.navigations}")
    check(len(browser.qr_posts) == posts_before, f"{label}: a new QR login was started")
    return azr


def run(args):
    base = args.base_url
    check(not base.endswith("/"), "give BASE_URL without a trailing slash (it is the issuer)")
    callback = Callback(args.redirect_uri)
    try:
        client = discover(base, args.client_id, args.redirect_uri, "ES256")
        print(f"ok: discovered {oidc_discovery_document_url(base)} with the library: issuer matches, "
              f"{len(client.authorization_server_jwks.jwks)} keys from {client.jwks_uri}")
        phone = Phone(base)
        username = phone.sign_up_and_in()
        print(f"ok: phone registered and signed in as {username}")
        azr = authorization_request(client)
        print("ok: authorization request by the library: PKCE S256, state, nonce, dpop_jkt")
        artifacts = Path(args.artifacts) if args.artifacts else None
        with sync_playwright() as playwright:
            browser = Browser(playwright, artifacts)
            try:
                qr_sign_in(browser, base, azr, phone, args.client_name)
                url = callback.last()
                check(url == browser.page.url, f"Chromium is at {browser.page.url}, the callback got {url}")
                print(f"ok: Chromium was sent to {args.redirect_uri} (the response reached the app's server)")
                azresp = validate_response(azr, url, "QR sign-in")
                token = redeem(client, azresp, "QR sign-in")
                library_refuses(client, token, azresp, "QR sign-in")
                claims = check_id_token(base, client.jwks_uri, token, azr, "ES256", "QR sign-in")
                check(claims["preferred_username"] == username, f"preferred_username {claims['preferred_username']!r}")
                check_userinfo(client, token, claims, "QR sign-in")

                # Single sign-on, as a second app when there is one (RS256, the library's default alg).
                second = discover(base, args.second_client_id, args.redirect_uri, None) if args.second_client_id else client
                label = f"single sign-on ({second.client_id})"
                azr2 = sso(browser, base, second, label)
                print(f"ok: {label}: /authorize went straight back to the app, no login screen")
                azresp2 = validate_response(azr2, callback.last(), label)
                expect_oauth_error(lambda: second.authorization_code(
                    azresp2.code, code_verifier=azresp2.code_verifier, redirect_uri=azresp2.redirect_uri,
                    dpop=True, dpop_key=DPoPKey.generate(alg="ES256"), validate=False),
                    "invalid_dpop_proof", f"{label}: the code presented with another DPoP key")
                token2 = redeem(second, azresp2, label)
                claims2 = check_id_token(base, second.jwks_uri, token2, azr2,
                                         "RS256" if args.second_client_id else "ES256", label)
                for name in ("sub", "sid", "auth_time"):
                    check(claims2[name] == claims[name], f"{label}: {name} {claims2[name]} differs from the QR sign-in's {claims[name]}")
                print(f"ok: {label}: same sub, sid and auth_time as the QR sign-in")
                check_userinfo(second, token2, claims2, label)
                expect_oauth_error(lambda: second.authorization_code(azresp2), "invalid_grant",
                                   f"{label}: the code presented a second time")
                try:
                    second.userinfo(token2)  # the library's proof, with the server's nonce if it asks for one
                    raise Failed(f"{label}: after the code's replay, its access token still works at UserInfo")
                except (requests.HTTPError, InvalidUseDPoPNonceResponse) as exc:
                    # 1.8.0 reads any 401 with a DPoP challenge as a request for a nonce: without a
                    # DPoP-Nonce header it raises MissingDPoPNonce instead of the HTTP error.
                    challenge = exc.response.headers.get("WWW-Authenticate", "")
                    check(exc.response.status_code == 401 and "invalid_token" in challenge,
                          f"{label}: UserInfo after the replay: {exc.response.status_code} {challenge!r}")
                    if isinstance(exc, InvalidUseDPoPNonceResponse):
                        NOTES.append(f"{LIBRARY}: a 401 invalid_token from UserInfo surfaces as {type(exc).__name__} "
                                     f"(WWW-Authenticate: {challenge})")
                print(f"ok: {label}: after the replay the code's access token is refused by UserInfo (401)")
                if browser.errors:
                    print(f"  (page errors on the login page: {browser.errors})")
            except Exception:
                browser.shot("failed")
                raise
            finally:
                browser.close()
    finally:
        callback.close()


def expect_oauth_error(action, error: str, what: str):
    try:
        action()
    except OAuth2Error as exc:
        got = getattr(exc, "error", None)
        check(got == error, f"{what}: expected {error}, got {type(exc).__name__} {got}: {exc.response.text[:300]}")
        print(f"ok: {what}: {error}")
        return
    raise Failed(f"{what}: expected {error}, but it succeeded")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base_url", metavar="BASE_URL")
    parser.add_argument("client_id", metavar="CLIENT_ID")
    parser.add_argument("redirect_uri", metavar="REDIRECT_URI")
    parser.add_argument("--second-client-id", help="a second public client (same redirect URI, RS256 ID tokens) "
                        "for the single sign-on step; without it the step reuses CLIENT_ID")
    parser.add_argument("--client-name", help="the name CLIENT_ID was registered with (the page must show it)")
    parser.add_argument("--artifacts", help="folder for a screenshot when a browser step fails")
    args = parser.parse_args()
    try:
        run(args)
    except Failed as exc:
        sys.exit(f"FAILED: {exc}")
    except (OAuth2Error, InvalidUseDPoPNonceResponse) as exc:
        response = exc.response
        sys.exit(f"FAILED: {type(exc).__name__}: {exc}\n  {response.request.method} {response.url} -> "
                 f"{response.status_code}: {response.text[:500]}")
    except InvalidIdToken as exc:
        sys.exit(f"FAILED: the library refused the ID token: {type(exc).__name__}: {exc}")
    except requests.RequestException as exc:
        sys.exit(f"FAILED: HTTP error: {exc}")
    except PlaywrightError as exc:
        sys.exit(f"FAILED: browser: {exc}")
    for note in NOTES:
        print(f"note: {note}")
    print(f"oauth interop: authorization code flow with PKCE and DPoP through Chromium, ID token checked against "
          f"the JWKS ({LIBRARY})")


if __name__ == "__main__":
    main()
