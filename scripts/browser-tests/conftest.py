"""Fixtures of the browser suite: `qrlogin serve` processes on free ports, headless Chromium
(Debian's, at /usr/bin/chromium) through Playwright, a PC and a phone context, a relying
party's redirect endpoint, screenshots."""
import html
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("QRLOGIN_ARTIFACTS", ROOT / ".artifacts" / "browser"))
CHROMIUM = os.environ.get("QRLOGIN_CHROMIUM", "/usr/bin/chromium")
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/130.0.0.0 Mobile Safari/537.36")


# The OAuth clients every server starts with (`serve --client-file`): a TV that signs in with
# the device grant, one whose name is markup, and a confidential resource server that may call
# the introspection endpoint.
RESOURCE_SERVER = ("product-api", "rs-secret-" + "x" * 32)
CLIENTS = {"clients": [
    {"id": "tv", "name": "Living-room TV", "type": "public", "grantTypes": ["device_code", "refresh_token"]},
    {"id": "hostile-tv", "name": "<img src=x onerror=alert(1)>", "type": "public", "grantTypes": ["device_code"]},
    {"id": RESOURCE_SERVER[0], "name": "Product API", "type": "confidential", "secret": RESOURCE_SERVER[1], "grantTypes": []},
]}


class RelyingParty:
    """A web app's redirect endpoint: a tiny HTTP server on 127.0.0.1 that answers every GET
    with 200 and the query it received, and remembers the paths. It starts before the qrlogin
    servers, which register its `/cb` for the OpenID Connect clients (see oidc_clients)."""

    def __init__(self):
        self.paths: list[str] = []
        received = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                received.append(self.path)
                query = self.path.partition("?")[2]
                body = ("<!doctype html><meta charset=utf-8><title>Team wiki</title>"
                        f"<h1>Team wiki callback</h1><pre id=query>{html.escape(query)}</pre>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = self.browse = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.redirect_uri = self.base + "/cb"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def oidc_clients(rp: RelyingParty) -> list[dict]:
    """The web apps that sign in with the authorization code flow at `rp`'s redirect URI: a
    public one, and one whose name is markup."""
    grants = ["authorization_code", "refresh_token"]
    return [
        {"id": "wiki", "name": "Team wiki", "type": "public", "redirectURIs": [rp.redirect_uri], "grantTypes": grants},
        {"id": "hostile-wiki", "name": "<img src=x onerror=alert(1)>", "type": "public", "redirectURIs": [rp.redirect_uri], "grantTypes": grants},
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `qrlogin serve` on an in-memory database, with the OAuth clients of CLIENTS. `base` is
    the public URL (what QR codes and proofs use); `browse` is the URL the PC browser opens, a
    different host name on purpose, so the pages must take the public URL from the server rather
    than from location.origin."""

    def __init__(self, name: str, *extra: str, rate_limits: str = "off", clients: list[dict] = ()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.browse = f"http://localhost:{self.port}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log = open(ARTIFACTS / f"server-{name}.log", "w")
        client_file = ARTIFACTS / f"clients-{name}.json"
        client_file.write_text(json.dumps({"clients": CLIENTS["clients"] + list(clients)}))
        binary = os.environ.get("QRLOGIN_BIN") or str(ROOT / ".build" / "debug" / "qrlogin")
        self.process = subprocess.Popen(
            [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database", ":memory:",
             "--public-url", self.base, "--rate-limits", rate_limits, "--bcrypt-cost", "4",
             "--client-file", str(client_file), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"qrlogin serve did not start; see {self.log.name}")
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def relying_party():
    rp = RelyingParty()
    yield rp
    rp.stop()


@pytest.fixture(scope="session")
def server(relying_party):
    s = Server("main", clients=oidc_clients(relying_party))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def short_server():
    s = Server("short-ttl", "--request-ttl", "10")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def proxied_server():
    """A server that believes X-Forwarded-For from 127.0.0.1, as behind a reverse proxy: a test
    can say a browser's requests come from another network."""
    s = Server("proxied", "--trusted-proxy", "127.0.0.1")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def limited_server():
    """A server with the production rate limits, for the pages' rate-limited messages."""
    s = Server("rate-limited", rate_limits="on")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Watch:
    """What a context did: every request url, dialogs, console errors."""

    def __init__(self, context):
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        context.on("request", lambda r: self.requests.append(r.url))
        context.on("page", self.page)
        for page in context.pages:
            self.page(page)

    def page(self, page):
        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()
        page.on("dialog", dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def pc(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.watch = Watch(context)
    yield context
    context.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, user_agent=PHONE_UA, color_scheme="light")
    context.watch = Watch(context)
    yield context
    context.close()


def shot(page, name: str):
    """Saves the page in the light and the dark scheme as test artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(50)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
