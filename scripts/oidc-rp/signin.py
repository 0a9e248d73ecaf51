#!/usr/bin/env python3
"""Headless Chromium signs in to a page that Apache's mod_auth_openidc protects, through QRLogin.

run.sh starts QRLogin (the OpenID provider, --op) and Apache (the relying party, --rp) and runs
this. Each flow starts in a fresh browser at RP/protected/, must be sent to QRLogin's /authorize
page, signs in there, and must come back on its own to RP/protected/, which shows the claims
Apache received: sub, preferred_username, name and iss are checked, and amr tells how the user
signed in.

- qr: the page shows a QR code for a login request; a phone (a DPoP key, signed in over the
  API) scans it and confirms with the number the page shows; the page must then finish the
  sign-in by itself.
- password: the page's password form where it has one, else the page's own script context
  posts /authorize/password with the page's CSRF value (the cookie goes along) and follows the
  redirect it gets. Then single sign-on: with Apache's session cookies dropped, a new visit goes
  through /authorize again and comes straight back without a login screen.

--flows auto does password, then qr where the page's QR code is a login for the app (its POST
/api/v1/qr carries the authorization request), skipping qr with a note where it is a plain login;
--flows both insists on both. The last line names the module and the flows that passed.
"""
import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
DISPLAY_NAME = "Alice <Apache> Liddell"
CLIENT_NAME = "Intranet (Apache)"
TIMEOUT_MS = 20_000


class Failure(Exception):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Device:
    """A device key that signs RFC 9449 proofs (as scripts/example_flow.py does)."""

    def __init__(self, base: str):
        self.base = base
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC",
                    "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, path: str, token: str | None = None) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"htm": method, "htu": self.base + path, "iat": int(time.time()), "jti": secrets.token_urlsafe(16)}
        if token:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def api(base: str, method: str, path: str, body=None, device: Device | None = None, token: str | None = None,
        expect: int = 200) -> dict:
    headers = {"Content-Type": "application/json"}
    if device:
        headers["DPoP"] = device.proof(method, path.split("?")[0], token)
    if token:
        headers["Authorization"] = f"DPoP {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status != expect:
        raise Failure(f"{method} {path}: expected {expect}, got {status}: {text[:300]}")
    return json.loads(text) if text else {}


def log(message: str):
    print("  " + message, flush=True)


class Run:
    def __init__(self, args, browser):
        self.op = args.op.rstrip("/")
        self.rp = args.rp.rstrip("/")
        self.artifacts = Path(args.artifacts)
        self.browser = browser
        self.flows_asked = args.flows
        self.username = "alice" + secrets.token_hex(3)
        api(self.op, "POST", "/api/v1/accounts",
            {"username": self.username, "password": PASSWORD, "displayName": DISPLAY_NAME}, expect=201)
        log(f"registered {self.username!r} over the API")

    def wait_for_script(self, page, errors):
        """Waits until the page's script shows a QR code (so it has set the page up)."""
        try:
            page.wait_for_function(
                """() => /\\/api\\/v1\\/qr\\/[^/]+\\/qr\\.svg/.test(document.querySelector('[data-testid="qr"]')?.getAttribute('src') || '')""",
                timeout=TIMEOUT_MS)
        except PlaywrightError:
            self.shot(page, "no-qr-code")
            raise Failure(f"the login page shows no QR code; page errors: {errors}")

    def shot(self, page, name: str):
        try:
            page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)
        except PlaywrightError:
            pass

    def open_protected(self, context, name: str):
        """Opens RP/protected/ and checks it lands on QRLogin's login page for this client."""
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(self.rp + "/protected/")
        try:
            page.wait_for_url(re.compile("^" + re.escape(self.op + "/authorize") + r"\?"), timeout=TIMEOUT_MS)
        except PlaywrightError:
            self.shot(page, f"{name}-not-authorize")
            raise Failure(f"{self.rp}/protected/ did not send the browser to {self.op}/authorize; it is at {page.url}")
        query = page.url.split("?", 1)[1]
        parameters = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        for required in ("client_id", "redirect_uri", "state", "nonce", "code_challenge"):
            if required not in parameters:
                raise Failure(f"the authorization request has no {required}: {page.url}")
        if parameters.get("code_challenge_method") != "S256":
            raise Failure(f"mod_auth_openidc did not use PKCE S256: {page.url}")
        client = page.locator('meta[name="qrlogin-client-name"]').get_attribute("content")
        if client != CLIENT_NAME:
            raise Failure(f"the login page names the app {client!r}, not {CLIENT_NAME!r}")
        log(f"landed on {self.op}/authorize (client_id={parameters['client_id']}, PKCE S256) naming {client!r}")
        return page, errors

    def expect_protected(self, page, name: str, amr: str | None):
        # A page that stays at the redirect URI is mod_auth_openidc's error page (it answers a
        # good response with a redirect to the page first asked for).
        protected, callback = self.rp + "/protected/", self.rp + "/protected/redirect_uri"
        try:
            page.wait_for_url(lambda url: url == protected or url.startswith(callback), timeout=TIMEOUT_MS)
            if page.url != protected:
                page.wait_for_load_state()
                raise PlaywrightError("at the redirect URI")
            page.locator('[data-testid="claims"]').wait_for(timeout=TIMEOUT_MS)
        except PlaywrightError:
            self.shot(page, f"{name}-stuck")
            text = ""
            try:
                text = page.inner_text("body")[:500]
            except PlaywrightError:
                pass
            raise Failure(f"the browser did not end on {self.rp}/protected/ with the claims; it is at {page.url}: {text!r}")
        claims = {cell.get_attribute("data-claim"): cell.inner_text()
                  for cell in page.locator("[data-claim]").all()}
        self.shot(page, f"{name}-protected")
        wanted = {"preferred_username": self.username, "name": DISPLAY_NAME, "iss": self.op}
        for claim, value in wanted.items():
            if claims.get(claim) != value:
                raise Failure(f"claim {claim} on the protected page is {claims.get(claim)!r}, not {value!r}; all: {claims}")
        if not claims.get("sub"):
            raise Failure(f"no sub claim on the protected page: {claims}")
        if amr is not None and claims.get("amr") != amr:
            raise Failure(f"claim amr is {claims.get('amr')!r}, not {amr!r}; all: {claims}")
        remote_user = page.locator('[data-testid="remote-user"]').inner_text()
        if remote_user != f"{claims['sub']}@{self.op}":
            raise Failure(f"REMOTE_USER is {remote_user!r}, not sub@iss")
        shown = ", ".join(f"{k}={claims[k]}" for k in ("sub", "preferred_username", "name", "iss", "amr") if k in claims)
        log(f"{name}: back on {self.rp}/protected/, which shows the claims Apache received: {shown}")
        return claims

    def password(self) -> str:
        context = self.browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page, errors = self.open_protected(context, "password")
            self.wait_for_script(page, errors)
            self.shot(page, "password-authorize")
            field = page.locator('input[type="password"]')
            toggle = page.locator('[data-testid="password-toggle"]')
            if toggle.count() == 1 and toggle.is_visible() and not field.is_visible():
                toggle.click()  # "Use a password instead" opens the form
            if field.count() == 1 and field.is_visible():
                page.locator('input[autocomplete="username"]').fill(self.username)
                field.fill(PASSWORD)
                self.shot(page, "password-form")
                field.press("Enter")
                how = "the page's password form"
            else:
                # The page offers no password form: its own script context posts the fallback
                # (same origin, so the CSRF cookie goes along) and follows the redirect.
                result = page.evaluate("""async ([username, password]) => {
                    const meta = name => document.querySelector(`meta[name="${name}"]`).content;
                    const response = await fetch('/authorize/password', {method: 'POST',
                        headers: {'Content-Type': 'application/json'},
                        body: JSON.stringify({query: meta('qrlogin-authorize'), csrf: meta('qrlogin-csrf'), username, password})});
                    return {status: response.status, body: await response.text()};
                }""", [self.username, PASSWORD])
                if result["status"] != 200:
                    raise Failure(f"POST /authorize/password: {result['status']} {result['body'][:300]}")
                redirect = json.loads(result["body"])["redirect"]
                if not redirect.startswith(self.rp + "/protected/redirect_uri?"):
                    raise Failure(f"POST /authorize/password redirects to {redirect}")
                page.goto(redirect)
                how = "POST /authorize/password from the page's script context (the page offers no password form)"
            log(f"signed in with the password through {how}")
            claims = self.expect_protected(page, "password", "pwd")

            # Single sign-on: Apache forgets its session, QRLogin's session cookie stays.
            context.clear_cookies(name=re.compile(r"^mod_auth_openidc"))
            hops: list[tuple[int, str]] = []
            page.on("response", lambda r: hops.append((r.status, r.url)) if r.request.is_navigation_request() else None)
            page.goto(self.rp + "/protected/")
            again = self.expect_protected(page, "password-sso", "pwd")
            if again["sub"] != claims["sub"]:
                raise Failure(f"single sign-on came back with another sub: {again['sub']} vs {claims['sub']}")
            at_op = [(status, url) for status, url in hops if url.startswith(self.op + "/authorize?")]
            if not at_op:
                raise Failure(f"the second visit never went to QRLogin (Apache kept its session?): {hops}")
            if any(not 300 <= status < 400 for status, _ in at_op):
                raise Failure(f"single sign-on showed QRLogin's login page again: {at_op}")
            log("single sign-on: a second visit without Apache's cookie came back without a login screen")
            if errors:
                log(f"(page errors on the login page: {errors})")
            return "password"
        finally:
            context.close()

    def qr(self) -> str:
        phone = Device(self.op)
        session = api(self.op, "POST", "/api/v1/auth/password",
                      {"username": self.username, "password": PASSWORD, "device": {"type": "android", "name": "Alice's Pixel"}},
                      device=phone, expect=201)
        phone_token = session["accessToken"]
        context = self.browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            created: list[str] = []
            context.on("request", lambda r: created.append(r.post_data or "")
                       if r.method == "POST" and r.url == self.op + "/api/v1/qr" else None)
            page, errors = self.open_protected(context, "qr")
            image = page.locator('[data-testid="qr"]')
            self.wait_for_script(page, errors)
            self.shot(page, "qr-authorize")
            if not any('"authorize"' in body for body in created):
                if self.flows_asked == "auto":
                    log("the login page's QR code is a plain login, not one for the app (its POST /api/v1/qr has "
                        "no authorize member): the QR sign-in for apps is not in this build yet, skipped")
                    return None
                raise Failure(f"the login page's POST /api/v1/qr names no app (no authorize member): {created}")
            login_id = re.search(r"/api/v1/qr/([^/]+)/qr\.svg", image.get_attribute("src")).group(1)
            scan = api(self.op, "POST", f"/api/v1/qr/{login_id}/scan", device=phone, token=phone_token)
            app = (scan.get("client") or {}).get("name")
            if app != CLIENT_NAME:
                raise Failure(f"the phone was told the app is {app!r}, not {CLIENT_NAME!r}: {scan}")
            match = page.locator('[data-testid="match"]')
            try:
                match.wait_for(state="visible", timeout=TIMEOUT_MS)
                page.wait_for_function("""() => /^\\d+$/.test(document.querySelector('[data-testid="match"]').textContent.trim())""",
                                       timeout=TIMEOUT_MS)
            except PlaywrightError:
                self.shot(page, "qr-no-match")
                raise Failure("the login page did not show the number to pick after the scan")
            number = int(match.inner_text().strip())
            if number not in scan.get("matchChoices", []):
                raise Failure(f"the page shows {number}, not one of the phone's choices {scan.get('matchChoices')}")
            self.shot(page, "qr-scanned")
            api(self.op, "POST", f"/api/v1/qr/{login_id}/confirm", {"ticket": scan["ticket"], "match": number},
                device=phone, token=phone_token)
            log(f"the phone scanned login {login_id[:8]}… for {app!r} and confirmed with {number}")
            self.expect_protected(page, "qr", "qr")
            if errors:
                log(f"(page errors on the login page: {errors})")
            return "qr"
        finally:
            context.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--op", required=True)
    parser.add_argument("--rp", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--flows", default="auto", choices=["auto", "qr", "password", "both"])
    args = parser.parse_args()
    Path(args.artifacts).mkdir(parents=True, exist_ok=True)
    flows = {"auto": ["password", "qr"], "both": ["password", "qr"]}.get(args.flows, [args.flows])
    done: list[str] = []
    current = "setup"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                run = Run(args, browser)
                for flow in flows:
                    print(f"-- {flow}", flush=True)
                    current = flow
                    if getattr(run, flow)():
                        done.append(flow)
            finally:
                browser.close()
    except Failure as failure:
        print(f"oidc relying party: FAILED ({current}): {failure} (screenshots in {args.artifacts})", file=sys.stderr)
        sys.exit(1)
    print(f"oidc relying party: {args.label} signed in through QRLogin ({', '.join(done)})")


if __name__ == "__main__":
    main()
