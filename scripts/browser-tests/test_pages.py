"""The web pages in a real browser: the whole QR login between a desktop PC context and a phone
context, deny, expiry, remote logout, hostile device names, headers and external requests."""
import base64
import hashlib
import io
import json
import secrets
import time
import urllib.error
import urllib.request

import zxingcpp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from PIL import Image
from playwright.sync_api import expect

from conftest import shot

PASSWORD = "correct horse battery"


# ---- helpers ---------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Device:
    """A DPoP key outside the browser (for API-made accounts and hostile requests)."""

    def __init__(self, base: str):
        self.base = base
        self.key = ec.generate_private_key(ec.SECP256R1())
        n = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}

    def proof(self, method: str, path: str, token: str | None = None) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"htm": method, "htu": self.base + path, "iat": int(time.time()), "jti": secrets.token_urlsafe(16)}
        if token:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        data = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        r, s = decode_dss_signature(self.key.sign(data.encode(), ec.ECDSA(hashes.SHA256())))
        return data + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def api(base: str, method: str, path: str, body=None, device: Device | None = None, headers=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    if device:
        h["DPoP"] = device.proof(method, path)
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None, method=method, headers=h)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def new_user(server) -> str:
    username = "u" + secrets.token_hex(4)
    status, _, _ = api(server.base, "POST", "/api/v1/accounts", {"username": username, "password": PASSWORD, "displayName": "Alice Example"})
    assert status == 201
    return username


def decode_qr(page) -> str:
    """Reads the PC page's QR code from a screenshot of it, as a phone camera would."""
    qr = page.locator("[data-testid=qr]")
    expect(qr).to_be_visible()
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=qr]'); return i.complete && i.naturalWidth > 0; }")
    image = Image.open(io.BytesIO(qr.screenshot()))
    results = zxingcpp.read_barcodes(image)
    assert results, "no QR code found in the PC page's screenshot"
    return results[0].text


def sign_in_on_phone(page, username: str):
    """Signs in with the keyboard only: type, Tab, type, Enter."""
    field = page.locator("input[name=username]")
    expect(field).to_be_visible()
    field.focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def assert_local_only(context, *servers):
    origins = {s.base for s in servers} | {s.browse for s in servers}
    outside = [u for u in context.watch.requests if not any(u.startswith(o + "/") for o in origins)]
    assert not outside, f"external requests: {outside}"
    csp = [e for e in context.watch.errors if "Content Security Policy" in e]
    assert not csp, f"CSP violations: {csp}"


def log_in_pc(server, pc_page, phone_page, username: str):
    """The whole flow: returns the number that was picked."""
    pc_page.goto(server.browse + "/")
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")
    url = decode_qr(pc_page)
    phone_page.goto(url)
    sign_in_on_phone(phone_page, username)
    expect(phone_page.locator("[data-testid=requester]")).to_be_visible()
    expect(pc_page.locator("[data-testid=state]")).to_have_text("scanned")
    number = pc_page.locator("[data-testid=match]").inner_text()
    phone_page.locator("[data-testid=match-choice]", has_text=number).click()
    phone_page.locator("[data-testid=confirm]").click()
    expect(pc_page.locator("[data-testid=account]")).to_have_text("Alice Example")
    return number


# ---- tests -----------------------------------------------------------------------------------

def test_full_flow(server, pc, phone):
    username = "alice" + secrets.token_hex(3)
    pc_page, phone_page = pc.new_page(), phone.new_page()

    pc_page.goto(server.browse + "/")
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")
    shot(pc_page, "01-pc-qr")
    url = decode_qr(pc_page)
    assert url.startswith(server.base + "/q/")

    # The phone opens the decoded url, has no account yet, and registers from the sign-in page.
    phone_page.goto(url)
    expect(phone_page.locator("input[name=username]")).to_be_visible()
    shot(phone_page, "02-phone-signin")
    phone_page.locator("[data-testid=register-link]").click()
    phone_page.fill("input[name=new-username]", username)
    phone_page.fill("input[name=displayName]", "Alice Example")
    phone_page.fill("input[name=new-password]", PASSWORD)
    shot(phone_page, "03-phone-register")
    phone_page.locator("[data-testid=register]").click()

    requester = phone_page.locator("[data-testid=requester]")
    expect(requester).to_be_visible()
    expect(requester).to_contain_text("Chrome on Linux")
    expect(requester).to_contain_text("127.0.0.1")
    # PC and phone on one network: no QRLjacking warning.
    expect(phone_page.locator("[data-testid=network-warning]")).to_be_hidden()
    choices = phone_page.locator("[data-testid=match-choice]")
    expect(choices).to_have_count(3)
    # Deny is the default focus.
    assert phone_page.evaluate("document.activeElement.dataset.testid") == "deny"
    expect(phone_page.locator("[data-testid=confirm]")).to_be_disabled()

    expect(pc_page.locator("[data-testid=state]")).to_have_text("scanned")
    number = pc_page.locator("[data-testid=match]").inner_text()
    assert number.isdigit()
    expect(pc_page.locator("#scan-info")).to_contain_text(f"— pick {number} on your phone")
    assert number in [c.inner_text() for c in choices.all()]
    shot(pc_page, "04-pc-scanned")
    shot(phone_page, "05-phone-confirm")

    choices.filter(has_text=number).click()
    started = time.monotonic()
    phone_page.locator("[data-testid=confirm]").click()
    expect(pc_page.locator("[data-testid=account]")).to_have_text("Alice Example", timeout=1000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the PC showed the account after {elapsed:.2f} s"
    expect(phone_page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "confirmed")
    expect(pc_page.locator("[data-device-id]")).to_have_count(2)
    shot(pc_page, "06-pc-logged-in")
    shot(phone_page, "07-phone-confirmed")

    # Key and token persist in IndexedDB: a reload stays logged in.
    pc_page.reload()
    expect(pc_page.locator("[data-testid=account]")).to_have_text("Alice Example")
    expect(pc_page.locator("#login-view")).to_be_hidden()

    phone_page.goto(server.base + "/devices")
    expect(phone_page.locator("[data-device-id]")).to_have_count(2)
    shot(phone_page, "08-phone-devices")

    assert not pc.watch.dialogs and not phone.watch.dialogs
    assert_local_only(pc, server)
    assert_local_only(phone, server)


def test_long_poll_fallback(server, pc, phone):
    username = new_user(server)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    pc_page.goto(server.browse + "/?transport=poll")
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")
    url = decode_qr(pc_page)
    phone_page.goto(url)
    sign_in_on_phone(phone_page, username)
    expect(pc_page.locator("[data-testid=state]")).to_have_text("scanned")
    number = pc_page.locator("[data-testid=match]").inner_text()
    phone_page.locator("[data-testid=match-choice]", has_text=number).click()
    phone_page.locator("[data-testid=confirm]").click()
    expect(pc_page.locator("[data-testid=account]")).to_have_text("Alice Example", timeout=2000)
    assert any("wait=" in u for u in pc.watch.requests), "the page did not long-poll"


def test_network_warning(proxied_server, browser, phone):
    """QRLjacking: a request made on another network than the phone's (the PC's requests come
    through a trusted proxy that names 198.51.100.23) makes the phone warn, in plain words,
    before the number choice. It warns and does not block: the user decides."""
    server = proxied_server
    username = new_user(server)
    pc_context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light",
                                     extra_http_headers={"X-Forwarded-For": "198.51.100.23"})
    try:
        pc_page, phone_page = pc_context.new_page(), phone.new_page()
        pc_page.goto(server.browse + "/")
        expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")
        url = decode_qr(pc_page)
        phone_page.goto(url)
        sign_in_on_phone(phone_page, username)
        expect(phone_page.locator("[data-testid=requester]")).to_contain_text("198.51.100.23")
        warning = phone_page.locator("[data-testid=network-warning]")
        expect(warning).to_be_visible()
        expect(warning).to_have_text("Different network. This request comes from a different network than your phone. "
                                     "If someone sent you this code or link, tap Deny.")
        expect(warning).to_have_attribute("role", "alert")
        # Above the numbers, so it is read before a number is picked.
        above = phone_page.evaluate("""() => {
            const warning = document.querySelector('[data-testid=network-warning]').getBoundingClientRect();
            const choices = document.getElementById('choices').getBoundingClientRect();
            return warning.bottom <= choices.top; }""")
        assert above, "the warning is not above the number choice"
        shot(phone_page, "09-phone-network-warning")
        phone_page.locator("[data-testid=deny]").click()
        expect(phone_page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "denied")
        expect(pc_page.locator("[data-testid=state]")).to_have_text("denied")
    finally:
        pc_context.close()


def test_deny(server, pc, phone):
    username = new_user(server)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    pc_page.goto(server.browse + "/")
    url = decode_qr(pc_page)
    phone_page.goto(url)
    sign_in_on_phone(phone_page, username)
    expect(phone_page.locator("[data-testid=requester]")).to_be_visible()
    # Enter on the default focus declines.
    phone_page.keyboard.press("Enter")
    expect(phone_page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "denied")
    expect(pc_page.locator("[data-testid=state]")).to_have_text("denied")
    expect(pc_page.locator("#status-message")).to_contain_text("declined")
    shot(pc_page, "09-pc-denied")
    shot(phone_page, "10-phone-denied")
    old = pc_page.locator("[data-testid=qr]").get_attribute("src")
    pc_page.locator("[data-testid=renew]").click()
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")
    assert pc_page.locator("[data-testid=qr]").get_attribute("src") != old
    # The used code's image is gone, and opening its url again says it was used.
    status, _, _ = api(server.base, "GET", old)
    assert status == 404
    phone_page.goto(url)
    expect(phone_page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "used")


def test_expiry_renews_the_code(short_server, pc):
    page = pc.new_page()
    page.goto(short_server.browse + "/")
    expect(page.locator("[data-testid=state]")).to_have_text("pending")
    first = page.locator("[data-testid=qr]").get_attribute("data-request-id")
    expect(page.locator("[data-testid=qr]")).not_to_have_attribute("data-request-id", first, timeout=20000)
    expect(page.locator("[data-testid=state]")).to_have_text("pending")
    url = decode_qr(page)
    assert url.endswith("/q/" + page.locator("[data-testid=qr]").get_attribute("data-request-id"))
    status, _, _ = api(short_server.base, "GET", f"/api/v1/qr/{first}/qr.svg")
    assert status == 404


def test_phone_messages(server, short_server, phone):
    username = new_user(server)
    page = phone.new_page()
    page.goto(server.base + "/q/AAAAAAAAAAAAAAAAAAAAAA")
    sign_in_on_phone(page, username)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "unknown")
    texts = [page.locator("[data-testid=result]").inner_text()]
    shot(page, "11-phone-unknown")

    # Another phone already scanned it: not yours.
    pc_key, other = Device(server.base), Device(server.base)
    _, _, body = api(server.base, "POST", "/api/v1/qr", {"device": {"type": "web", "name": "Office PC"}}, device=pc_key)
    login = json.loads(body)
    other_user = new_user(server)
    _, _, body = api(server.base, "POST", "/api/v1/auth/password", {"username": other_user, "password": PASSWORD, "device": {"type": "ios", "name": "x"}}, device=other)
    token = json.loads(body)["accessToken"]
    status, _, _ = api(server.base, "POST", f"/api/v1/qr/{login['id']}/scan",
                       headers={"Authorization": f"DPoP {token}", "DPoP": other.proof("POST", f"/api/v1/qr/{login['id']}/scan", token)})
    assert status == 200
    page.goto(login["url"])
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "not-yours")
    texts.append(page.locator("[data-testid=result]").inner_text())
    shot(page, "12-phone-not-yours")

    # Expired: a request on the short-TTL server, opened after its 10 s.
    _, _, body = api(short_server.base, "POST", "/api/v1/qr", {"device": {"type": "web", "name": "Old PC"}}, device=Device(short_server.base))
    expired = json.loads(body)
    short_user = new_user(short_server)
    time.sleep(10.5)
    page.goto(expired["url"])
    sign_in_on_phone(page, short_user)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "expired")
    texts.append(page.locator("[data-testid=result]").inner_text())
    assert len(set(texts)) == 3, texts


def test_remote_logout(server, pc, phone):
    username = new_user(server)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    log_in_pc(server, pc_page, phone_page, username)
    phone_page.goto(server.base + "/devices")
    rows = phone_page.locator("[data-testid=device][data-current=false]")
    expect(rows).to_have_count(1)
    rows.locator("[data-testid=device-logout]").click()
    expect(rows).to_have_count(0)
    # The PC's next call fails and the page goes back to a QR code.
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending", timeout=10000)
    expect(pc_page.locator("[data-testid=qr]")).to_be_visible()
    expect(pc_page.locator("#notice")).to_contain_text("logged out")
    shot(pc_page, "13-pc-after-remote-logout")
    pc_page.reload()
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")


def test_sign_out(server, pc, phone):
    username = new_user(server)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    log_in_pc(server, pc_page, phone_page, username)
    pc_page.locator("[data-testid=signout]").click()
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")
    pc_page.reload()
    expect(pc_page.locator("[data-testid=state]")).to_have_text("pending")


def test_hostile_device_names_are_text(server, phone):
    username = new_user(server)
    hostile = "<img src=x onerror=alert(1)>"
    pc_key = Device(server.base)
    status, _, body = api(server.base, "POST", "/api/v1/qr", {"device": {"type": "web", "name": hostile}}, device=pc_key,
                          headers={"User-Agent": "<script>alert(2)</script>"})
    assert status == 201
    url = json.loads(body)["url"]
    page = phone.new_page()
    page.goto(url)
    sign_in_on_phone(page, username)
    requester = page.locator("[data-testid=requester]")
    expect(requester).to_contain_text(hostile)
    expect(requester).to_contain_text("<script>alert(2)</script>")
    assert page.locator("[data-testid=requester] img").count() == 0
    assert page.locator("[data-testid=requester] script").count() == 0
    page.wait_for_timeout(300)
    assert phone.watch.dialogs == [], "a script ran"
    shot(page, "14-phone-hostile-name")
    assert_local_only(phone, server)


def test_headers(server, pc):
    for path in ("/", "/q/AAAAAAAAAAAAAAAAAAAAAA", "/device", "/devices", "/assets/pc.js", "/assets/confirm.js", "/assets/style.css"):
        status, headers, _ = api(server.base, "GET", path)
        assert status == 200, path
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
    page = pc.new_page()
    response = page.goto(server.browse + "/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    expect(page.locator("[data-testid=state]")).to_have_text("pending")
    # No inline script anywhere in the pages.
    assert page.evaluate("[...document.scripts].every(s => s.src && !s.textContent.trim())")
    assert_local_only(pc, server)


def test_qr_png_decodes_to_the_url(server):
    _, _, body = api(server.base, "POST", "/api/v1/qr", {"device": {"type": "web", "name": "PNG check"}}, device=Device(server.base))
    login = json.loads(body)
    status, headers, png = api(server.base, "GET", f"/api/v1/qr/{login['id']}/qr.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and headers["Cache-Control"] == "no-store"
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [r.text for r in results] == [login["url"]]


def test_pages_ride_out_a_failover(server, pc, phone):
    """Behind a load balancer, while the database fails over and after a proxy re-sent a GET:
    the PC's stream is answered 503 store_unavailable, then 401 dpop_proof_replayed, and its
    first /api/v1/me after login a replayed proof too. The page asks again with a new proof each
    time: the PC still logs in, and is not signed out."""
    import re
    username = new_user(server)
    pc_page, phone_page = pc.new_page(), phone.new_page()
    failures = {"stream": [(503, "store_unavailable"), (401, "dpop_proof_replayed")], "me": [(401, "dpop_proof_replayed")]}
    proofs = {"stream": [], "me": []}

    def flaky(kind):
        def handle(route):
            proofs[kind].append(route.request.headers.get("dpop"))
            if route.request.method == "GET" and failures[kind]:
                status, code = failures[kind].pop(0)
                body = {"type": "about:blank", "title": "failover", "status": status, "detail": "simulated", "code": code}
                route.fulfill(status=status, content_type="application/problem+json", body=json.dumps(body))
            else:
                route.continue_()
        return handle

    pc_page.route(re.compile(r".*/api/v1/qr/[A-Za-z0-9_-]+$"), flaky("stream"))
    pc_page.route(re.compile(r".*/api/v1/me$"), flaky("me"))
    log_in_pc(server, pc_page, phone_page, username)
    assert not failures["stream"] and not failures["me"], "the simulated failures were not all served"
    assert len(set(proofs["stream"])) == len(proofs["stream"]) >= 3, "each try of the stream carries a new proof"
    assert len(set(proofs["me"])) == len(proofs["me"]) >= 2
    pc_page.reload()
    expect(pc_page.locator("[data-testid=account]")).to_have_text("Alice Example")
