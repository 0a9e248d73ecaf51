#!/usr/bin/env python3
"""Cluster and fault tests: several `qrlogin serve` instances on one PostgreSQL database behind
nginx (started by run.sh with scripts/postgres.sh and scripts/cluster.sh).

Checks, each printing `ok: ...` or `FAILED: ...`:
  1. cross-instance logins: the PC waits on a stream at instance i, the phone scans and confirms
     at the other two; the confirm → token latency;
  2. races across instances: 100 scans of one request, 30 confirms, 20 concurrent pickups;
  3. a DPoP proof replayed at another instance;
  4. rate limits shared by the instances (a second, short-lived cluster with limits on);
  5. /health/ready and /health while PostgreSQL is stopped, and the recovery after it;
  6. faults under continuous load: kill -9 of an instance (with the CLI, i.e. the Swift SDK, as
     the PCs), PostgreSQL restarts (fast, immediate), the LISTEN connections terminated.
Figures go to stdout as a table and, with --report FILE, to FILE as JSON.

Usage: cluster_test.py --public URL --instance URL... --pg-dir DIR --cluster-dir DIR
                       --limits-dir DIR --limits-port PORT --binary QRLOGIN --work-dir DIR [--report FILE]
"""
import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from qrclient import (TRANSPORT_ERRORS, FIRST_PAUSE, MAX_PAUSE, Client, Login, PcWaiter, Phone, Reply, WaitFailed,
                      error_kind, new_sessions)

SCRIPTS = Path(__file__).resolve().parent.parent
PASSWORD = "cluster test password"
LOAD_WORKERS = 6
LOGIN_DEADLINE = 45.0        # seconds one load login may take end to end, retries included
RECOVERY_LIMIT = 40.0        # seconds after a fault by which a new login must complete
LISTENER_GAP_LIMIT = 5.0     # seconds a waiting PC may take to get its token after its listener died
# The one way a load login may end unfinished without a server fault: a retried scan finds the
# request scanned, because the first scan went through and only its answer was lost (a POST cut
# by kill -9, which nginx does not send again).
SCAN_ANSWER_LOST = "scan answer lost"


class CheckFailed(Exception):
    pass


def require(condition: bool, message: str):
    if not condition:
        raise CheckFailed(message)


def ok(message: str):
    print(f"ok: {message}", flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def now() -> float:
    return time.monotonic()


@dataclass
class Context:
    public: str
    instances: list[str]
    pg_dir: str
    cluster_dir: str
    limits_dir: str
    limits_port: int
    binary: str
    work_dir: str
    session: aiohttp.ClientSession
    stream_session: aiohttp.ClientSession
    phones: list[Phone] = field(default_factory=list)
    next_ip: int = 1

    def client(self, public: str | None = None) -> Client:
        """A new simulated client with an X-Forwarded-For address of its own."""
        n = self.next_ip
        self.next_ip += 1
        return Client(public or self.public, self.session, self.stream_session, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")

    @property
    def database_url(self) -> str:
        return Path(self.pg_dir, "url").read_text().strip()

    def instance_pid(self, i: int) -> int | None:
        try:
            return int(Path(self.cluster_dir, f"instance-{i + 1}.pid").read_text())
        except (OSError, ValueError):
            return None

    def instance_log(self, i: int) -> str:
        return Path(self.cluster_dir, f"instance-{i + 1}.log").read_text(errors="replace")


# ---------------------------------------------------------------------------------------------
# Helpers: shell scripts, psql, races between a wait and the PC's task

async def run(*command: str, timeout: float = 90) -> tuple[int, str, str]:
    """Runs a command without blocking the event loop; returns its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                   stdin=subprocess.DEVNULL)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise CheckFailed(f"{' '.join(command)} did not finish within {timeout} s")
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def script(name: str, *args: str, timeout: float = 90) -> str:
    """Runs scripts/NAME; its stdout, or CheckFailed with everything it said."""
    code, out, err = await run(str(SCRIPTS / name), *args, timeout=timeout)
    require(code == 0, f"scripts/{name} {' '.join(args)} exited {code}:\n{out}{err}")
    return out


async def psql(ctx: Context, sql: str) -> list[list[str]]:
    """Rows of `sql` through scripts/postgres.sh psql (unaligned, tuples only)."""
    out = await script("postgres.sh", "psql", ctx.pg_dir, "-v", "ON_ERROR_STOP=1", "-Atc", sql)
    return [line.split("|") for line in out.splitlines() if line]


def sql_ids(ids: list[str]) -> str:
    for one in ids:
        require(re.fullmatch(r"[A-Za-z0-9_-]+", one) is not None, f"not a request id: {one!r}")
    return ",".join(f"'{one}'" for one in ids)


async def race(awaitable, task: asyncio.Task, timeout: float):
    """Waits for `awaitable`, unless the PC's task ends first (its error is raised) or `timeout` passes."""
    waiting = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({waiting, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if waiting in done:
        return waiting.result()
    waiting.cancel()
    if task in done:
        task.result()
        raise CheckFailed("the PC got its token before the phone confirmed")
    raise asyncio.TimeoutError()


async def stop_task(task: asyncio.Task):
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def wait_ready(ctx: Context, i: int, deadline: float, want: int = 200) -> tuple[float, Reply | str]:
    """Polls instance i's /health/ready until it answers `want`; returns when, and the last answer."""
    client = ctx.client()
    last: Reply | str = "no answer"
    while now() < deadline:
        try:
            last = await client.call("GET", ctx.instances[i], "/health/ready", timeout=8)
            if last.status == want:
                return now(), last
        except TRANSPORT_ERRORS as error:
            last = error_kind(error)
        await asyncio.sleep(0.1)
    raise CheckFailed(f"instance {i + 1}: /health/ready did not answer {want} in time; last: {last}")


async def one_login(ctx: Context, client: Client, phone: Phone, pc_base: str, scan_base: str, confirm_base: str,
                    name: str, timeout: float = 30) -> dict:
    """One complete login without faults: PC stream at pc_base, scan and confirm elsewhere. Returns facts."""
    pc = client.device()
    reply = await client.create_login(pc_base, pc, name)
    require(reply.status == 201, f"create at {pc_base}: {reply}")
    login = Login.from_reply(reply, pc)
    waiter = PcWaiter(client, pc_base, login, deadline=now() + timeout)
    task = asyncio.create_task(waiter.run())
    try:
        await race(waiter.opened.wait(), task, 10)
        scan = await phone.scan(scan_base, login.id)
        require(scan.status == 200, f"scan at {scan_base}: {scan}")
        match = await race(waiter.scanned, task, 10)
        require(match in scan.body["matchChoices"], f"the PC's number {match} is not among the phone's {scan.body['matchChoices']}")
        confirm = await phone.confirm(confirm_base, login.id, scan.body["ticket"], match)
        confirmed_at = now()
        require(confirm.status == 200 and confirm.body.get("state") == "confirmed", f"confirm at {confirm_base}: {confirm}")
        token = await asyncio.wait_for(asyncio.shield(task), timeout)
    except asyncio.TimeoutError:
        raise CheckFailed(f"login {login.id}: the PC's stream at {pc_base} gave nothing in time (errors {waiter.errors})")
    except WaitFailed as error:
        raise CheckFailed(f"login {login.id}: the PC at {pc_base}: {error}")
    finally:
        await stop_task(task)
    me = await client.me(ctx.public, pc, token["accessToken"])
    require(me.status == 200 and me.body["account"]["username"] == phone.username,
            f"login {login.id}: the token does not work on /api/v1/me through nginx: {me}")
    return {"id": login.id, "latency": waiter.token_at - confirmed_at, "reconnects": waiter.reconnects,
            "errors": waiter.errors, "token": token}


# ---------------------------------------------------------------------------------------------
# Setup

async def make_phones(ctx: Context, count: int):
    """`count` accounts, each signed in on a phone of its own (spread over the instances)."""
    gate = asyncio.Semaphore(16)
    run_id = os.urandom(3).hex()

    async def make(k: int) -> Phone:
        async with gate:
            return await ctx.client().register_phone(ctx.instances[k % 3], f"phone{k}-{run_id}", PASSWORD)

    started = now()
    ctx.phones = await asyncio.gather(*(make(k) for k in range(count)))
    ok(f"setup: {count} accounts registered and signed in on their phones in {now() - started:.1f} s")


# ---------------------------------------------------------------------------------------------
# 1. Cross-instance logins

async def check_cross_instance(ctx: Context, report: dict):
    count = 40

    async def login(k: int) -> dict:
        i, j, l = k % 3, (k + 1) % 3, (k + 2) % 3
        return await one_login(ctx, ctx.client(), ctx.phones[k], ctx.instances[i], ctx.instances[j], ctx.instances[l], f"pc-{k}")

    started = now()
    results = await asyncio.gather(*(login(k) for k in range(count)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    require(not failures, f"{len(failures)} of {count} cross-instance logins failed; first: {failures[:3]}")
    troubled = [r for r in results if r["reconnects"] or r["errors"]]
    require(not troubled, f"{len(troubled)} PCs had to reconnect without any fault: {[r['errors'] for r in troubled[:3]]}")
    latencies = [r["latency"] * 1000 for r in results]
    figures = {"logins": count, "seconds": round(now() - started, 2),
               "confirm_to_token_ms": {"p50": round(percentile(latencies, 50), 1), "p99": round(percentile(latencies, 99), 1),
                                       "max": round(max(latencies), 1), "min": round(min(latencies), 1)}}
    report["cross_instance_logins"] = figures
    ms = figures["confirm_to_token_ms"]
    ok(f"cross-instance logins: {count} at once, each PC's stream on instance i, scan on j, confirm on k: "
       f"all got their token and it works through nginx; confirm answered → PC has token: "
       f"p50 {ms['p50']} ms, p99 {ms['p99']} ms (min {ms['min']}, max {ms['max']})")


# ---------------------------------------------------------------------------------------------
# 2. Races

def tally(replies: list) -> Counter:
    return Counter(r.kind() if isinstance(r, Reply) else f"transport {error_kind(r)}" for r in replies)


async def check_scan_race(ctx: Context, report: dict) -> tuple[Client, Login, Phone, dict]:
    client = ctx.client()
    pc = client.device()
    reply = await client.create_login(ctx.public, pc, "race")
    require(reply.status == 201, f"create: {reply}")
    login = Login.from_reply(reply, pc)
    phones = ctx.phones[:100]
    replies = await asyncio.gather(*(p.scan(ctx.instances[k % 3], login.id) for k, p in enumerate(phones)),
                                   return_exceptions=True)
    kinds = tally(replies)
    winners = [p for p, r in zip(phones, replies) if isinstance(r, Reply) and r.status == 200]
    require(len(winners) == 1 and kinds.get("409 already_scanned", 0) == len(phones) - 1,
            f"100 concurrent scans over 3 instances: want one 200 and 99 × 409 already_scanned, got {dict(kinds)}")
    winner = winners[0]
    scan = replies[phones.index(winner)].body
    state = await client.read(ctx.public, login)
    require(state.ok and state.body["state"] == "scanned" and state.body["scanner"]["displayName"] == winner.display_name,
            f"after the scan race the PC should see the winner {winner.display_name}: {state}")
    report["races"] = {"scans": {"requests": len(phones), "answers": dict(kinds)}}
    ok(f"scan race: 100 phones at once over 3 instances: exactly one 200, 99 × 409 already_scanned; the PC sees the winner")
    return client, login, winner, {"ticket": scan["ticket"], "match": state.body["match"]}


async def check_confirm_race(ctx: Context, report: dict, client: Client, login: Login, phone: Phone, scan: dict):
    replies = await asyncio.gather(*(phone.confirm(ctx.instances[k % 3], login.id, scan["ticket"], scan["match"])
                                     for k in range(30)), return_exceptions=True)
    kinds = tally(replies)
    require(kinds.get("200", 0) == 1 and kinds.get("409 request_confirmed", 0) == 29,
            f"30 concurrent confirms: want one 200 and 29 × 409 request_confirmed, got {dict(kinds)}")
    collected = await client.read(ctx.public, login)
    require(collected.ok and collected.body["state"] == "confirmed" and collected.body.get("token"),
            f"the PC's read after the confirm race: {collected}")
    me = await client.me(ctx.public, login.device, collected.body["token"]["accessToken"])
    require(me.status == 200, f"the collected token after the confirm race does not work: {me}")
    report["races"]["confirms"] = {"requests": 30, "answers": dict(kinds)}
    ok("confirm race: 30 confirms at once over 3 instances: exactly one 200, 29 × 409 request_confirmed; "
       "the PC collects one working token")


async def check_pickup_race(ctx: Context, report: dict):
    client = ctx.client()
    phone = ctx.phones[1]
    pc = client.device()
    reply = await client.create_login(ctx.instances[0], pc, "pickups")
    require(reply.status == 201, f"create: {reply}")
    login = Login.from_reply(reply, pc)
    scan = await phone.scan(ctx.instances[1], login.id)
    require(scan.status == 200, f"scan: {scan}")
    state = await client.read(ctx.instances[0], login)
    confirm = await phone.confirm(ctx.instances[2], login.id, scan.body["ticket"], state.body["match"])
    require(confirm.status == 200, f"confirm: {confirm}")
    async def read(k: int) -> Reply:
        # Ten at once race for the pickup; ten more, 20 ms apart, each collect again.
        await asyncio.sleep(max(0, k - 9) * 0.02)
        return await client.read(ctx.instances[k % 3], login)
    replies = await asyncio.gather(*(read(k) for k in range(20)), return_exceptions=True)
    kinds = tally(replies)
    allowed = {"200", "409 superseded"}
    require(set(kinds) <= allowed, f"20 concurrent pickups: only 200 or 409 superseded allowed, got {dict(kinds)}")
    tokens = [r.body["token"]["accessToken"] for r in replies if isinstance(r, Reply) and r.status == 200]
    require(tokens and all(tokens), f"20 concurrent pickups handed out no token: {dict(kinds)}")
    checks = [await client.me(ctx.public, pc, token) for token in tokens]
    working = [c for c in checks if c.status == 200]
    refused = tally([c for c in checks if c.status != 200])
    require(len(working) == 1 and set(refused) <= {"401 invalid_token"},
            f"after 20 concurrent pickups exactly one handed-out token may work: {len(working)} of {len(tokens)} work, "
            f"the others: {dict(refused)}")
    report["races"]["pickups"] = {"requests": 20, "answers": dict(kinds), "tokens_handed_out": len(tokens), "tokens_working": 1}
    ok(f"pickup race: 20 overlapping PC reads over 3 instances: {dict(kinds)}; of the {len(tokens)} tokens handed out "
       f"exactly one works")


async def check_races(ctx: Context, report: dict):
    client, login, winner, scan = await check_scan_race(ctx, report)
    await check_confirm_race(ctx, report, client, login, winner, scan)
    await check_pickup_race(ctx, report)


# ---------------------------------------------------------------------------------------------
# 3. Replay across instances

async def check_replay(ctx: Context, report: dict):
    phone = ctx.phones[2]
    client = phone.client
    proof = phone.device.proof("GET", "/api/v1/me", phone.token)
    first = await client.call("GET", ctx.instances[0], "/api/v1/me", token=phone.token, proof=proof)
    require(first.status == 200, f"a fresh proof at instance 1: {first}")
    for i in (1, 2):
        again = await client.call("GET", ctx.instances[i], "/api/v1/me", token=phone.token, proof=proof)
        require(again.status == 401 and again.code == "dpop_proof_replayed",
                f"the same proof replayed at instance {i + 1}: want 401 dpop_proof_replayed, got {again}")
    pc = client.device()
    proof = pc.proof("POST", "/api/v1/qr")
    body = {"device": {"type": "web", "name": "replay"}}
    created = await client.call("POST", ctx.instances[1], "/api/v1/qr", proof=proof, body=body)
    require(created.status == 201, f"create with a fresh proof at instance 2: {created}")
    again = await client.call("POST", ctx.instances[2], "/api/v1/qr", proof=proof, body=body)
    require(again.status == 401 and again.code == "dpop_proof_replayed",
            f"the create proof replayed at instance 3: want 401 dpop_proof_replayed, got {again}")
    report["replay"] = {"token_proof_replayed_at_other_instances": "401 dpop_proof_replayed",
                        "creation_proof_replayed_at_other_instance": "401 dpop_proof_replayed"}
    ok("replay: a proof used at instance 1 is refused at instances 2 and 3 (401 dpop_proof_replayed); "
       "a creation proof used at instance 2 is refused at instance 3")


# ---------------------------------------------------------------------------------------------
# 4. Shared rate limits

async def check_rate_limits(ctx: Context, report: dict):
    """A second cluster of 3 instances on the same database, limits on (create: 60 a minute per IP)."""
    out = await script("cluster.sh", "start", ctx.limits_dir, "--binary", ctx.binary, "--database", ctx.database_url,
                       "--instances", "3", "--port", str(ctx.limits_port), "--", "--bcrypt-cost", "4")
    public = re.findall(r"^http://127\.0\.0\.1:\d+$", out, re.M)[-1]
    try:
        client = ctx.client(public)
        started = now()
        first = await asyncio.gather(*(client.create_login(public, client.device(), f"limit-{k}") for k in range(60)),
                                     return_exceptions=True)
        kinds = tally(first)
        require(kinds == Counter({"201": 60}), f"the first 60 creates from one IP: want 60 × 201, got {dict(kinds)}")
        extra = [await client.create_login(public, client.device(), f"extra-{k}") for k in range(5)]
        elapsed = now() - started
        limited = [r for r in extra if r.status == 429]
        require(all(r.code == "rate_limited" and r.headers.get("Retry-After") for r in limited),
                f"429 without code rate_limited or Retry-After: {limited[:1]}")
        admitted = sum(1 for r in extra if r.status == 201)
        # The bucket refills at one token a second, so a slow run may admit that many more.
        refill = math.floor(elapsed) + 1
        require(limited and admitted + len(limited) == 5 and admitted <= refill,
                f"creates 61-65 from the same IP after {elapsed:.2f} s: want 429s (at most {refill} admitted by the "
                f"refill), got {dict(tally(extra))}")
        other = await ctx.client(public).create_login(public, client.device(), "other-ip")
        require(other.status == 201, f"another IP must not be limited: {other}")
        upstreams = Counter()
        for line in Path(ctx.limits_dir, "nginx-access.log").read_text().splitlines():
            if '"POST /api/v1/qr ' in line:
                upstreams[line.split()[-2]] += 1
        require(len(upstreams) == 3, f"nginx should have spread the creates over 3 instances: {dict(upstreams)}")
    finally:
        await script("cluster.sh", "stop", ctx.limits_dir)
    report["rate_limits"] = {"creates_admitted_of_first_60": 60, "next_5": dict(tally(extra)), "seconds": round(elapsed, 2),
                             "per_instance": dict(upstreams)}
    ok(f"shared rate limits: 60 creates from one IP admitted over 3 instances ({dict(upstreams)}), the next 5: "
       f"{len(limited)} × 429 rate_limited with Retry-After, {admitted} admitted by the 1/s refill ({elapsed:.2f} s); "
       f"not 180; another IP is admitted")


# ---------------------------------------------------------------------------------------------
# 5. Readiness while PostgreSQL is down

async def timed_health(ctx: Context, i: int) -> tuple[float, Reply | str]:
    started = now()
    try:
        reply = await ctx.client().call("GET", ctx.instances[i], "/health", timeout=15)
    except TRANSPORT_ERRORS as error:
        return now() - started, error_kind(error)
    return now() - started, reply


async def check_readiness(ctx: Context, report: dict):
    for i in range(3):
        await wait_ready(ctx, i, now() + 5)
    ok("readiness: /health/ready is 200 on every instance")

    stop_started = now()
    await script("postgres.sh", "stop", ctx.pg_dir)
    stopped = now()
    try:
        turned = await asyncio.gather(*(wait_ready(ctx, i, stopped + 10, want=503) for i in range(3)))
        not_ready_after = [round(t - stopped, 2) for t, _ in turned]
        codes = {r.code for _, r in turned}
        require(codes == {"store_unavailable"}, f"/health/ready while PostgreSQL is down: want code store_unavailable, got {codes}")
        health = await asyncio.gather(*(timed_health(ctx, i) for i in range(3)))
        for i, (took, reply) in enumerate(health):
            require(isinstance(reply, Reply) and reply.status == 503 and reply.code == "store_unavailable"
                    and reply.headers.get("Content-Type", "").startswith("application/problem+json"),
                    f"instance {i + 1}: GET /health while PostgreSQL is down: want 503 store_unavailable problem JSON, got {reply}")
            require(took < 7, f"instance {i + 1}: GET /health took {took:.1f} s while PostgreSQL is down (want < 7 s)")
        health_seconds = [round(took, 2) for took, _ in health]
        ok(f"readiness: PostgreSQL stopped ({stopped - stop_started:.1f} s): /health/ready 503 store_unavailable on every "
           f"instance after {not_ready_after} s; GET /health 503 store_unavailable problem JSON in {health_seconds} s")
    finally:
        restart_started = now()
        await script("postgres.sh", "restart", ctx.pg_dir, "fast")
    back = now()
    ready = await asyncio.gather(*(wait_ready(ctx, i, back + 30) for i in range(3)))
    ready_after = [round(t - back, 2) for t, _ in ready]
    client = ctx.client()
    login = await one_login(ctx, client, ctx.phones[3], ctx.public, ctx.public, ctx.public, "after-outage")
    report["readiness"] = {"not_ready_after_stop_s": not_ready_after, "health_answer_s": health_seconds,
                           "postgres_start_s": round(back - restart_started, 2), "ready_after_start_s": ready_after,
                           "recovery_s": round(max(ready_after), 2)}
    ok(f"readiness: PostgreSQL started again ({back - restart_started:.1f} s): every instance ready after {ready_after} s "
       f"without a restart; a full login through nginx works ({login['id']})")


# ---------------------------------------------------------------------------------------------
# 6. Faults under load

async def attempt(step: str, call, deadline: float, record) -> Reply | None:
    """Retries transport errors, 5xx and 429 with the SDK's pause (recording each); returns the
    first other answer, or None at the deadline."""
    pause = FIRST_PAUSE
    while now() < deadline:
        sent = now()
        try:
            reply = await call()
            if not reply.transient:
                return reply
            record(step, reply.kind(), now() - sent)
        except TRANSPORT_ERRORS as error:
            record(step, error_kind(error), now() - sent)
        await asyncio.sleep(min(pause, max(0.0, deadline - now())))
        pause = min(pause * 2, MAX_PAUSE)
    return None


@dataclass
class Outcome:
    started: float
    id: str | None = None
    login: Login | None = None
    client: Client | None = None
    confirmed: bool = False            # a confirm answered 2xx (or 409 request_confirmed after a lost answer)
    completed_at: float | None = None  # the PC holds a token that works
    failure: str | None = None
    waiter: PcWaiter | None = None


class Load:
    """Workers doing complete logins through nginx in a loop: create, PC waits on a stream (and
    reconnects like the SDK), phone scans and confirms (retrying like an app would), PC's token
    checked on /api/v1/me. Every error a client sees is recorded with its time."""

    def __init__(self, ctx: Context, phones: list[Phone]):
        self.ctx, self.phones = ctx, phones
        self.outcomes: list[Outcome] = []
        self.errors: list[tuple[float, str, float | None]] = []   # (when, kind, how long the call took)
        self.stopping = False
        self.tasks: list[asyncio.Task] = []
        # When the fault began and when it was in place, if not when inject began and returned.
        self.fault_at: float | None = None
        self.injected_at: float | None = None
        self.problems: list[str] = []   # what inject saw that fails the check, after the figures are reported

    def record(self, step: str, kind: str, took: float | None = None):
        self.errors.append((now(), f"{step}: {kind}", took))

    async def attempt(self, step: str, call, deadline: float) -> Reply | None:
        return await attempt(step, call, deadline, self.record)

    async def login(self, client: Client, phone: Phone) -> Outcome:
        base = self.ctx.public
        outcome = Outcome(started=now(), client=client)
        deadline = outcome.started + LOGIN_DEADLINE
        pc = client.device()
        reply = await self.attempt("create", lambda: client.create_login(base, pc, "load"), deadline)
        if reply is None or reply.status != 201:
            outcome.failure = f"create: {reply.kind() if reply else 'gave up'}"
            return outcome
        login = outcome.login = Login.from_reply(reply, pc)
        outcome.id = login.id
        waiter = outcome.waiter = PcWaiter(client, base, login, deadline, on_error=self.record)
        task = asyncio.create_task(waiter.run())
        waiting_for = "its stream's first event"
        try:
            await race(waiter.opened.wait(), task, deadline - now())
            scans = 0

            async def scan_once():
                nonlocal scans
                scans += 1
                return await phone.scan(base, login.id)
            scan = await self.attempt("scan", scan_once, deadline)
            if scan is not None and scan.code == "already_scanned" and scans > 1:
                # The first scan went through but its answer (and ticket) was lost: the user would scan a new code.
                outcome.failure = f"{SCAN_ANSWER_LOST}: 409 already_scanned on a retry"
                return outcome
            if scan is None or scan.status != 200:
                outcome.failure = f"scan: {scan.kind() if scan else 'gave up'}"
                return outcome
            waiting_for = "the scanned event"
            match = await race(waiter.scanned, task, deadline - now())
            tries = 0

            async def confirm():
                nonlocal tries
                tries += 1
                return await phone.confirm(base, login.id, scan.body["ticket"], match)
            answer = await self.attempt("confirm", confirm, deadline)
            # A retried confirm that finds the request confirmed lost the answer to the one that did it.
            if answer is not None and (answer.ok or (answer.code == "request_confirmed" and tries > 1)):
                outcome.confirmed = True
            elif answer is None:
                outcome.failure = "confirm: gave up"
                return outcome
            else:
                outcome.failure = f"confirm: {answer.kind()}"
                return outcome
            waiting_for = "its token"
            token = await asyncio.wait_for(asyncio.shield(task), max(0.1, deadline - now()))
            me = await self.attempt("me", lambda: client.me(base, pc, token["accessToken"]), deadline)
            if me is not None and me.status == 200:
                outcome.completed_at = now()
            else:
                outcome.failure = f"token check: {me.kind() if me else 'gave up'}"
        except asyncio.TimeoutError:
            outcome.failure = "PC: deadline"
            self.problems.append(f"login {login.id}: the PC waited {LOGIN_DEADLINE:.0f} s for {waiting_for} "
                                 f"(reconnects {waiter.reconnects}, errors {waiter.errors[-5:]})")
        except (WaitFailed, CheckFailed) as error:
            outcome.failure = f"PC: {error}"
        finally:
            await stop_task(task)
        return outcome

    async def worker(self, phone: Phone):
        client = self.ctx.client()
        while not self.stopping:
            outcome = await self.login(client, phone)
            self.outcomes.append(outcome)
            if outcome.completed_at is None:
                await asyncio.sleep(0.2)

    def start(self):
        self.tasks = [asyncio.create_task(self.worker(phone)) for phone in self.phones]

    async def stop(self):
        """Lets every login in flight finish (each has its own deadline)."""
        self.stopping = True
        await asyncio.wait_for(asyncio.gather(*self.tasks), LOGIN_DEADLINE + 15)

    async def recovered(self, after: float, limit: float) -> float:
        """Waits for the first complete login started after `after`; returns when it completed."""
        deadline = now() + limit
        while now() < deadline:
            done = [o.completed_at for o in self.outcomes if o.started >= after and o.completed_at]
            if done:
                return min(done)
            await asyncio.sleep(0.1)
        raise CheckFailed(f"no login started after the fault completed within {limit:.0f} s; "
                          f"recent errors: {Counter(k for _, k, _ in self.errors[-30:]).most_common(5)}")


async def settle(ctx: Context, load: Load, fault_at: float) -> dict:
    """After the load stopped: every confirmed login whose PC did not get its token must still be
    collectable (checked in the database and by collecting it); else it is lost."""
    uncollected = [o for o in load.outcomes if o.confirmed and (o.waiter is None or o.waiter.token_at is None)]
    late, lost = [], []
    for o in uncollected:
        rows = await psql(ctx, f"select state, token_id is not null from login_requests where id = {sql_ids([o.id])}")
        reply = await attempt("late collect", lambda: o.client.read(ctx.public, o.login), now() + 20, lambda *_: None)
        works = False
        if reply is not None and reply.ok and (reply.body or {}).get("token"):
            me = await o.client.me(ctx.public, o.login.device, reply.body["token"]["accessToken"])
            works = me.status == 200
        entry = {"id": o.id, "db_before": rows, "collect": reply.kind() if reply else "gave up", "pc": o.failure}
        (late if works else lost).append(entry)
    confirmed_ids = [o.id for o in load.outcomes if o.confirmed]
    not_collected = []
    if confirmed_ids:
        not_collected = await psql(ctx, f"select id, state from login_requests where id in ({sql_ids(confirmed_ids)}) "
                                        f"and (state <> 'confirmed' or token_id is null)")
    after = [o for o in load.outcomes if o.started >= fault_at]
    failures = Counter(re.sub(r"\(.*", "", o.failure)[:80] for o in load.outcomes if o.failure)
    errors = Counter(kind for _, kind, _ in load.errors)
    error_times = [t for t, _, _ in load.errors]
    error_answers = [took for _, _, took in load.errors if took is not None]
    return {
        "logins_completed": sum(1 for o in load.outcomes if o.completed_at),
        "logins_confirmed": len(confirmed_ids),
        "lost_confirmed_logins": len(lost),
        "collected_only_afterwards": len(late),
        "confirmed_not_collected_in_db": len(not_collected),
        "logins_abandoned": dict(failures),
        "client_errors": dict(errors.most_common()),
        "errors_from_s": round(min(error_times) - fault_at, 2) if error_times else None,
        "errors_until_s": round(max(error_times) - fault_at, 2) if error_times else None,
        "slowest_error_answer_s": round(max(error_answers), 2) if error_answers else None,
        # [seconds from the fault, how long the call took (null for a stream cut), kind]
        "error_timeline": [[round(t - fault_at, 2), None if took is None else round(took, 2), kind]
                           for t, kind, took in load.errors[:40]],
        "pc_reconnects": sum(o.waiter.reconnects for o in load.outcomes if o.waiter),
        "pc_recollected": sum(o.waiter.recollected for o in load.outcomes if o.waiter),
        "logins_started_after_fault": len(after),
        "_lost": lost, "_late": late, "_not_collected": not_collected,
    }


async def under_load(ctx: Context, report: dict, name: str, inject, *, before: float = 3.0, after: float = 3.0) -> dict:
    """Runs the load, injects the fault (an async callable returning extra figures), waits for a
    login started after it to complete, lets the load run on, stops it and checks the outcome."""
    load = Load(ctx, ctx.phones[10:10 + LOAD_WORKERS])
    load.start()
    try:
        await asyncio.sleep(before)
        completed_before = sum(1 for o in load.outcomes if o.completed_at)
        require(completed_before > 0, f"{name}: no login completed in {before} s before the fault")
        inject_started = now()
        extra = await inject(load) or {}
        injected = load.injected_at or now()
        fault_at = load.fault_at or inject_started
        recovered_at = await load.recovered(injected, RECOVERY_LIMIT)
        await asyncio.sleep(after)
    finally:
        await load.stop()
    figures = {"fault": name, "fault_in_place_s": round(injected - fault_at, 2),
               "recovery_s": round(recovered_at - fault_at, 2)}
    figures.update(await settle(ctx, load, fault_at))
    figures.update(extra)
    lost, not_collected = figures.pop("_lost"), figures.pop("_not_collected")
    late = figures.pop("_late")
    report.setdefault("faults", []).append(figures)
    problems = list(load.problems)
    if lost:
        problems.append(f"{len(lost)} confirmed logins lost (confirm answered, the PC never got a token, and it "
                        f"cannot be collected afterwards): {lost[:5]}")
    if not_collected:
        problems.append(f"confirmed logins not collected in the database: {not_collected[:5]}")
    unexplained = {k: v for k, v in figures["logins_abandoned"].items() if not k.startswith(SCAN_ANSWER_LOST)}
    if unexplained:
        hint = ""
        if any("dpop_proof_replayed" in k for k in unexplained):
            hint = (" (a fresh proof refused as replayed: nginx sent a GET that the killed instance had already "
                    "recorded to another instance; see nginx-access.log, lines with two upstreams)")
        problems.append(f"logins failed for reasons a retrying client cannot get past: {unexplained}{hint}")
    require(not problems, f"{name}: " + "\n  ".join(problems))
    slowest = figures["slowest_error_answer_s"]
    ok(f"fault {name}: {figures['logins_completed']} logins completed, {figures['lost_confirmed_logins']} lost "
       f"({len(late)} collected only afterwards), recovered {figures['recovery_s']} s after the fault; "
       f"client errors {figures['client_errors'] or 'none'}{'' if slowest is None else f' (slowest error answer {slowest} s)'}; "
       f"abandoned {figures['logins_abandoned'] or 'none'}")
    return figures


# 6a. kill -9 of the instance holding CLI PCs' streams

@dataclass
class CliLogin:
    n: int
    process: asyncio.subprocess.Process
    home: str
    lines: list[str] = field(default_factory=list)
    url: str | None = None
    id: str | None = None
    match: int | None = None
    exit_code: int | None = None
    got_url: asyncio.Event = field(default_factory=asyncio.Event)
    got_match: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task | None = None

    async def read(self):
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if self.url is None and (found := re.search(r"(https?://\S+/q/([A-Za-z0-9_-]+))", line)):
                self.url, self.id = found.group(1), found.group(2)
                self.got_url.set()
            if (found := re.search(r"Scanned by .* pick (\d+) on your phone", line)):
                self.match = int(found.group(1))
                self.got_match.set()
        self.exit_code = await self.process.wait()


async def start_cli(ctx: Context, n: int) -> CliLogin:
    home = os.path.join(ctx.work_dir, f"cli-home-{n}")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))
    env.pop("QRLOGIN_SERVER", None)
    env.pop("QRLOGIN_PROFILE", None)
    process = await asyncio.create_subprocess_exec(ctx.binary, "login", "--server", ctx.public, "--name", f"pc-{n}",
                                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT, env=env)
    # run.sh kills whatever is left in this list on exit.
    with open(os.path.join(ctx.work_dir, "cli.pids"), "a") as pids:
        pids.write(f"{process.pid}\n")
    cli = CliLogin(n, process, home)
    cli.reader = asyncio.create_task(cli.read())
    return cli


def stream_holder(ctx: Context, login_id: str) -> int | None:
    """The instance whose log shows the newest GET of the request's stream."""
    pattern = re.compile(rf"hb\.request\.method=GET hb\.request\.path=/api/v1/qr/{re.escape(login_id)}(\s|$)")
    holders = [i for i in range(3) if pattern.search(ctx.instance_log(i))]
    return holders[-1] if len(holders) == 1 else None


async def holders_of(ctx: Context, ids: list[str]) -> dict[str, int]:
    """The instance holding each request's wait (stream or long-poll), from the instances' logs."""
    holders: dict[str, int | None] = {}
    for _ in range(50):
        holders = {one: stream_holder(ctx, one) for one in ids}
        if all(h is not None for h in holders.values()):
            return holders
        await asyncio.sleep(0.1)
    raise CheckFailed(f"could not tell which instance holds each wait: {holders}")


async def long_polls_on(ctx: Context, victim: int) -> list[dict]:
    """PCs long-polling through nginx (`?wait=30&state=pending`, the SDK's fallback), until at
    least two of them wait on instance `victim`."""
    polls = []
    for n in range(12):
        client = ctx.client()
        pc = client.device()
        reply = await client.create_login(ctx.public, pc, f"long-poll-{n}")
        require(reply.status == 201, f"create: {reply}")
        login = Login.from_reply(reply, pc)
        task = asyncio.create_task(client.read(ctx.public, login, "?wait=30&state=pending", timeout=40))
        holder = (await holders_of(ctx, [login.id]))[login.id]
        polls.append({"client": client, "login": login, "task": task, "holder": holder})
        if sum(1 for p in polls if p["holder"] == victim) >= 2:
            break
    return polls


async def after_kill(ctx: Context, load: Load, polls: list[dict], victim: int) -> dict:
    """What the long-polls held by the killed instance were answered. A cut wait is a transient
    failure (a 5xx, a dropped connection, or 401 dpop_proof_replayed when nginx re-sent the GET
    to another instance after the killed one had recorded its proof: the server must refuse a
    proof it has seen, and clients sign a new one and ask again), and the PC's next poll works."""
    answers = Counter()
    for poll in polls:
        if poll["holder"] != victim:
            await stop_task(poll["task"])
            continue
        try:
            reply = await asyncio.wait_for(poll["task"], 15)
            kind = reply.kind()
        except TRANSPORT_ERRORS as error:
            kind = error_kind(error)
        answers[kind] += 1
        if kind.startswith("4") and kind != "401 dpop_proof_replayed":
            load.problems.append(
                f"a PC long-polling through nginx on the killed instance got {kind} for a proof it sent once "
                f"(login {poll['login'].id}: nginx sent the GET again to another instance after the killed one had "
                f"recorded the proof's jti; see nginx-access.log, a line with two upstreams)")
        again = await attempt("long-poll again", lambda: poll["client"].read(ctx.public, poll["login"], "?wait=0"),
                              now() + 20, load.record)
        if again is None or again.status != 200:
            load.problems.append(f"the long-polling PC {poll['login'].id} could not read its request after the kill: {again}")
    require(answers, "no long-poll landed on the instance to kill")
    if not load.problems:
        ok(f"fault kill -9: {sum(answers.values())} PCs long-polling through nginx on the killed instance were answered "
           f"{dict(answers)} and read their requests again")
    return {"long_polls_on_killed_instance": sum(answers.values()), "long_poll_answers": dict(answers)}


async def fault_kill(ctx: Context, report: dict):
    clis: list[CliLogin] = []
    figures_cli: dict = {}

    async def inject(load: Load) -> dict:
        for n in range(6):
            clis.append(await start_cli(ctx, n + 1))
        for cli in clis:
            try:
                await asyncio.wait_for(cli.got_url.wait(), 15)
            except asyncio.TimeoutError:
                raise CheckFailed(f"qrlogin login pc-{cli.n} printed no login url: {cli.lines[-10:]}")
        # Each CLI opens its stream right after creating the request; find where each landed.
        holders = await holders_of(ctx, [cli.id for cli in clis])
        per_instance = Counter(holders.values())
        victim = per_instance.most_common(1)[0][0]
        on_victim = per_instance[victim]
        polls = await long_polls_on(ctx, victim)
        killed_at = load.fault_at = now()
        await script("cluster.sh", "kill", ctx.cluster_dir, str(victim + 1))
        load.injected_at = now()
        ok(f"fault kill -9: instance {victim + 1} killed while holding {on_victim} of the 6 CLI PCs' streams "
           f"(streams per instance: {dict(sorted((k + 1, v) for k, v in per_instance.items()))})")
        poll_figures = await after_kill(ctx, load, polls, victim)

        async def approve(cli: CliLogin, k: int) -> float:
            phone = ctx.phones[20 + k]
            deadline = now() + 30
            scan = await load.attempt("cli scan", lambda: phone.scan(ctx.public, cli.id), deadline)
            require(scan is not None and scan.status == 200, f"scanning CLI pc-{cli.n}'s request: {scan}")
            try:
                await asyncio.wait_for(cli.got_match.wait(), 20)
            except asyncio.TimeoutError:
                raise CheckFailed(f"CLI pc-{cli.n} never showed the number after the scan (its stream was on "
                                  f"instance {holders[cli.id] + 1}); its output: {cli.lines[-6:]}")
            require(cli.match in scan.body["matchChoices"], f"CLI pc-{cli.n} shows {cli.match}, not among {scan.body['matchChoices']}")
            answer = await load.attempt("cli confirm", lambda: phone.confirm(ctx.public, cli.id, scan.body["ticket"], cli.match), deadline)
            require(answer is not None and answer.status == 200, f"confirming CLI pc-{cli.n}'s request: {answer}")
            confirmed = now()
            try:
                await asyncio.wait_for(cli.reader, 30)
            except asyncio.TimeoutError:
                raise CheckFailed(f"CLI pc-{cli.n} did not exit within 30 s after the confirm; output: {cli.lines[-6:]}")
            require(cli.exit_code == 0 and any(line.startswith("Logged in as") for line in cli.lines),
                    f"CLI pc-{cli.n} (stream on instance {holders[cli.id] + 1}) exited {cli.exit_code}: {cli.lines[-6:]}")
            return now() - confirmed

        took = await asyncio.gather(*(approve(cli, k) for k, cli in enumerate(clis)))
        for cli in clis:
            env = dict(os.environ, HOME=cli.home, XDG_CONFIG_HOME=os.path.join(cli.home, ".config"))
            process = await asyncio.create_subprocess_exec(ctx.binary, "whoami", stdin=subprocess.DEVNULL,
                                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            out, _ = await process.communicate()
            require(process.returncode == 0, f"qrlogin whoami of CLI pc-{cli.n} exited {process.returncode}: {out.decode()[-300:]}")
        ok(f"fault kill -9: all 6 CLI logins (the Swift SDK) exited 0 \"Logged in as\" and whoami works; "
           f"confirm → CLI exit {min(took):.2f}-{max(took):.2f} s")
        revive_started = now()
        await script("cluster.sh", "revive", ctx.cluster_dir, str(victim + 1))
        await wait_ready(ctx, victim, now() + 20)
        figures_cli.update(poll_figures)
        figures_cli.update({"killed_instance": victim + 1, "cli_streams_on_killed_instance": on_victim,
                            "cli_logins_ok": len(clis), "cli_confirm_to_exit_s": round(max(took), 2),
                            "revived_ready_s": round(now() - revive_started, 2),
                            "cli_phase_s": round(now() - killed_at, 2)})
        return figures_cli

    try:
        await under_load(ctx, report, "kill -9 instance", inject)
    finally:
        for cli in clis:
            if cli.process.returncode is None:
                cli.process.kill()
            await stop_task(cli.reader)
        for i in range(3):
            if not alive(ctx.instance_pid(i)):
                await run(str(SCRIPTS / "cluster.sh"), "revive", ctx.cluster_dir, str(i + 1))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# 6b, 6c. PostgreSQL restarts

async def fault_pg_restart(ctx: Context, report: dict, mode: str):
    async def inject(load: Load) -> dict:
        await script("postgres.sh", "restart", ctx.pg_dir, mode)
        return {}
    await under_load(ctx, report, f"postgres restart {mode}", inject)


# 6d. The LISTEN connections terminated

def instance_of_ports(ctx: Context, pg_port: int) -> dict[int, int]:
    """Local port of each TCP connection to PostgreSQL → the instance (0-based) that owns it."""
    inodes: dict[str, int] = {}
    for i in range(3):
        pid = ctx.instance_pid(i)
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = i
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        local, remote, inode = parts[1], parts[2], parts[9]
        if int(remote.split(":")[1], 16) == pg_port and inode in inodes:
            owners[int(local.split(":")[1], 16)] = inodes[inode]
    return owners


LISTENER_SQL = ("select pid, client_port, query, extract(epoch from query_start), extract(epoch from backend_start) "
                "from pg_stat_activity where datname = 'qrlogin' and backend_type = 'client backend' "
                "and pid <> pg_backend_pid() and (query ilike 'LISTEN%' or query = 'SELECT 1')")


async def find_listeners(ctx: Context) -> list[dict]:
    """The instances' LISTEN connections, by their application_name `qrlogin listener` where the
    server sets it. Without it: pg_stat_activity shows `LISTEN "qrlogin_login";` only until the
    listener's first ping; after that its last query is `SELECT 1`, every 5 s, the same text as
    /health/ready's ping on a pooled connection. So then: backends whose last query is one of
    those two in two samples 5.5 s apart, with a newer query_start in the second (a listener
    pings in between; nobody calls /health/ready meanwhile)."""
    named = await psql(ctx, "select pid, client_port, query from pg_stat_activity "
                            "where datname = 'qrlogin' and application_name = 'qrlogin listener'")
    if named:
        found = [{"pid": int(row[0]), "client_port": int(row[1]), "query": row[2], "by": "application_name"} for row in named]
    else:
        first = {row[0]: row for row in await psql(ctx, LISTENER_SQL)}
        await asyncio.sleep(5.5)
        second = await psql(ctx, LISTENER_SQL)
        found = [{"pid": int(row[0]), "client_port": int(row[1]), "query": row[2], "by": "query samples"}
                 for row in second if row[0] in first and float(row[3]) > float(first[row[0]][3])]
    owners = instance_of_ports(ctx, int(Path(ctx.pg_dir, "port").read_text()))
    for listener in found:
        listener["instance"] = owners.get(listener["client_port"])
    return found


async def gap_logins(ctx: Context) -> list[dict]:
    """One PC per instance, waiting on a stream straight to it, already scanned through another."""
    prepared = []
    for i in range(3):
        client = ctx.client()
        phone = ctx.phones[30 + i]
        pc = client.device()
        reply = await client.create_login(ctx.instances[i], pc, f"gap-{i}")
        require(reply.status == 201, f"create: {reply}")
        login = Login.from_reply(reply, pc)
        waiter = PcWaiter(client, ctx.instances[i], login, deadline=now() + 60)
        task = asyncio.create_task(waiter.run())
        await race(waiter.opened.wait(), task, 10)
        scan = await phone.scan(ctx.instances[(i + 1) % 3], login.id)
        require(scan.status == 200, f"scan: {scan}")
        match = await race(waiter.scanned, task, 10)
        prepared.append({"i": i, "client": client, "phone": phone, "login": login, "waiter": waiter, "task": task,
                         "ticket": scan.body["ticket"], "match": match})
    return prepared


async def fault_listener(ctx: Context, report: dict):
    listeners_before: list[dict] = []

    async def inject(load: Load) -> dict:
        found = await find_listeners(ctx)
        require(len(found) == 3 and {l["instance"] for l in found} == {0, 1, 2},
                f"want one LISTEN connection per instance in pg_stat_activity, found {found}")
        listeners_before.extend(found)
        prepared = await gap_logins(ctx)
        try:
            killed_at_wall, load.fault_at = time.time(), now()
            pids = ",".join(str(l["pid"]) for l in found)
            rows = await psql(ctx, f"select pid, pg_terminate_backend(pid) from pg_stat_activity where pid in ({pids})")
            require(len(rows) == 3 and all(r[1] == "t" for r in rows), f"pg_terminate_backend: {rows}")
            load.injected_at = now()
            # Confirm at once, through a third instance, while the listeners are (re)connecting.
            answers = await asyncio.gather(*(p["phone"].confirm(ctx.instances[(p["i"] + 2) % 3], p["login"].id, p["ticket"], p["match"])
                                             for p in prepared))
            confirmed_at = now()
            require(all(a.status == 200 for a in answers), f"confirms right after the listeners died: {[str(a) for a in answers]}")
            waits = []
            for p in prepared:
                try:
                    await asyncio.wait_for(asyncio.shield(p["task"]), LISTENER_GAP_LIMIT + 5)
                except (asyncio.TimeoutError, WaitFailed) as error:
                    raise CheckFailed(f"the PC waiting at instance {p['i'] + 1} got no token after its listener died "
                                      f"and the request was confirmed ({type(error).__name__}; stream errors {p['waiter'].errors})")
                waits.append(p["waiter"].token_at - confirmed_at)
            require(max(waits) <= LISTENER_GAP_LIMIT,
                    f"PCs got their tokens {[round(w, 2) for w in waits]} s after the confirm (want ≤ {LISTENER_GAP_LIMIT} s)")
            require(all(p["waiter"].reconnects == 0 for p in prepared), "a PC's stream had to reconnect though no instance failed")
        finally:
            for p in prepared:
                await stop_task(p["task"])
        # New LISTEN connections, one per instance.
        relisten = []
        deadline = now() + 15
        while now() < deadline:
            relisten = await psql(ctx, "select pid, extract(epoch from backend_start) from pg_stat_activity "
                                       "where datname = 'qrlogin' and (query ilike 'LISTEN%' or application_name = 'qrlogin listener') "
                                       f"and backend_start > to_timestamp({killed_at_wall})")
            if len(relisten) >= 3:
                break
            await asyncio.sleep(0.2)
        require(len(relisten) == 3, f"want 3 new LISTEN connections after the terminate, found {relisten}")
        relisten_s = max(float(r[1]) for r in relisten) - killed_at_wall
        report_by = found[0]["by"]
        ok(f"fault LISTEN terminated: the 3 listener backends {[l['pid'] for l in found]} (one per instance) "
           f"terminated; PCs waiting at each instance got their tokens {[round(w, 2) for w in waits]} s after "
           f"confirms sent right after; new LISTEN connections within {relisten_s:.2f} s")
        return {"listener_pids": [l["pid"] for l in found], "listeners_found_by": report_by, "relisten_s": round(relisten_s, 2),
                "waiting_pc_token_after_confirm_s": round(max(waits), 2)}

    await under_load(ctx, report, "LISTEN connections terminated", inject, before=1.0)


# ---------------------------------------------------------------------------------------------

def print_table(report: dict):
    rows = report.get("faults", [])
    if not rows:
        return
    print("\nfaults under load (6 workers doing complete logins through nginx; times from the fault):")
    header = ["fault", "completed", "lost", "late", "recovery s", "errors from-until s", "slowest error s",
              "client errors (kind: count)"]
    lines = [header]
    for f in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in f["client_errors"].items()) or "none"
        window = "-" if f["errors_from_s"] is None else f"{f['errors_from_s']}..{f['errors_until_s']}"
        lines.append([f["fault"], str(f["logins_completed"]), str(f["lost_confirmed_logins"]),
                      str(f["collected_only_afterwards"]), str(f["recovery_s"]), window,
                      "-" if f["slowest_error_answer_s"] is None else str(f["slowest_error_answer_s"]), errors])
    widths = [max(len(line[c]) for line in lines) for c in range(len(header) - 1)]
    for line in lines:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--public", required=True)
    parser.add_argument("--instance", action="append", required=True)
    parser.add_argument("--pg-dir", required=True)
    parser.add_argument("--cluster-dir", required=True)
    parser.add_argument("--limits-dir", required=True)
    parser.add_argument("--limits-port", type=int, required=True)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--report")
    parser.add_argument("--only", help="comma-separated check names (for debugging)")
    args = parser.parse_args()
    if len(args.instance) != 3:
        parser.error("three --instance urls")

    session, stream_session = new_sessions()
    ctx = Context(args.public.rstrip("/"), [u.rstrip("/") for u in args.instance], args.pg_dir, args.cluster_dir,
                  args.limits_dir, args.limits_port, os.path.abspath(args.binary), args.work_dir, session, stream_session)
    report: dict = {"instances": 3, "load_workers": LOAD_WORKERS}
    checks = [
        ("cross-instance", check_cross_instance),
        ("races", check_races),
        ("replay", check_replay),
        ("rate-limits", check_rate_limits),
        ("readiness", check_readiness),
        ("kill", fault_kill),
        ("pg-fast", lambda c, r: fault_pg_restart(c, r, "fast")),
        ("pg-immediate", lambda c, r: fault_pg_restart(c, r, "immediate")),
        ("listener", fault_listener),
    ]
    if args.only:
        wanted = set(args.only.split(","))
        checks = [c for c in checks if c[0] in wanted]
    started = now()
    passed, failed = 0, 0
    try:
        await make_phones(ctx, 100)
        for name, check in checks:
            check_started = now()
            try:
                await check(ctx, report)
                passed += 1
            except (CheckFailed, AssertionError) as error:
                failed += 1
                print(f"FAILED: {name}: {error}", flush=True)
            except Exception as error:  # a crash of the test itself is a failure too, with its trace
                failed += 1
                import traceback
                traceback.print_exc()
                print(f"FAILED: {name}: {type(error).__name__}: {error}", flush=True)
            report.setdefault("check_seconds", {})[name] = round(now() - check_started, 1)
    finally:
        await session.close()
        await stream_session.close()
    report["total_seconds"] = round(now() - started, 1)
    print_table(report)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ncluster tests: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
