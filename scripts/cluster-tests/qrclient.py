"""A small asyncio client of QRLogin's HTTP contract (README, "HTTP API (v1)") for the cluster
tests: DPoP proofs, the PC's and the phone's calls, and a PC that waits on an event stream and
reconnects like the Swift SDK does (QRLoginClient's LoginWaiter).

Every proof's `htu` is the PUBLIC url (nginx) plus the path, whichever instance the request is
sent to: the server checks proofs against its --public-url, never against the Host header.
Every request carries the simulated client's own `X-Forwarded-For`, which the instances believe
because the peer (nginx, or this script straight to an instance) is the trusted 127.0.0.1.
"""
import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# What a request can fail with below HTTP: refused or reset connections, a stream cut in the
# middle, a timeout.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)

# The SDK's reconnect pause: doubling from 0.25 s up to 5 s (LoginWaiter.recover).
FIRST_PAUSE, MAX_PAUSE = 0.25, 5.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Device:
    """A P-256 device key that signs RFC 9449 proofs (as scripts/example_flow.py does)."""

    def __init__(self, public_url: str):
        self.public_url = public_url.rstrip("/")
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC",
                    "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, path: str, token: str | None = None) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"htm": method, "htu": self.public_url + path.split("?")[0], "iat": int(time.time()),
                  "jti": secrets.token_urlsafe(16)}
        if token:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


@dataclass
class Reply:
    """An HTTP answer: status, parsed JSON body (None when it is not JSON) and headers."""
    status: int
    body: object
    headers: dict
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def transient(self) -> bool:
        """What a real client (the SDK, the web page) retries, signing a new proof: the server or a
        proxy is in trouble, asks to slow down, or a proxy re-sent a proof (nginx retries a GET on
        another instance when the first one died after reading it, and every proof is one-use)."""
        return self.status >= 500 or self.status == 429 or (self.status == 401 and self.code == "dpop_proof_replayed")

    def kind(self) -> str:
        """`201`, `503 store_unavailable`; an error without a problem code names its server (e.g. nginx's 502 page)."""
        if self.ok:
            return str(self.status)
        if self.code:
            return f"{self.status} {self.code}"
        server = self.headers.get("Server", "").split("/")[0]
        return f"{self.status} ({server or 'no problem code'})"

    def __str__(self) -> str:
        return f"{self.status} {self.text[:300]}"


def error_kind(error: BaseException) -> str:
    """The kind of a transport failure, e.g. ClientConnectorError or ServerDisconnectedError."""
    return type(error).__name__


class Client:
    """One simulated client (one X-Forwarded-For address) talking to the cluster."""

    def __init__(self, public_url: str, session: aiohttp.ClientSession, stream_session: aiohttp.ClientSession, ip: str):
        self.public_url = public_url.rstrip("/")
        self.session = session
        # Event streams get a connection of their own, as the SDK and the CLI open them.
        self.stream_session = stream_session
        self.ip = ip

    def device(self) -> Device:
        return Device(self.public_url)

    def headers(self, method: str, path: str, device: Device | None, token: str | None, scheme: str,
                proof: str | None = None) -> dict:
        headers = {"X-Forwarded-For": self.ip}
        if proof is not None:
            headers["DPoP"] = proof
        elif device is not None:
            headers["DPoP"] = device.proof(method, path, token)
        if token:
            headers["Authorization"] = f"{scheme} {token}"
        return headers

    async def call(self, method: str, base: str, path: str, *, body=None, device: Device | None = None,
                   token: str | None = None, scheme: str = "DPoP", proof: str | None = None,
                   timeout: float = 10.0) -> Reply:
        """One request to `base` (nginx or an instance); transport errors are raised as they are."""
        headers = self.headers(method, path, device, token, scheme, proof)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        async with self.session.request(method, base + path, data=data, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            text = await response.text()
            return Reply(response.status, parse_json(text), dict(response.headers), text)

    # The phone

    async def register_phone(self, base: str, username: str, password: str) -> "Phone":
        reply = await self.call("POST", base, "/api/v1/accounts",
                                body={"username": username, "password": password, "displayName": username.title()})
        if reply.status != 201:
            raise RuntimeError(f"register {username}: {reply}")
        device = self.device()
        reply = await self.call("POST", base, "/api/v1/auth/password", device=device, body={
            "username": username, "password": password, "device": {"type": "android", "name": f"{username}'s phone"}})
        if reply.status != 201:
            raise RuntimeError(f"sign in {username}: {reply}")
        return Phone(self, device, username, username.title(), reply.body["accessToken"])

    # The PC

    async def create_login(self, base: str, device: Device, name: str) -> Reply:
        return await self.call("POST", base, "/api/v1/qr", device=device, body={"device": {"type": "web", "name": name}})

    async def read(self, base: str, login: "Login", query: str = "", timeout: float = 10.0) -> Reply:
        """GET /api/v1/qr/{id}: the state, and on `confirmed` a freshly collected token."""
        return await self.call("GET", base, f"/api/v1/qr/{login.id}{query}", device=login.device,
                               token=login.poll_secret, scheme="Bearer", timeout=timeout)

    async def me(self, base: str, device: Device, token: str) -> Reply:
        return await self.call("GET", base, "/api/v1/me", device=device, token=token)


@dataclass
class Phone:
    """A signed-in phone: an account, its own key, and a token bound to that key."""
    client: Client
    device: Device
    username: str
    display_name: str
    token: str

    async def scan(self, base: str, login_id: str, client: Client | None = None) -> Reply:
        return await (client or self.client).call("POST", base, f"/api/v1/qr/{login_id}/scan",
                                                  device=self.device, token=self.token)

    async def confirm(self, base: str, login_id: str, ticket: str, match: int, client: Client | None = None) -> Reply:
        return await (client or self.client).call("POST", base, f"/api/v1/qr/{login_id}/confirm",
                                                  device=self.device, token=self.token,
                                                  body={"ticket": ticket, "match": match})


@dataclass
class Login:
    """A login request as its PC knows it."""
    id: str
    url: str
    poll_secret: str
    device: Device

    @staticmethod
    def from_reply(reply: Reply, device: Device) -> "Login":
        return Login(reply.body["id"], reply.body["url"], reply.body["pollSecret"], device)


def parse_json(text: str):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


async def server_sent_events(response: aiohttp.ClientResponse):
    """Yields (event name, data) per event, and ("comment", text) per comment line."""
    name, data = None, []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if name or data:
                yield name or "message", "\n".join(data)
            name, data = None, []
        elif line.startswith(":"):
            yield "comment", line[1:].strip()
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)


class WaitFailed(Exception):
    """The PC gave up: a final state other than confirmed, a refusal, or its deadline."""


class PcWaiter:
    """The PC waiting for its token on an event stream, the way the Swift SDK does it.

    On a dropped or cut stream, a clean end before a final state, or a 5xx/429 answer, it
    reconnects after a pause that doubles from 0.25 s to 5 s; every (re)opened stream starts
    with the current state, which is the SDK's re-read. After a reconnect the server may still
    hold the dropped stream, which can collect a token too and so revoke ours: like the SDK, a
    token received after a reconnect is checked on /api/v1/me and collected once more if it is
    refused. Unlike the SDK it never gives up on a failure count, only at `deadline`, because
    the tests judge the server, not the client's patience.
    """

    def __init__(self, client: Client, base: str, login: Login, deadline: float, on_error=None):
        self.client, self.base, self.login, self.deadline = client, base, login, deadline
        self.on_error = on_error or (lambda step, kind, took=None: None)
        self.opened = asyncio.Event()           # the first event arrived: the PC is waiting
        self.scanned = asyncio.get_running_loop().create_future()   # the number to show
        self.reconnects = 0
        self.superseded = 0
        self.recollected = 0
        self.token_at: float | None = None     # monotonic time the token arrived
        self.errors: list[str] = []

    def _error(self, step: str, kind: str, took: float | None = None):
        self.errors.append(f"{step} {kind}")
        self.on_error(step, kind, took)

    async def run(self) -> dict:
        """Waits for `confirmed` and returns its token (the `token` object of the event)."""
        pause = FIRST_PAUSE
        while True:
            if time.monotonic() >= self.deadline:
                raise WaitFailed(f"no token before the deadline (reconnects {self.reconnects}, errors {self.errors[-5:]})")
            got_event, attempt_started = False, time.monotonic()
            try:
                async with contextlib.aclosing(self._stream()) as events:
                    async for name, data in events:
                        got_event = True
                        token = self._handle(name, data)
                        if token is not None:
                            self.token_at = time.monotonic()
                            break
                    else:
                        token = None
                if token is not None:
                    if self.reconnects:
                        token = await self._verified(token)
                    return token
                self._error("stream", "ended early")
            except TRANSPORT_ERRORS as error:
                self._error("stream", error_kind(error))
            except _Transient as problem:
                # How long a refused open took (an error event after others has no such time).
                self._error("stream", str(problem), None if got_event else time.monotonic() - attempt_started)
            if got_event:
                pause = FIRST_PAUSE
            self.reconnects += 1
            await asyncio.sleep(max(0.0, min(pause, self.deadline - time.monotonic())))
            pause = min(pause * 2, MAX_PAUSE)

    async def _stream(self):
        path = f"/api/v1/qr/{self.login.id}"
        headers = self.client.headers("GET", path, self.login.device, self.login.poll_secret, "Bearer")
        headers["Accept"] = "text/event-stream"
        left = max(0.5, self.deadline - time.monotonic())
        # The server sends a heartbeat every 15 s: 25 s of silence means a dead connection.
        timeout = aiohttp.ClientTimeout(total=left, sock_connect=5, sock_read=25)
        async with self.client.stream_session.get(self.base + path, headers=headers, timeout=timeout) as response:
            if response.status != 200:
                text = await response.text()
                reply = Reply(response.status, parse_json(text), dict(response.headers), text)
                if reply.transient:
                    raise _Transient(reply.kind())
                raise WaitFailed(f"stream refused: {reply}")
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise WaitFailed(f"not an event stream: {response.headers.get('Content-Type')}")
            async for event in server_sent_events(response):
                yield event

    def _handle(self, name: str, data: str) -> dict | None:
        if name == "comment":
            if data.startswith("superseded"):
                self.superseded += 1
            return None
        if name == "error":
            problem = parse_json(data) or {}
            if problem.get("status", 0) >= 500:
                raise _Transient(f"{problem.get('status')} {problem.get('code')} (error event)")
            raise WaitFailed(f"error event: {data}")
        status = parse_json(data) or {}
        self.opened.set()
        if name == "scanned" and not self.scanned.done():
            self.scanned.set_result(status.get("match"))
        if name == "confirmed":
            if not status.get("token"):
                raise WaitFailed(f"confirmed without a token: {data}")
            return status["token"]
        if name in ("denied", "cancelled", "expired"):
            raise WaitFailed(f"the request ended {name}: {data}")
        return None

    async def _verified(self, token: dict) -> dict:
        """After a reconnect: the token must work, else collect once more (LoginWaiter.verified)."""
        reply = await _retrying(self, "me", lambda: self.client.me(self.base, self.login.device, token["accessToken"]))
        if reply.ok:
            return token
        if reply.code != "invalid_token":
            raise WaitFailed(f"/api/v1/me after a reconnect: {reply}")
        self.recollected += 1
        reply = await _retrying(self, "collect", lambda: self.client.read(self.base, self.login))
        if not (reply.ok and isinstance(reply.body, dict) and reply.body.get("token")):
            raise WaitFailed(f"collecting again after a refused token: {reply}")
        return reply.body["token"]


class _Transient(Exception):
    """A 5xx or 429 answer: retried."""


async def _retrying(waiter: PcWaiter, step: str, call) -> Reply:
    """Runs `call` until it answers with something that is not transient, or the deadline passes."""
    pause = FIRST_PAUSE
    while True:
        sent = time.monotonic()
        try:
            reply = await call()
            if not reply.transient:
                return reply
            waiter._error(step, reply.kind(), time.monotonic() - sent)
        except TRANSPORT_ERRORS as error:
            waiter._error(step, error_kind(error), time.monotonic() - sent)
        if time.monotonic() + pause >= waiter.deadline:
            raise WaitFailed(f"{step}: no answer before the deadline ({waiter.errors[-3:]})")
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE)


def new_sessions() -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
    """A pooled session for ordinary calls and one that opens a connection per request (streams)."""
    pooled = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=10))
    fresh = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
    return pooled, fresh
