"""The OAuth device grant (RFC 8628) in the browser: a device (here plain HTTP, as a TV or a
command line would) starts a grant, the phone approves it at verification_uri_complete (the QR's
/q/{id}, picking the user code among three) or at /device (typing the code), the device then
gets tokens; /devices lists the apps and revokes them."""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import expect

from conftest import RESOURCE_SERVER, shot
from test_pages import PASSWORD, Device, api, assert_local_only, new_user, sign_in_on_phone

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


# ---- helpers ---------------------------------------------------------------------------------

def form(base: str, path: str, fields: dict, basic: tuple[str, str] | None = None):
    """POSTs an OAuth form; returns (status, JSON body)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(fields).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def start_grant(server, client_id: str = "tv", scope: str = "openid profile offline_access") -> dict:
    """What a device does first: POST /oauth/device_authorization."""
    status, body = form(server.base, "/oauth/device_authorization", {"client_id": client_id, "scope": scope})
    assert status == 200, body
    assert body["verification_uri"] == server.base + "/device"
    assert body["verification_uri_complete"].startswith(server.base + "/q/")
    return body


def poll(server, grant: dict, client_id: str = "tv"):
    """One poll of the token endpoint with the grant's device code."""
    return form(server.base, "/oauth/token", {"grant_type": DEVICE_CODE_GRANT, "device_code": grant["device_code"], "client_id": client_id})


def introspect(server, token: str) -> dict:
    status, body = form(server.base, "/oauth/introspect", {"token": token}, basic=RESOURCE_SERVER)
    assert status == 200, body
    return body


def approve_over_api(server, username: str, client_id: str = "tv", scope: str = "openid profile") -> dict:
    """The whole grant without a browser: a phone key signs in as `username`, types the user
    code, confirms; returns the device's tokens."""
    grant = start_grant(server, client_id, scope)
    phone = Device(server.base)
    _, _, body = api(server.base, "POST", "/api/v1/auth/password",
                     {"username": username, "password": PASSWORD, "device": {"type": "ios", "name": "API phone"}}, device=phone)
    token = json.loads(body)["accessToken"]

    def call(path, payload):
        status, _, answer = api(server.base, "POST", path, payload,
                                headers={"Authorization": f"DPoP {token}", "DPoP": phone.proof("POST", path, token)})
        assert status in (200, 204), answer
        return json.loads(answer) if answer else None

    scan = call("/api/v1/device", {"userCode": grant["user_code"]})
    call(f"/api/v1/qr/{scan['id']}/confirm", {"ticket": scan["ticket"], "userCode": grant["user_code"]})
    status, tokens = poll(server, grant, client_id)
    assert status == 200, tokens
    return tokens


def sign_in_at(page, url: str, username: str):
    page.goto(url)
    sign_in_on_phone(page, username)


# ---- tests -----------------------------------------------------------------------------------

def test_qr_url_shows_the_app_and_three_codes(server, phone):
    username = new_user(server)
    grant = start_grant(server)
    page = phone.new_page()
    sign_in_at(page, grant["verification_uri_complete"], username)

    expect(page.locator("[data-testid=client-name]")).to_have_text("Living-room TV")
    expect(page.locator("#request-title")).to_have_text("Living-room TV wants to sign in as you")
    scopes = page.locator("[data-testid=scopes] li")
    expect(scopes).to_have_count(3)
    expect(page.locator("[data-testid=scopes]")).to_contain_text("See your name and username")
    expect(page.locator("[data-testid=scopes]")).to_contain_text("Stay signed in when you are not using it")
    expect(page.locator("[data-testid=requester]")).to_contain_text("127.0.0.1")
    codes = page.locator("[data-testid=code-choice]")
    expect(codes).to_have_count(3)
    expect(page.locator("[data-testid=match-choice]")).to_have_count(0)
    texts = [c.inner_text() for c in codes.all()]
    assert grant["user_code"] in texts and len(set(texts)) == 3, texts
    expect(page.locator("#choice-legend")).to_have_text("Pick the code shown on the device")
    assert page.evaluate("document.activeElement.dataset.testid") == "deny"
    expect(page.locator("[data-testid=confirm]")).to_be_disabled()
    shot(page, "20-phone-device-grant")

    # Not approved yet: the device keeps waiting.
    status, body = poll(server, grant)
    assert (status, body["error"]) == (400, "authorization_pending")

    codes.filter(has_text=grant["user_code"]).click()
    page.locator("[data-testid=confirm]").click()
    result = page.locator("[data-testid=result]")
    expect(result).to_have_attribute("data-outcome", "confirmed")
    expect(result).to_have_text("Confirmed. Living-room TV is now signed in to your account.")
    shot(page, "21-phone-device-grant-confirmed")

    status, tokens = poll(server, grant)
    assert status == 200, tokens
    assert tokens["access_token"] and tokens["refresh_token"]
    assert tokens["scope"] == "openid profile offline_access"
    facts = introspect(server, tokens["access_token"])
    assert facts["active"] and facts["client_id"] == "tv" and facts["username"] == username
    assert not phone.watch.dialogs
    assert_local_only(phone, server)


def test_wrong_code_denies_the_grant(server, phone):
    username = new_user(server)
    grant = start_grant(server, scope="openid")
    page = phone.new_page()
    sign_in_at(page, grant["verification_uri_complete"], username)
    codes = page.locator("[data-testid=code-choice]")
    expect(codes).to_have_count(3)
    decoy = next(c for c in codes.all() if c.inner_text() != grant["user_code"])
    decoy.click()
    page.locator("[data-testid=confirm]").click()
    result = page.locator("[data-testid=result]")
    expect(result).to_have_attribute("data-outcome", "denied")
    expect(result).to_contain_text("not the code on the device")
    status, body = poll(server, grant)
    assert (status, body["error"]) == (400, "access_denied")


def test_deny_a_grant(server, phone):
    username = new_user(server)
    grant = start_grant(server, scope="openid")
    page = phone.new_page()
    sign_in_at(page, grant["verification_uri_complete"], username)
    expect(page.locator("[data-testid=code-choice]")).to_have_count(3)
    # Enter on the default focus declines.
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=result]")).to_have_text("Declined. Living-room TV was not signed in.")
    status, body = poll(server, grant)
    assert (status, body["error"]) == (400, "access_denied")


def test_hostile_client_name_is_text(server, phone):
    username = new_user(server)
    grant = start_grant(server, client_id="hostile-tv", scope="openid")
    page = phone.new_page()
    sign_in_at(page, grant["verification_uri_complete"], username)
    name = page.locator("[data-testid=client-name]")
    expect(name).to_have_text("<img src=x onerror=alert(1)>")
    assert page.locator("#request-title img").count() == 0
    page.wait_for_timeout(300)
    assert phone.watch.dialogs == [], "a script ran"
    assert_local_only(phone, server)


def test_device_page_takes_the_code_in_any_case(server, phone):
    username = new_user(server)
    grant = start_grant(server, scope="openid profile")
    page = phone.new_page()
    response = page.goto(server.base + "/device")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    sign_in_on_phone(page, username)
    field = page.locator("[data-testid=user-code]")
    expect(field).to_be_visible()
    expect(field).to_be_focused()
    typed = grant["user_code"].replace("-", "").lower()
    field.fill(typed)
    shot(page, "22-device-code-entry")
    page.keyboard.press("Enter")

    expect(page.locator("[data-testid=client-name]")).to_have_text("Living-room TV")
    expect(page.locator("[data-testid=scopes]")).to_contain_text("See your name and username")
    code = page.locator("[data-testid=code-choice]")
    expect(code).to_have_count(1)
    expect(code).to_have_text(grant["user_code"])
    expect(code).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#choice-legend")).to_have_text("The code you entered")
    expect(page.locator("[data-testid=confirm]")).to_be_enabled()
    assert page.evaluate("document.activeElement.dataset.testid") == "deny"
    shot(page, "23-device-code-confirm")

    # A reload keeps the scan: the code was used up by typing it.
    page.reload()
    expect(page.locator("[data-testid=code-choice]")).to_have_text(grant["user_code"])
    page.locator("[data-testid=confirm]").click()
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "confirmed")
    status, tokens = poll(server, grant)
    assert status == 200 and tokens["scope"] == "openid profile", tokens

    # The code is spent: typing it again says so.
    page.locator("[data-testid=another-code]").click()
    page.locator("[data-testid=user-code]").fill(grant["user_code"])
    page.locator("[data-testid=code-submit]").click()
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-outcome", "used")
    assert_local_only(phone, server)


def test_device_page_errors(server, phone):
    username = new_user(server)
    page = phone.new_page()
    sign_in_at(page, server.base + "/device", username)
    field = page.locator("[data-testid=user-code]")
    error = page.locator("[data-testid=code-error]")
    field.fill("hello")
    field.press("Enter")
    expect(error).to_have_text("That is not a device code. It has 8 letters, like BCDF-GHJK.")
    field.fill("bbbb-bbbb")
    field.press("Enter")
    expect(error).to_contain_text("No device is waiting for that code")
    shot(page, "24-device-code-unknown")
    field.fill("")
    page.locator("[data-testid=code-submit]").click()
    expect(error).to_have_text("Type the code the device shows.")


def test_device_page_rate_limited(limited_server, phone):
    username = new_user(limited_server)
    page = phone.new_page()
    sign_in_at(page, limited_server.base + "/device", username)
    field = page.locator("[data-testid=user-code]")
    error = page.locator("[data-testid=code-error]")
    # 10 tries a minute per IP and per account; unknown codes count.
    for attempt in range(10):
        field.fill("BBBB-BB" + "BCDFGHJKLM"[attempt] * 2)
        field.press("Enter")
        expect(error).to_contain_text("No device is waiting")
    field.fill("BBBB-BBBB")
    field.press("Enter")
    expect(error).to_have_text("Too many codes tried. Wait a minute, then try again.")
    shot(page, "25-device-code-rate-limited")


def test_apps_list_and_revoke(server, phone):
    username = new_user(server)
    page = phone.new_page()
    sign_in_at(page, server.base + "/devices", username)
    expect(page.locator("[data-testid=grants-empty]")).to_have_text("No apps are signed in with your account.")

    tv = approve_over_api(server, username, "tv", "openid profile offline_access")
    approve_over_api(server, username, "hostile-tv", "openid")
    page.reload()
    rows = page.locator("[data-testid=grant]")
    expect(rows).to_have_count(2)
    tv_row = rows.filter(has_text="Living-room TV")
    expect(tv_row.locator("[data-testid=grant-scopes]")).to_have_text(
        "Sign you in with your QRLogin account · See your name and username · Stay signed in when you are not using it")
    expect(tv_row.locator("[data-testid=grant-since]")).to_contain_text("Since ")
    expect(rows.filter(has_text="<img src=x onerror=alert(1)>")).to_have_count(1)
    assert page.locator("[data-testid=grants] img").count() == 0
    shot(page, "26-phone-apps")

    assert introspect(server, tv["access_token"])["active"]
    tv_row.locator("[data-testid=grant-revoke]").click()
    expect(rows).to_have_count(1)
    expect(rows).not_to_contain_text("Living-room TV")
    # Revoked at once: the access token is dead and the refresh token gives nothing.
    assert introspect(server, tv["access_token"]) == {"active": False}
    status, body = form(server.base, "/oauth/token", {"grant_type": "refresh_token", "refresh_token": tv["refresh_token"], "client_id": "tv"})
    assert (status, body["error"]) == (400, "invalid_grant")

    rows.locator("[data-testid=grant-revoke]").click()
    expect(page.locator("[data-testid=grants-empty]")).to_be_visible()
    page.reload()
    expect(page.locator("[data-testid=grants-empty]")).to_be_visible()
    assert phone.watch.dialogs == []
    assert_local_only(phone, server)
