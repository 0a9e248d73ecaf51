#!/usr/bin/env python3
"""The soak run's traffic and its judge (scripts/soak.sh starts the server and this).

Mixed traffic for --minutes against one `qrlogin serve`, the way a login service lives: phones
signed in once, a pool of PCs (each keeps its key, as a real browser or terminal does) that
log in over and over, and every way a login request ends:
  - complete logins: create, the PC waits on an event stream, scan, confirm, the PC's token
    checked on /api/v1/me; later the PC logs out (its token revoked) or the phone removes it
    (remote logout);
  - denials: scan and deny;
  - cancels: the PC cancels while waiting;
  - expiries: nobody scans; half the PCs wait for the end on a long poll, half go away.
Every minute it prints the server's RSS, its open file descriptors, the database's size and
the rows of each table that grows with traffic. At the end it judges the minutes after the
warm-up: RSS may grow less than 5%, descriptors must stay flat, and so must the rows (the
cleanup deletes what ended: the server runs with a short --retention), judged by the trend of
three-minute means, since the load itself varies from minute to minute.

With --metrics-url (the server's /metrics) the metrics are soaked too: every minute it prints
the PCs waiting and the login requests created and ended by the server's own count, and at the
end, once the traffic has stopped and the last requests have expired, it checks that no PC is
counted as waiting, that as many login requests were counted as ended as were created (a request
counted twice, or never, shows as a difference unless another error cancels it), and that the
number of series did not grow with the traffic after the warm-up (no unbounded label).
"""
import argparse
import asyncio
import os
import random
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster-tests"))
from qrclient import Client, Login, PcWaiter, WaitFailed, new_sessions  # noqa: E402

TABLES = ["login_requests", "tokens", "devices", "dpop_replays", "one_time_codes"]
PASSWORD = "correct horse battery"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def parse_metrics(text: str) -> dict:
    """Prometheus text exposition: each series (name with its labels) and its value."""
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


def total(series: dict, name: str) -> float:
    """The sum of every series of metric `name`, whatever its labels."""
    return sum(v for k, v in series.items() if k == name or k.startswith(name + "{"))


async def scrape(session, url: str) -> dict:
    async with session.get(url) as response:
        response.raise_for_status()
        return parse_metrics(await response.text())


def store(database: str) -> dict:
    sizes = sum(os.path.getsize(database + suffix) for suffix in ("", "-wal") if os.path.exists(database + suffix))
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    finally:
        connection.close()
    return {"bytes": sizes, **rows}


class Soak:
    def __init__(self, args, client: Client):
        self.args, self.client, self.base = args, client, args.url
        self.counts = Counter()
        self.errors = Counter()
        self.stopping = False

    async def pc_login(self, pc, phone) -> tuple[Login, dict] | None:
        """A complete login of `pc` approved by `phone`; returns the login and the PC's token."""
        reply = await self.client.create_login(self.base, pc, "soak pc")
        if reply.status != 201:
            self.errors[f"create {reply.kind()}"] += 1
            return None
        login = Login.from_reply(reply, pc)
        waiter = PcWaiter(self.client, self.base, login, time.monotonic() + 30)
        task = asyncio.create_task(waiter.run())
        try:
            await asyncio.wait_for(waiter.opened.wait(), 10)
            scan = await phone.scan(self.base, login.id)
            if scan.status != 200:
                self.errors[f"scan {scan.kind()}"] += 1
                return None
            match = await asyncio.wait_for(waiter.scanned, 10)
            answer = await phone.confirm(self.base, login.id, scan.body["ticket"], match)
            if not answer.ok:
                self.errors[f"confirm {answer.kind()}"] += 1
                return None
            token = await asyncio.wait_for(task, 15)
            me = await self.client.me(self.base, pc, token["accessToken"])
            if me.status != 200:
                self.errors[f"me {me.kind()}"] += 1
                return None
            self.counts["logins"] += 1
            return login, token
        except (asyncio.TimeoutError, WaitFailed) as error:
            self.errors[f"login {type(error).__name__}"] += 1
            return None
        finally:
            if not task.done():
                task.cancel()

    async def worker(self, number: int, phone, pcs):
        rng = random.Random(number)
        while not self.stopping:
            pc = rng.choice(pcs)
            action = rng.random()
            try:
                if action < 0.55:
                    done = await self.pc_login(pc, phone)
                    if done:
                        _, token = done
                        await asyncio.sleep(rng.uniform(0, 1))
                        if rng.random() < 0.5:
                            reply = await self.client.call("POST", self.base, "/api/v1/auth/logout", device=pc, token=token["accessToken"])
                            self.counts["logouts" if reply.status == 204 else f"logout {reply.kind()}"] += 1
                        else:
                            reply = await self.client.call("DELETE", self.base, f"/api/v1/devices/{token['deviceId']}",
                                                           device=phone.device, token=phone.token)
                            self.counts["remote logouts" if reply.ok else f"remote logout {reply.kind()}"] += 1
                elif action < 0.65:
                    reply = await self.client.create_login(self.base, pc, "soak pc")
                    login = Login.from_reply(reply, pc)
                    scan = await phone.scan(self.base, login.id)
                    reply = await self.client.call("POST", self.base, f"/api/v1/qr/{login.id}/deny", device=phone.device,
                                                   token=phone.token, body={"ticket": scan.body["ticket"]})
                    self.counts["denials" if reply.ok else f"deny {reply.kind()}"] += 1
                elif action < 0.8:
                    reply = await self.client.create_login(self.base, pc, "soak pc")
                    login = Login.from_reply(reply, pc)
                    poll = asyncio.create_task(self.client.read(self.base, login, "?wait=5&state=pending", timeout=15))
                    await asyncio.sleep(rng.uniform(0, 0.5))
                    reply = await self.client.call("DELETE", self.base, f"/api/v1/qr/{login.id}", device=pc,
                                                   token=login.poll_secret, scheme="Bearer")
                    answer = await poll
                    self.counts["cancels" if reply.ok and answer.status in (200, 409) else f"cancel {reply.kind()}/{answer.kind()}"] += 1
                else:
                    reply = await self.client.create_login(self.base, pc, "soak pc")
                    login = Login.from_reply(reply, pc)
                    if rng.random() < 0.5:
                        # Waits on long polls until the request has expired (the request TTL).
                        state = "pending"
                        while state == "pending" and not self.stopping:
                            answer = await self.client.read(self.base, login, "?wait=25&state=pending", timeout=40)
                            state = (answer.body or {}).get("state") if answer.status == 200 else answer.kind()
                        self.counts["expiries waited for" if state in ("expired", "410 expired") else f"expiry wait {state}"] += 1
                    else:
                        self.counts["expiries abandoned"] += 1
                        await asyncio.sleep(rng.uniform(0.5, 2))
            except Exception as error:  # noqa: BLE001 - a soak counts every kind of failure and goes on
                self.errors[f"{type(error).__name__}: {str(error)[:80]}"] += 1
                await asyncio.sleep(0.5)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3, help="minutes before the judged part")
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--metrics-url", help="the server's /metrics, to soak the metrics too")
    args = parser.parse_args()

    session, streams = new_sessions()
    client = Client(args.url, session, streams, "127.0.0.1")
    phones = [await client.register_phone(args.url, f"soak{n}x{os.getpid()}", PASSWORD) for n in range(args.workers)]
    # Each account has PCs of its own (a PC is someone's), which sign in to it again and again.
    pcs = [[client.device() for _ in range(4)] for _ in range(args.workers)]
    soak = Soak(args, client)
    workers = [asyncio.create_task(soak.worker(n, phones[n], pcs[n])) for n in range(args.workers)]

    samples = []
    started = time.monotonic()
    print(f"soak: {args.minutes:g} minutes of mixed traffic against {args.url} (pid {args.pid}), {args.workers} workers, "
          f"{sum(map(len, pcs))} PCs; warm-up {args.warmup:g} minutes", flush=True)
    print(f"{'min':>4} {'RSS MB':>8} {'fds':>5} {'store MB':>9} " + " ".join(f"{t:>14}" for t in TABLES) + "  done since last", flush=True)
    last = Counter()
    for minute in range(1, int(args.minutes) + 1):
        await asyncio.sleep(max(0, started + minute * 60 - time.monotonic()))
        # The database is read on a thread: a read that waits on the server's lock must not
        # stall the traffic.
        sample = {"minute": minute, "rss": rss_kb(args.pid), "fds": fds(args.pid), **(await asyncio.to_thread(store, args.database))}
        delta = soak.counts - last
        last = Counter(soak.counts)
        samples.append(sample)
        print(f"{minute:>4} {sample['rss'] / 1024:>8.1f} {sample['fds']:>5} {sample['bytes'] / 1e6:>9.1f} "
              + " ".join(f"{sample[t]:>14}" for t in TABLES) + "  " + ", ".join(f"{k} {v}" for k, v in sorted(delta.items())), flush=True)
        if args.metrics_url:
            series = await scrape(session, args.metrics_url)
            sample["series"] = len(series)
            print(f"     metrics: {len(series)} series; PCs waiting {total(series, 'qrlogin_waiting_pcs'):.0f}; login requests "
                  f"created {total(series, 'qrlogin_login_requests_created_total'):.0f}, "
                  f"ended {total(series, 'qrlogin_login_requests_ended_total'):.0f}", flush=True)
    soak.stopping = True
    await asyncio.wait(workers, timeout=60)
    metrics_problems = await settled_metrics(session, args) if args.metrics_url else []
    await session.close()
    await streams.close()

    print(f"\ntraffic: {dict(sorted(soak.counts.items()))}")
    unexpected = {k: v for k, v in soak.counts.items() if k not in ("logins", "logouts", "remote logouts", "denials", "cancels",
                                                                    "expiries waited for", "expiries abandoned")}
    print(f"errors: {dict(soak.errors.most_common()) or 'none'}; unexpected outcomes: {unexpected or 'none'}")
    judged = [s for s in samples if s["minute"] > args.warmup]
    if len(judged) < 2:
        print("FAILED: too short to judge (need two samples after the warm-up)")
        return 1
    problems = []
    first, end = judged[0], judged[-1]
    growth = (end["rss"] - first["rss"]) / first["rss"]
    print(f"RSS after the warm-up: {first['rss'] / 1024:.1f} MB at minute {first['minute']}, {end['rss'] / 1024:.1f} MB at minute "
          f"{end['minute']}: {growth * 100:+.1f}% (limit +5%); peak {max(s['rss'] for s in judged) / 1024:.1f} MB")
    if growth >= 0.05:
        problems.append(f"RSS grew {growth * 100:.1f}%")
    fd_values = [s["fds"] for s in judged]
    print(f"file descriptors after the warm-up: {min(fd_values)}..{max(fd_values)}")
    if max(fd_values) - min(fd_values) > max(10, 0.1 * min(fd_values)):
        problems.append(f"descriptors not flat: {fd_values}")
    # Flat rows: the tables follow the load, which comes and goes by a fifth from minute to
    # minute, so a trend is judged, not a sample: the mean of the last three judged minutes may
    # exceed that of the first three by at most 20% (and 20 rows). Without the cleanup the
    # login requests alone would grow by some 300 rows a minute.
    width = min(3, len(judged) // 2) or 1
    for table in TABLES:
        values = [s[table] for s in judged]
        early = sum(values[:width]) / width
        late = sum(values[-width:]) / width
        limit = early * 1.2 + 20
        print(f"rows of {table} after the warm-up: {values} (mean of the first {width} {early:.0f}, "
              f"of the last {width} {late:.0f}; limit {limit:.0f})")
        if late > limit:
            problems.append(f"{table} rows grew: {values}")
    # Every outcome that is not one of these is a failure a client saw (a logout, deny, cancel or
    # expiry wait that answered otherwise is counted under its own key).
    successes = {"logins", "logouts", "remote logouts", "denials", "cancels", "expiries waited for", "expiries abandoned"}
    failed = Counter({k: v for k, v in soak.counts.items() if k not in successes}) + soak.errors
    done = sum(v for k, v in soak.counts.items() if k in successes)
    if sum(failed.values()) > 0.01 * max(1, done):
        problems.append(f"{sum(failed.values())} failures in {done} actions: {dict(failed.most_common(5))}")
    if args.metrics_url:
        counts = [s["series"] for s in judged]
        print(f"metrics series after the warm-up: {counts}")
        # New label values may still appear (a status or refusal reason seen for the first
        # time), but not in proportion to the traffic.
        if counts[-1] > counts[0] + 20:
            problems.append(f"the metrics' series grew with the traffic: {counts}")
        problems += metrics_problems
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print("ok: RSS, descriptors and the store's rows stayed flat after the warm-up")
    return 0


async def settled_metrics(session, args) -> list[str]:
    """Once the traffic has stopped: no PC counted as waiting, and as many login requests
    counted as ended as created. The last requests end by expiring (the server's expiry pass
    stores and counts them), so this waits up to two minutes for the counts to meet."""
    deadline = time.monotonic() + 120
    while True:
        series = await scrape(session, args.metrics_url)
        waiting = total(series, "qrlogin_waiting_pcs")
        created = total(series, "qrlogin_login_requests_created_total")
        ended = total(series, "qrlogin_login_requests_ended_total")
        if (waiting == 0 and created == ended) or time.monotonic() > deadline:
            break
        await asyncio.sleep(5)
    print(f"metrics once the traffic stopped: PCs waiting {waiting:.0f}; login requests created {created:.0f}, ended {ended:.0f}")
    problems = []
    if waiting != 0:
        problems.append(f"{waiting:.0f} PCs still counted as waiting with none connected")
    if created != ended:
        problems.append(f"{created:.0f} login requests created but {ended:.0f} counted as ended")
    return problems


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
