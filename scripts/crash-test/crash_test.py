#!/usr/bin/env python3
"""Crash-safety test of the embedded SQLite store: `qrlogin serve` on a SQLite file, complete
logins under load, and `kill -9` of the server at a random moment, several times.

run.sh starts the first server and passes its command line after `--`; this script kills it and
starts it again with the same command (appending every pid to WORK_DIR/server.pids, which run.sh
kills on exit). Each crash:
  1. the load runs for a random 1.5-4 s (8 workers doing complete logins: PC creates a request
     and long-polls it, phone scans, PC reads the number, phone confirms, PC collects its token
     and checks it on /api/v1/me, and one login in four logs out);
  2. just before the kill, two DPoP proofs are sent once and accepted (a phone's GET /api/v1/me,
     a PC's status read of a pending request), and once more to show the live server refuses them;
  3. kill -9; `PRAGMA integrity_check` and `foreign_key_check` on a copy of the database files;
  4. restart; the two proofs sent again with the same headers, within their validity window:
     they must be refused, 401 dpop_proof_replayed (a restart must not reopen the replay window);
  5. against what the clients saw, over everything since the start:
     - every confirm that answered 2xx: the token its PC collected still works, or (if the PC had
       not got it) the PC can still collect one and it works;
     - every token handed out (phones' sessions, PCs' collected tokens) and not revoked works;
       every token whose logout answered 204 stays refused;
     - every login cut by the kill is at least at the state its clients saw answered (a scan
       that answered 200 is still scanned, a confirm still confirmed), and a confirm cut in
       flight has either happened or not: if it did, the PC collects a working token.
After the last crash the load stops, the server gets SIGTERM and must exit 0, and
integrity_check runs on the database file itself.

Prints `ok: ...` or `FAILED: ...` per check with its figures; exits 1 on any failure.

Usage: crash_test.py --url URL --database FILE --work-dir DIR [--crashes N] -- QRLOGIN serve ...
"""
import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

# The cluster tests' client (DPoP proofs, the PC's and the phone's calls), shared rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster-tests"))
from qrclient import TRANSPORT_ERRORS, Client, Device, Login, Phone, Reply, error_kind  # noqa: E402

PASSWORD = "crash test password"
WORKERS = 8
LOAD_SECONDS = (1.5, 4.0)    # how long the load runs before each kill, drawn at random
PROOF_SKEW = 60.0            # the server's default --proof-skew (run.sh keeps it): how long a proof is acceptable
LOGOUT_SHARE = 0.25          # share of completed logins whose PC logs out (tokens that must stay revoked)
CHECK_CONCURRENCY = 12


def now() -> float:
    return time.monotonic()


def ok(message: str):
    print(f"ok: {message}", flush=True)


def failed(message: str):
    print(f"FAILED: {message}", flush=True)


def proof_claims(proof: str) -> dict:
    """The claims of a DPoP proof (for its iat and jti in the report)."""
    part = proof.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def counts(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


# ---------------------------------------------------------------------------------------------
# The server: killed and restarted with the command run.sh started it with

class Server:
    def __init__(self, url: str, command: list[str], work_dir: Path):
        self.url = url
        self.command = command
        self.work_dir = work_dir
        self.pids_file = work_dir / "server.pids"
        # run.sh started incarnation 0 and wrote its pid; later ones are this script's children.
        self.pid = int(self.pids_file.read_text().split()[-1])
        self.process: asyncio.subprocess.Process | None = None
        self.incarnation = 0

    def log_path(self) -> Path:
        return self.work_dir / f"server-{self.incarnation}.log"

    def alive(self) -> bool:
        # A killed process its parent has not reaped yet is a zombie: dead, though its pid answers.
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    async def kill(self) -> str:
        """kill -9 and wait until the process is gone; returns how it ended."""
        os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            code = await asyncio.wait_for(self.process.wait(), 10)
            return f"exit status {code}" if code >= 0 else f"signal {-code}"
        deadline = now() + 10
        while self.alive():
            if now() > deadline:
                raise RuntimeError(f"server pid {self.pid} still alive 10 s after SIGKILL")
            await asyncio.sleep(0.01)
        # run.sh's child: its exit status is run.sh's to see; it is gone, and SIGKILL cannot be caught.
        return "signal 9"

    async def start(self):
        self.incarnation += 1
        with open(self.log_path(), "wb") as log:
            self.process = await asyncio.create_subprocess_exec(*self.command, stdin=subprocess.DEVNULL,
                                                               stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        with open(self.pids_file, "a") as pids:
            pids.write(f"{self.pid}\n")

    async def healthy(self, session: aiohttp.ClientSession, limit: float = 30) -> float:
        """Waits for GET /health 200; returns the seconds it took."""
        started, last = now(), "no answer"
        while now() - started < limit:
            if not self.alive():
                tail = self.log_path().read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"the server exited while starting; {self.log_path().name} ends:\n  " + "\n  ".join(tail))
            try:
                async with session.get(self.url + "/health", timeout=aiohttp.ClientTimeout(total=2)) as response:
                    last = f"{response.status} {(await response.text())[:200]}"
                    if response.status == 200:
                        return now() - started
            except TRANSPORT_ERRORS as error:
                last = error_kind(error)
            await asyncio.sleep(0.02)
        raise RuntimeError(f"GET /health did not answer 200 within {limit:.0f} s; last: {last}")

    async def stop(self) -> int | None:
        """SIGTERM, as an operator stops it; the exit status (None if it had to be killed)."""
        os.kill(self.pid, signal.SIGTERM)
        try:
            if self.process is not None:
                return await asyncio.wait_for(self.process.wait(), 15)
            deadline = now() + 15
            while self.alive() and now() < deadline:
                await asyncio.sleep(0.05)
            return None if self.alive() else 0
        except asyncio.TimeoutError:
            return None
        finally:
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)


def check_database(path: Path) -> tuple[list[str], dict]:
    """integrity_check and foreign_key_check of the database at `path`; its problems and a few counts."""
    db = sqlite3.connect(path)
    try:
        integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
        foreign = db.execute("PRAGMA foreign_key_check").fetchall()
        figures = {"login_requests": db.execute("SELECT count(*) FROM login_requests").fetchone()[0],
                   "tokens": db.execute("SELECT count(*) FROM tokens").fetchone()[0]}
    finally:
        db.close()
    problems = []
    if integrity != ["ok"]:
        problems.append(f"integrity_check: {integrity[:10]}")
    if foreign:
        problems.append(f"foreign_key_check: {foreign[:10]}")
    return problems, figures


def check_copy(database: Path, into: Path) -> tuple[list[str], dict]:
    """The same on a copy of the file and its WAL, as the killed server left them: opening the
    copy replays the WAL there, so the server's own recovery of the original is left to it."""
    into.mkdir(parents=True, exist_ok=True)
    copy = into / database.name
    shutil.copyfile(database, copy)
    wal = database.with_name(database.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    try:
        return check_database(copy)
    finally:
        shutil.rmtree(into, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# What the clients saw

@dataclass
class Attempt:
    """One login as its PC and phone saw it."""
    phone: Phone
    pc: Device
    login: Login | None = None
    # The furthest step answered: created, scanned, confirmed (the confirm answered 2xx), collected.
    seen: str = "nothing"
    match: int | None = None
    cut: str | None = None          # the step in flight when the kill cut it
    confirmed_in: int | None = None  # the server incarnation that answered the confirm 2xx
    token: str | None = None         # the newest token the PC got (earlier ones are revoked by design)
    revoked: bool = False            # its logout answered 204
    logout_cut: bool = False         # its logout was cut: either outcome is right
    settled: bool = False            # its worker is done with it: the checks own it now
    checked: int = 0                 # restarts after which its confirm was checked and held
    examined: bool = False           # a cut login's state was checked after a restart


class Cut(Exception):
    """A request was cut below HTTP (the kill)."""


class Unexpected(Exception):
    """An answer the flow does not allow while the server is up."""


@dataclass
class Context:
    server: Server
    session: aiohttp.ClientSession
    phones: list[Phone] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    up: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    parked: int = 0                  # workers waiting for the server to come back
    completed: int = 0               # logins whose PC got a token that works
    cuts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def client(self, ip: str) -> Client:
        # Each login takes the current incarnation's session, so no connection outlives a kill.
        return Client(self.server.url, self.session, self.session, ip)


async def step(name: str, attempt: Attempt, call) -> Reply:
    """One request of a login; a transport error marks the attempt cut at `name`."""
    try:
        return await call()
    except TRANSPORT_ERRORS as error:
        attempt.cut = name
        raise Cut(f"{name}: {error_kind(error)}")


def expect(condition: bool, attempt: Attempt, what: str, reply: Reply):
    if not condition:
        raise Unexpected(f"login {attempt.login.id if attempt.login else '-'}: {what}: {reply}")


async def login(ctx: Context, client: Client, attempt: Attempt):
    """One complete login; the phone's calls go through `client` too (the current session)."""
    phone, pc, url = attempt.phone, attempt.pc, ctx.server.url
    reply = await step("create", attempt, lambda: client.create_login(url, pc, "crash-test"))
    expect(reply.status == 201, attempt, "create", reply)
    attempt.login = Login.from_reply(reply, pc)
    attempt.seen = "created"
    ctx.attempts.append(attempt)
    # The PC waits for the scan with a long poll, as a page would, while the phone scans.
    wait = asyncio.create_task(client.read(url, attempt.login, "?wait=10&state=pending", timeout=15))
    try:
        scan = await step("scan", attempt, lambda: phone.scan(url, attempt.login.id, client=client))
        expect(scan.status == 200, attempt, "scan", scan)
        attempt.seen = "scanned"
        state = await step("PC long poll", attempt, lambda: wait)
    finally:
        if not wait.done():
            wait.cancel()
        await asyncio.gather(wait, return_exceptions=True)
    expect(state.status == 200 and state.body.get("state") == "scanned", attempt, "long poll after the scan", state)
    attempt.match = state.body["match"]
    confirm = await step("confirm", attempt, lambda: phone.confirm(url, attempt.login.id, scan.body["ticket"], attempt.match,
                                                                   client=client))
    expect(confirm.ok and confirm.body.get("state") == "confirmed", attempt, "confirm", confirm)
    attempt.seen, attempt.confirmed_in = "confirmed", ctx.server.incarnation
    collected = await step("collect", attempt, lambda: client.read(url, attempt.login))
    expect(collected.status == 200 and (collected.body.get("token") or {}).get("accessToken"), attempt, "collect", collected)
    attempt.token, attempt.seen = collected.body["token"]["accessToken"], "collected"
    me = await step("PC /me", attempt, lambda: client.me(url, pc, attempt.token))
    expect(me.status == 200 and me.body["account"]["username"] == phone.username, attempt, "the PC's /api/v1/me", me)
    ctx.completed += 1
    if random.random() < LOGOUT_SHARE:
        try:
            out = await client.call("POST", url, "/api/v1/auth/logout", device=pc, token=attempt.token)
        except TRANSPORT_ERRORS as error:
            attempt.logout_cut = True
            attempt.cut = "logout"
            raise Cut(f"logout: {error_kind(error)}")
        expect(out.status == 204, attempt, "logout", out)
        attempt.revoked = True


async def worker(ctx: Context, k: int):
    phone = ctx.phones[k]
    ip = f"10.0.0.{k + 1}"
    while not ctx.stopping:
        if not ctx.up.is_set():
            ctx.parked += 1
            await ctx.up.wait()
            ctx.parked -= 1
            continue
        attempt = Attempt(phone, Device(ctx.server.url))
        try:
            await login(ctx, ctx.client(ip), attempt)
        except Cut as error:
            ctx.cuts[attempt.cut] += 1
            # A request cut while the server is meant to be up is a fault of its own.
            if ctx.up.is_set():
                ctx.problems.append(f"worker {k}: a request was cut while the server was up: {error}")
                await asyncio.sleep(0.2)
        except Unexpected as error:
            ctx.problems.append(f"worker {k}: {error}")
            await asyncio.sleep(0.2)
        except Exception as error:  # a bug of the test itself: reported, and the worker goes on
            ctx.problems.append(f"worker {k}: {type(error).__name__}: {error}\n{traceback.format_exc()}")
            await asyncio.sleep(0.2)
        finally:
            attempt.settled = True


async def make_phones(ctx: Context, count: int) -> list[Phone]:
    run_id = os.urandom(3).hex()
    client = ctx.client("10.0.1.1")
    return list(await asyncio.gather(*(client.register_phone(ctx.server.url, f"crash{k}-{run_id}", PASSWORD)
                                       for k in range(count))))


# ---------------------------------------------------------------------------------------------
# The DPoP replay probes

@dataclass
class Probe:
    name: str
    path: str
    proof: str
    token: str
    scheme: str
    ip: str

    async def send(self, ctx: Context) -> Reply:
        # The very same headers: X-Forwarded-For, Authorization and the DPoP proof.
        return await ctx.client(self.ip).call("GET", ctx.server.url, self.path, token=self.token, scheme=self.scheme,
                                              proof=self.proof)

    def age(self) -> float:
        return time.time() - proof_claims(self.proof)["iat"]


async def make_probes(ctx: Context, phone: Phone) -> list[Probe]:
    """Two proofs accepted just before the kill: one of a phone, one of a PC."""
    pc_client = ctx.client("10.0.2.1")
    pc = Device(ctx.server.url)
    created = await pc_client.create_login(ctx.server.url, pc, "replay probe")
    if created.status != 201:
        raise Unexpected(f"creating the replay probe's request: {created}")
    pending = Login.from_reply(created, pc)
    path = f"/api/v1/qr/{pending.id}"
    probes = [
        Probe("the phone's GET /api/v1/me", "/api/v1/me", phone.device.proof("GET", "/api/v1/me", phone.token),
              phone.token, "DPoP", phone.client.ip),
        Probe("the PC's status read GET /api/v1/qr/{id} (pending)", path, pc.proof("GET", path, pending.poll_secret),
              pending.poll_secret, "Bearer", pc_client.ip),
    ]
    for probe in probes:
        first = await probe.send(ctx)
        if first.status != 200:
            raise Unexpected(f"{probe.name} with a fresh proof before the kill: {first}")
        # Control: the live server refuses the same proof, so a 200 after the restart is the restart's doing.
        again = await probe.send(ctx)
        if not (again.status == 401 and again.code == "dpop_proof_replayed"):
            raise Unexpected(f"{probe.name}: the same proof sent again before the kill: want 401 dpop_proof_replayed, got {again}")
    return probes


# ---------------------------------------------------------------------------------------------
# The checks after a restart

class Checks:
    """Everything checked after one restart, and the failures found."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.gate = asyncio.Semaphore(CHECK_CONCURRENCY)
        self.failures: list[str] = []
        self.figures = Counter()

    async def me(self, device: Device, token: str, ip: str) -> Reply:
        async with self.gate:
            return await self.ctx.client(ip).me(self.ctx.server.url, device, token)

    async def read(self, attempt: Attempt) -> Reply:
        async with self.gate:
            return await self.ctx.client("10.0.3.1").read(self.ctx.server.url, attempt.login)

    async def token_works(self, attempt: Attempt, what: str) -> bool:
        reply = await self.me(attempt.pc, attempt.token, "10.0.3.2")
        if reply.status == 200 and reply.body["account"]["username"] == attempt.phone.username:
            return True
        answered = "" if attempt.confirmed_in is None else f" (confirm answered by server incarnation {attempt.confirmed_in})"
        self.failures.append(f"{what} {attempt.login.id}{answered}: its PC's token is refused after the restart: {reply}")
        return False

    async def collect(self, attempt: Attempt, what: str) -> bool:
        """The PC collects a confirmed login's token now; it must come and work."""
        reply = await self.read(attempt)
        if not (reply.status == 200 and reply.body.get("state") == "confirmed" and (reply.body.get("token") or {}).get("accessToken")):
            self.failures.append(f"{what} {attempt.login.id}: the PC cannot collect its token after the restart: {reply}")
            return False
        attempt.token, attempt.seen = reply.body["token"]["accessToken"], "collected"
        return await self.token_works(attempt, what)

    async def confirmed(self, attempt: Attempt):
        """A confirm that answered 2xx: the PC's token works, or the PC can still collect one."""
        if attempt.revoked:
            reply = await self.me(attempt.pc, attempt.token, "10.0.3.2")
            if reply.status == 401 and reply.code == "invalid_token":
                self.figures["revoked tokens refused"] += 1
                attempt.checked += 1
            else:
                self.failures.append(f"login {attempt.login.id}: its PC logged out (204) before the kill, yet after "
                                     f"the restart its token answers {reply}")
            self.figures["confirms checked"] += 1
        elif attempt.logout_cut:
            self.figures["logouts cut (either outcome right)"] += 1
        elif attempt.token:
            if await self.token_works(attempt, "confirmed login"):
                self.figures["confirms checked"] += 1
                self.figures["PC tokens work"] += 1
                attempt.checked += 1
        elif await self.collect(attempt, "confirmed login"):
            self.figures["confirms checked"] += 1
            attempt.checked += 1
            self.figures["confirmed, collected only after the restart"] += 1
            self.figures["PC tokens work"] += 1

    async def cut_before_confirm(self, attempt: Attempt):
        """A login cut before its confirm answered: the state is at least what the clients saw."""
        reply = await self.read(attempt)
        state = reply.body.get("state") if reply.status == 200 and isinstance(reply.body, dict) else None
        # What may be there: what was seen answered, or what the cut request would have made.
        allowed = {"created": {"pending"}, "scanned": {"scanned"}}[attempt.seen]
        if attempt.cut == "scan":
            allowed = allowed | {"scanned"}
        if attempt.cut == "confirm":
            allowed = allowed | {"confirmed"}
        if state not in allowed:
            self.failures.append(f"login {attempt.login.id} cut at its {attempt.cut} after the clients saw it "
                                 f"{attempt.seen}: want state {sorted(allowed)} after the restart, got {reply}")
            return
        self.figures[f"cut logins in the right state ({attempt.seen}, cut at {attempt.cut})"] += 1
        if state == "confirmed":
            # The cut confirm went through before the kill: the read just collected the token.
            token = (reply.body.get("token") or {}).get("accessToken")
            if not token:
                self.failures.append(f"login {attempt.login.id}: confirmed after its cut confirm, but the PC's read "
                                     f"gave no token: {reply}")
                return
            attempt.token, attempt.seen = token, "collected"
            if await self.token_works(attempt, "login whose cut confirm went through"):
                self.figures["cut confirms that had gone through, collected"] += 1

    async def phone(self, phone: Phone):
        reply = await self.me(phone.device, phone.token, phone.client.ip)
        if reply.status == 200 and reply.body["account"]["username"] == phone.username:
            self.figures["phone tokens work"] += 1
        else:
            self.failures.append(f"the session token of phone {phone.username} is refused after the restart: {reply}")

    async def run(self, attempts: list[Attempt], phones: list[Phone]):
        jobs = [self.phone(p) for p in phones]
        for attempt in attempts:
            if attempt.confirmed_in is not None:
                jobs.append(self.confirmed(attempt))
            elif attempt.cut and not attempt.examined and attempt.seen in ("created", "scanned"):
                attempt.examined = True
                jobs.append(self.cut_before_confirm(attempt))
        await asyncio.gather(*jobs)


# ---------------------------------------------------------------------------------------------

async def crash(ctx: Context, round_: int, database: Path, work_dir: Path, probe_phone: Phone, totals: Counter) -> int:
    """One round: load, probes, kill -9, database check, restart, replays, durability checks.
    Returns the number of failures found."""
    failures = 0
    server = ctx.server
    load_for = random.uniform(*LOAD_SECONDS)
    completed_before = ctx.completed
    await asyncio.sleep(load_for)
    if not server.alive():
        raise RuntimeError(f"the server died on its own during the load; see {server.log_path().name}")

    probes = await make_probes(ctx, probe_phone)
    # The kill: the load stops starting logins; whatever is in flight is cut.
    ctx.up.clear()
    killed_at = now()
    ended = await server.kill()
    logins_in_round = ctx.completed - completed_before
    # Wait for every worker to see its cut and park, so the checks own every attempt made so far.
    deadline = now() + 15
    while ctx.parked < WORKERS and now() < deadline:
        await asyncio.sleep(0.01)
    if ctx.parked < WORKERS:
        raise RuntimeError(f"only {ctx.parked} of {WORKERS} workers stopped after the kill; "
                           f"last load problems: {ctx.problems[-3:]}")
    cuts = ctx.cuts.copy()
    ctx.cuts.clear()
    totals["cut requests"] += sum(cuts.values())

    problems, db_figures = check_copy(database, work_dir / f"copy-{round_}")
    if problems:
        failures += 1
        failed(f"crash {round_}: the database left by kill -9: " + "; ".join(problems))
    else:
        ok(f"crash {round_}: killed ({ended}) after {load_for:.1f} s of load, {logins_in_round} logins completed "
           f"in it; requests cut in flight: {counts(cuts)}; a copy of the files passes integrity_check and "
           f"foreign_key_check ({db_figures['login_requests']} login requests, {db_figures['tokens']} tokens)")

    old = ctx.session
    await old.close()
    ctx.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=10))
    await server.start()
    took = await server.healthy(ctx.session)

    # The replays go first: the sooner after the restart, the further inside the proofs' window.
    replays = []
    for probe in probes:
        reply = await probe.send(ctx)
        replays.append((probe, reply, probe.age(), now() - killed_at))
    totals["replays sent after a restart"] += len(replays)
    refused = [probe.name for probe, reply, _, _ in replays if reply.status == 401 and reply.code == "dpop_proof_replayed"]
    totals["replays refused"] += len(refused)
    # A probe that is not refused as a replay, or that could not be sent inside the window.
    wrong = [(probe, reply, age, after_kill) for probe, reply, age, after_kill in replays if probe.name not in refused]
    if not wrong:
        ok(f"crash {round_}: the {len(refused)} DPoP proofs accepted just before the kill ({', '.join(refused)}) "
           f"are refused after the restart, 401 dpop_proof_replayed")
    else:
        failures += 1
        lines = []
        for probe, reply, age, after_kill in wrong:
            claims = proof_claims(probe.proof)
            late = " (too late to tell: outside the window)" if age >= PROOF_SKEW - 5 else ""
            lines.append(f"{probe.name}, proof jti {claims['jti']} iat {claims['iat']}: accepted (200) before the kill "
                         f"and refused (401 dpop_proof_replayed) when sent again then; the same headers sent "
                         f"{after_kill:.1f} s after the kill, {age:.1f} s after its iat{late}, answer "
                         f"{reply.status}{' ' + reply.code if reply.code else ''}")
        if all(reply.ok for _, reply, age, _ in wrong if age < PROOF_SKEW - 5):
            headline = (f"DPoP replay window reopened by the restart: {len(wrong)} of {len(replays)} proofs accepted "
                        f"just before the kill are accepted again after it, inside their {PROOF_SKEW:.0f} s window")
        else:
            headline = f"{len(wrong)} of {len(replays)} proofs accepted just before the kill are not refused as replays after it"
        failed(f"crash {round_}: {headline} (want 401 dpop_proof_replayed):\n  " + "\n  ".join(lines))

    # Everything the clients saw so far; the workers start again meanwhile, with new attempts.
    snapshot = [a for a in ctx.attempts if a.settled]
    ctx.up.set()
    checks = Checks(ctx)
    await checks.run(snapshot, ctx.phones + [probe_phone])
    totals.update({k: v for k, v in checks.figures.items()
                   if k in ("confirms checked", "PC tokens work", "phone tokens work", "revoked tokens refused")})
    totals["cut logins checked"] += sum(v for k, v in checks.figures.items() if k.startswith("cut logins"))
    figures = "; ".join(f"{k} {v}" for k, v in sorted(checks.figures.items()))
    if checks.failures:
        failures += 1
        failed(f"crash {round_}: after the restart, {len(checks.failures)} of what the clients saw did not "
               f"survive:\n  " + "\n  ".join(checks.failures[:10]) + f"\n  (the rest: {figures})")
    else:
        ok(f"crash {round_}: restarted, /health 200 in {took:.2f} s; everything the clients saw survived: {figures}")
    return failures


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's URL (also its --public-url)")
    parser.add_argument("--database", required=True, help="the server's SQLite file")
    parser.add_argument("--work-dir", required=True, help="holds server.pids and the servers' logs")
    parser.add_argument("--crashes", type=int, default=5)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- QRLOGIN serve ..., to restart the server with")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("the server's command line after --")

    work_dir, database = Path(args.work_dir), Path(args.database)
    server = Server(args.url.rstrip("/"), command, work_dir)
    ctx = Context(server, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=10)))
    totals: Counter = Counter()
    failures = 0
    started = now()
    tasks: list[asyncio.Task] = []
    try:
        *ctx.phones, probe_phone = await make_phones(ctx, WORKERS + 1)
        ok(f"setup: {WORKERS + 1} accounts registered and signed in on their phones")
        ctx.up.set()
        tasks = [asyncio.create_task(worker(ctx, k)) for k in range(WORKERS)]
        for round_ in range(1, args.crashes + 1):
            failures += await crash(ctx, round_, database, work_dir, probe_phone, totals)

        ctx.stopping = True
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        if ctx.problems:
            failures += 1
            failed(f"load: {len(ctx.problems)} unexpected answers or cuts while the server was up:\n  "
                   + "\n  ".join(ctx.problems[:10]))
        code = await server.stop()
        problems, db_figures = check_database(database)
        wal = database.with_name(database.name + "-wal")
        if code != 0:
            failures += 1
            failed(f"the last server did not exit 0 on SIGTERM: {code} (see {server.log_path().name})")
        if problems:
            failures += 1
            failed(f"the database file after the last stop: " + "; ".join(problems))
        else:
            ok(f"end: the server stopped on SIGTERM (exit {code}); the database file itself passes integrity_check and "
               f"foreign_key_check ({db_figures['login_requests']} login requests, {db_figures['tokens']} tokens; "
               f"WAL {'left' if wal.exists() else 'checkpointed and removed'})")
    except (RuntimeError, Unexpected, *TRANSPORT_ERRORS) as error:
        failures += 1
        failed(f"{type(error).__name__}: {error}")
    finally:
        ctx.stopping = True
        ctx.up.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.session.close()

    attempts = ctx.attempts
    confirmed = [a for a in attempts if a.confirmed_in is not None]
    held = [a for a in confirmed if a.checked]
    print(f"\nfigures: {ctx.completed} logins completed ({len(attempts)} created, {len(confirmed)} confirms answered "
          f"2xx, {sum(1 for a in attempts if a.revoked)} PCs logged out); {server.incarnation} crashes (kill -9), "
          f"{totals['cut requests']} requests cut in flight, {totals['cut logins checked']} cut logins checked; "
          f"confirms checked: {len(held)} distinct, {totals['confirms checked']} checks over the restarts "
          f"({totals['revoked tokens refused']} of them a logged-out PC whose token stays refused); "
          f"tokens checked: {totals['PC tokens work'] + totals['phone tokens work']} checks of a working token over the "
          f"restarts ({totals['PC tokens work']} of PCs, {totals['phone tokens work']} of {len(ctx.phones) + 1} phones) "
          f"+ {totals['revoked tokens refused']} of a revoked one; DPoP replays after a restart: "
          f"{totals['replays refused']} of {totals['replays sent after a restart']} refused; {now() - started:.1f} s")
    print(f"crash test: {'FAILED' if failures else 'passed'} ({failures} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
