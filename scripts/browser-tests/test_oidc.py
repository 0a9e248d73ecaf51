"""OpenID Connect sign-in in the browser: a web app sends the browser to /authorize, whose login
screen is the QR page naming the app; the phone names the app and its scopes and confirms the
number; the browser lands on the app's redirect URI with a code that the app redeems for an ID
token. Also the password fallback on the same screen, single sign-on, and the phone's page."""
import base64
import hashlib
import json
import secrets
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from playwright.sync_api import expect

from conftest import shot
from test_device_grant import form
from test_pages import PASSWORD, Device, api, assert_local_only, b64url, decode_qr, new_user, sign_in_on_phone

SCOPE_WORDS = ["Sign you in with your QRLogin account", "See your name and username"]


# ---- helpers ---------------------------------------------------------------------------------

class AppLogin:
    """One authorization request of the web app: its PKCE verifier, state and nonce."""

    def __init__(self, server, rp, client_id: str = "wiki", **extra: str):
        self.server, self.rp, self.client_id = server, rp, client_id
        self.verifier = secrets.token_urlsafe(48)
        self.state = "xyz"
        self.nonce = "n-" + secrets.token_hex(4)
        challenge = b64url(hashlib.sha256(self.verifier.encode()).digest())
        parameters = {"response_type": "code", "client_id": client_id, "redirect_uri": rp.redirect_uri,
                      "scope": "openid profile", "state": self.state, "nonce": self.nonce,
                      "code_challenge": challenge, "code_challenge_method": "S256", **extra}
        # The browser opens the server by another host name than its public URL (see Server).
        self.url = server.browse + "/authorize?" + urllib.parse.urlencode(parameters, quote_via=urllib.parse.quote)

    def landed(self, page) -> dict:
        """Waits for the browser to reach the redirect URI; returns its query parameters."""
        page.wait_for_url(self.rp.redirect_uri + "?*")
        parameters = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
        assert parameters.get("state") == self.state, parameters
        assert parameters.get("iss") == self.server.base, "RFC 9207: the issuer is named"
        assert "error" not in parameters, parameters
        return parameters

    def redeem(self, code: str) -> dict:
        """What the app's back end does with the code: the token endpoint, then checks the ID
        token's signature against the JWKS and its claims."""
        status, tokens = form(self.server.base, "/oauth/token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.rp.redirect_uri,
            "code_verifier": self.verifier, "client_id": self.client_id})
        assert status == 200, tokens
        claims = verify_id_token(self.server, tokens["id_token"])
        assert claims["iss"] == self.server.base and claims["aud"] in (self.client_id, [self.client_id]), claims
        assert claims["nonce"] == self.nonce
        assert claims["exp"] > time.time()
        return claims


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_id_token(server, token: str) -> dict:
    """Checks an ES256 ID token against the server's JWKS, as a relying party does."""
    head, body, signature = token.split(".")
    header = json.loads(unb64url(head))
    assert header["alg"] == "ES256", header
    _, _, jwks = api(server.base, "GET", "/oauth/jwks")
    jwk = next(k for k in json.loads(jwks)["keys"] if k["kid"] == header["kid"])
    key = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64url(jwk["x"]), "big"), int.from_bytes(unb64url(jwk["y"]), "big"), ec.SECP256R1()).public_key()
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises when forged
    return json.loads(unb64url(body))


class ApiPhone:
    """A phone signed in as `username` over the JSON API, with its own DPoP key."""

    def __init__(self, server, username: str):
        self.base = server.base
        self.key = Device(server.base)
        status, _, body = api(server.base, "POST", "/api/v1/auth/password",
                              {"username": username, "password": PASSWORD, "device": {"type": "android", "name": "Test phone"}}, device=self.key)
        assert status == 201, body
        self.token = json.loads(body)["accessToken"]

    def post(self, path: str, payload=None):
        status, _, body = api(self.base, "POST", path, payload,
                              headers={"Authorization": f"DPoP {self.token}", "DPoP": self.key.proof("POST", path, self.token)})
        return status, json.loads(body) if body else None


def request_id(page) -> str:
    qr = page.locator("[data-testid=qr]")
    expect(page.locator("[data-testid=state]")).to_have_text("pending")
    return qr.get_attribute("data-request-id")


def open_password_form(page):
    page.locator("[data-testid=password-toggle]").click()
    field = page.locator("#password-username")
    expect(field).to_be_focused()
    return field


# ---- tests -----------------------------------------------------------------------------------

def test_app_login_screen_by_qr_ends_at_the_app_with_a_code_for_an_id_token(server, relying_party, pc):
    username = new_user(server)
    login = AppLogin(server, relying_party)
    page = pc.new_page()
    page.goto(login.url)

    expect(page.locator("#login-title")).to_have_text("Sign in to Team wiki")
    assert page.title() == "Sign in to Team wiki · QRLogin"
    expect(page.locator("[data-testid=password-toggle]")).to_have_text("Use a password instead")
    expect(page.locator("#password-form")).to_be_hidden()
    id = request_id(page)
    assert decode_qr(page) == server.base + "/q/" + id
    shot(page, "30-pc-app-login")

    phone = ApiPhone(server, username)
    status, scan = phone.post(f"/api/v1/qr/{id}/scan")
    assert status == 200, scan
    assert scan["client"] == {"id": "wiki", "name": "Team wiki"}
    assert [s["description"] for s in scan["scopes"]] == SCOPE_WORDS
    assert [s["name"] for s in scan["scopes"]] == ["openid", "profile"]
    assert len(scan["matchChoices"]) == 3 and "userCodeChoices" not in scan

    expect(page.locator("[data-testid=state]")).to_have_text("scanned")
    number = page.locator("[data-testid=match]").inner_text()
    assert int(number) in scan["matchChoices"]
    shot(page, "31-pc-app-login-scanned")
    status, answer = phone.post(f"/api/v1/qr/{id}/confirm", {"ticket": scan["ticket"], "match": int(number)})
    assert status == 200, answer

    # No extra click: the page trades its new token for the redirect and goes.
    parameters = login.landed(page)
    assert parameters["code"].startswith("qrl_ac_")
    expect(page.locator("#query")).to_contain_text("code=")
    claims = login.redeem(parameters["code"])
    assert claims["amr"] == ["qr"]
    assert claims["preferred_username"] == username and claims["name"] == "Alice Example"
    # The code works once.
    status, body = form(server.base, "/oauth/token", {"grant_type": "authorization_code", "code": parameters["code"],
                                                       "redirect_uri": relying_party.redirect_uri, "code_verifier": login.verifier, "client_id": "wiki"})
    assert (status, body["error"]) == (400, "invalid_grant")

    # The login screen's token bought the redirect and nothing else: the QRLogin page itself is
    # not signed in (on a shared PC, the next person must not find the account there).
    page.goto(server.browse + "/")
    expect(page.locator("[data-testid=qr]")).to_be_visible()
    expect(page.locator("#account-view")).to_be_hidden()
    assert not pc.watch.dialogs
    assert_local_only(pc, server, relying_party)


def test_password_fallback_on_the_app_login_screen(server, relying_party, pc):
    username = new_user(server)
    login = AppLogin(server, relying_party)
    page = pc.new_page()
    page.goto(login.url)
    id = request_id(page)
    field = open_password_form(page)
    field.fill(username)
    page.locator("#password-password").fill("not the password")
    page.keyboard.press("Enter")
    error = page.locator("[data-testid=password-error]")
    expect(error).to_have_text("Wrong username or password.")
    assert page.url == login.url, "a wrong password stays on the page"
    shot(page, "32-pc-app-login-password-wrong")

    page.locator("#password-password").fill(PASSWORD)
    page.locator("[data-testid=password-signin]").click()
    parameters = login.landed(page)
    claims = login.redeem(parameters["code"])
    assert claims["amr"] == ["pwd"] and claims["preferred_username"] == username

    # The QR code the page showed was withdrawn: a phone scanning it now gets nowhere.
    deadline = time.time() + 3
    while api(server.base, "GET", f"/api/v1/qr/{id}/qr.svg")[0] != 404:
        assert time.time() < deadline, "the abandoned QR login request is still live"
        time.sleep(0.1)
    status, _ = ApiPhone(server, username).post(f"/api/v1/qr/{id}/scan")
    assert status in (404, 409, 410), status
    assert not pc.watch.dialogs
    assert_local_only(pc, server, relying_party)


def test_single_sign_on_and_prompt_login(server, relying_party, pc):
    username = new_user(server)
    first = AppLogin(server, relying_party)
    page = pc.new_page()
    page.goto(first.url)
    open_password_form(page).fill(username)
    page.locator("#password-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    first.redeem(first.landed(page)["code"])
    assets = [u for u in pc.watch.requests if u.startswith(server.browse + "/assets/")]

    # The same browser again: straight to the app, no login screen.
    again = AppLogin(server, relying_party)
    page.goto(again.url)
    claims = again.redeem(again.landed(page)["code"])
    assert claims["amr"] == ["pwd"] and claims["preferred_username"] == username
    assert not [u for u in pc.watch.requests if u.startswith(server.browse + "/assets/")][len(assets):], "no login screen was loaded"

    # prompt=login asks for a fresh sign-in: the login screen shows again.
    forced = AppLogin(server, relying_party, prompt="login")
    page.goto(forced.url)
    expect(page.locator("#login-title")).to_have_text("Sign in to Team wiki")
    expect(page.locator("[data-testid=state]")).to_have_text("pending")
    assert page.url.startswith(server.browse + "/authorize?")
    # Another browser has no session: it gets the login screen.
    other = pc.browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(AppLogin(server, relying_party).url)
        expect(fresh.locator("#login-title")).to_have_text("Sign in to Team wiki")
    finally:
        other.close()


def test_phone_page_names_the_app_and_its_scopes(server, relying_party, pc, phone):
    username = new_user(server)
    login = AppLogin(server, relying_party)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    pc_page.goto(login.url)
    url = decode_qr(pc_page)
    phone_page.goto(url)
    sign_in_on_phone(phone_page, username)

    expect(phone_page.locator("#request-title")).to_have_text("Sign in to Team wiki")
    expect(phone_page.locator("[data-testid=client-name]")).to_have_text("Team wiki")
    scopes = phone_page.locator("[data-testid=scopes] li")
    expect(scopes).to_have_text(SCOPE_WORDS)
    requester = phone_page.locator("[data-testid=requester]")
    expect(requester).to_contain_text("Chrome on Linux")
    expect(requester).to_contain_text("127.0.0.1")
    choices = phone_page.locator("[data-testid=match-choice]")
    expect(choices).to_have_count(3)
    expect(phone_page.locator("[data-testid=code-choice]")).to_have_count(0)
    expect(phone_page.locator("#choice-legend")).to_have_text("Which number does that device show?")
    assert phone_page.evaluate("document.activeElement.dataset.testid") == "deny"
    expect(phone_page.locator("[data-testid=confirm]")).to_be_disabled()

    expect(pc_page.locator("[data-testid=state]")).to_have_text("scanned")
    number = pc_page.locator("[data-testid=match]").inner_text()
    shot(phone_page, "33-phone-app-signin")
    shot(pc_page, "34-pc-app-login-scanned")
    choices.filter(has_text=number).click()
    phone_page.locator("[data-testid=confirm]").click()
    expect(phone_page.locator("[data-testid=result]")).to_have_text("Confirmed. The computer is signing you in to Team wiki.")
    login.redeem(login.landed(pc_page)["code"])
    assert not pc.watch.dialogs and not phone.watch.dialogs
    assert_local_only(pc, server, relying_party)
    assert_local_only(phone, server)


def test_phone_can_decline_an_app_sign_in(server, relying_party, pc, phone):
    username = new_user(server)
    login = AppLogin(server, relying_party)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    pc_page.goto(login.url)
    phone_page.goto(decode_qr(pc_page))
    sign_in_on_phone(phone_page, username)
    expect(phone_page.locator("#request-title")).to_have_text("Sign in to Team wiki")
    # Enter on the default focus declines.
    phone_page.keyboard.press("Enter")
    expect(phone_page.locator("[data-testid=result]")).to_have_text("Declined. You were not signed in to Team wiki.")
    expect(pc_page.locator("[data-testid=state]")).to_have_text("denied")
    assert pc_page.url == login.url, "a declined sign-in does not go to the app"
    # The password is still there, and a new code can be had.
    expect(pc_page.locator("[data-testid=password-toggle]")).to_be_visible()
    pc_page.locator("[data-testid=renew]").click()
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")


def test_finishing_errors_are_shown(server, relying_party, pc):
    """Without its CSRF cookie (here: cleared, as if it expired) the server refuses to finish;
    the page says so rather than going anywhere."""
    username = new_user(server)
    login = AppLogin(server, relying_party)
    page = pc.new_page()
    page.goto(login.url)
    id = request_id(page)
    pc.clear_cookies()

    open_password_form(page).fill(username)
    page.locator("#password-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=password-error]")).to_contain_text("reload the page")

    phone = ApiPhone(server, username)
    status, scan = phone.post(f"/api/v1/qr/{id}/scan")
    assert status == 200, scan
    expect(page.locator("[data-testid=state]")).to_have_text("scanned")
    number = page.locator("[data-testid=match]").inner_text()
    assert phone.post(f"/api/v1/qr/{id}/confirm", {"ticket": scan["ticket"], "match": int(number)})[0] == 200
    expect(page.locator("[data-testid=state]")).to_have_text("error")
    expect(page.locator("#status-message")).to_contain_text("Cannot finish signing in to Team wiki")
    expect(page.locator("#status-message")).to_contain_text("reload the page")
    expect(page.locator("[data-testid=renew]")).to_be_visible()
    assert page.url == login.url


def test_hostile_app_name_is_text(server, relying_party, pc, phone):
    username = new_user(server)
    hostile = "<img src=x onerror=alert(1)>"
    login = AppLogin(server, relying_party, client_id="hostile-wiki")
    pc_page, phone_page = pc.new_page(), phone.new_page()
    pc_page.goto(login.url)
    expect(pc_page.locator("#login-title")).to_have_text("Sign in to " + hostile)
    assert pc_page.locator("#login-title img").count() == 0
    phone_page.goto(decode_qr(pc_page))
    sign_in_on_phone(phone_page, username)
    expect(phone_page.locator("[data-testid=client-name]")).to_have_text(hostile)
    assert phone_page.locator("#request-title img").count() == 0
    pc_page.wait_for_timeout(300)
    assert pc.watch.dialogs == [] and phone.watch.dialogs == [], "a script ran"


def test_plain_page_is_no_app_login_screen(server, pc):
    page = pc.new_page()
    page.goto(server.browse + "/")
    expect(page.locator("[data-testid=state]")).to_have_text("pending")
    expect(page.locator("#login-title")).to_have_text("Sign in with your phone")
    expect(page.locator("#password-box")).to_be_hidden()
    expect(page.locator("#app-intro")).to_be_hidden()
    assert page.title() == "Sign in · QRLogin"


def test_one_time_code_fallback_on_the_app_login_screen(server, relying_party, pc):
    """A user without their phone's app but with its number: the code goes out by text message
    (the development sender writes it to the server's log), and signing in with it lands on the
    app with amr otp."""
    username = "u" + secrets.token_hex(4)
    phone = "+1555" + str(secrets.randbelow(10**7)).zfill(7)
    status, _, _ = api(server.base, "POST", "/api/v1/accounts", {"username": username, "password": PASSWORD, "phone": phone})
    assert status == 201
    login = AppLogin(server, relying_party)
    page = pc.new_page()
    page.goto(login.url)
    request_id(page)
    page.locator("[data-testid=code-toggle]").click()
    page.locator("#code-phone").fill(phone)
    page.locator("[data-testid=code-send]").click()
    expect(page.locator("[data-testid=code-error]")).to_contain_text("a code is on its way")
    code = None
    deadline = time.time() + 5
    while code is None and time.time() < deadline:
        server.log.flush()
        for line in open(server.log.name, encoding="utf-8"):
            if "qrlogin.code=" in line and f"qrlogin.phone={phone}" in line:
                code = line.split("qrlogin.code=")[1].split()[0]
        time.sleep(0.1)
    assert code, "the development sender logged no code"
    page.locator("#code-code").fill("000000" if code != "000000" else "111111")
    page.locator("[data-testid=code-signin]").click()
    expect(page.locator("[data-testid=code-error]")).to_have_text("The code is wrong, expired or already used.")
    page.locator("#code-code").fill(code)
    shot(page, "37-pc-app-login-code")
    page.locator("[data-testid=code-signin]").click()
    claims = login.redeem(login.landed(page)["code"])
    assert claims["amr"] == ["otp"] and claims["preferred_username"] == username
    assert not pc.watch.dialogs


def test_login_hint_prefills_the_username(server, relying_party, pc):
    login = AppLogin(server, relying_party, login_hint="alice.hint")
    page = pc.new_page()
    page.goto(login.url)
    request_id(page)
    field = open_password_form(page)
    expect(field).to_have_value("alice.hint")
