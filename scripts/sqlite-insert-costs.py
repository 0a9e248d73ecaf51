#!/usr/bin/env python3
"""CPU per login-request insert in SQLite, for two questions BENCHMARKS.md asks of `create`.

1. How much would grouped commits save? Inserts are committed one per transaction (as the
   server does), or in groups of 2, 4 and 8 per transaction.
2. Would a WITHOUT ROWID table be cheaper? The same inserts, and reads by id, with the table as
   QRLogin's schema has it (a rowid table with a primary-key index and the expiry index) and
   as a WITHOUT ROWID table.

Python's own sqlite3 module, WAL mode, synchronous=NORMAL, the columns of `login_requests`
with values of realistic sizes. The figures include Python's overhead per statement (a few
microseconds), the same in every variant, so compare them with one another, not with the
server's. Usage: python3 scripts/sqlite-insert-costs.py [inserts, default 20000]
"""
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time

COLUMNS = """poll_secret_hash TEXT NOT NULL, pc_key_thumbprint TEXT NOT NULL, pc_public_key_jwk TEXT NOT NULL,
 requester_type TEXT NOT NULL, requester_name TEXT NOT NULL, requester_ip TEXT NOT NULL,
 requester_user_agent TEXT NOT NULL, state TEXT NOT NULL, account_id TEXT, scanner_display_name TEXT,
 scanner_device_id TEXT, ticket_hash TEXT, ticket_expires_at REAL, match INTEGER, match_choices TEXT NOT NULL,
 deny_reason TEXT, token_id TEXT, created_at REAL NOT NULL, expires_at REAL NOT NULL, version INTEGER NOT NULL"""
JWK = '{"crv":"P-256","kty":"EC","x":"' + "x" * 43 + '","y":"' + "y" * 43 + '"}'
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def open_database(directory, without_rowid=False):
    path = os.path.join(directory, f"insert-costs-{secrets.token_hex(4)}.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    suffix = ", WITHOUT ROWID" if without_rowid else ""
    db.execute(f"CREATE TABLE login_requests (id TEXT PRIMARY KEY, {COLUMNS}) STRICT{suffix}")
    db.execute("CREATE INDEX login_requests_expires_at ON login_requests (expires_at)")
    return db


def rows(count):
    now = time.time()
    return [
        (secrets.token_urlsafe(16), secrets.token_urlsafe(32), secrets.token_urlsafe(32), JWK, "browser",
         "Firefox on Linux", "127.0.0.1", AGENT, "pending", None, None, None, None, None, None, "", None, None,
         now + i * 0.001, now + 120 + i * 0.001, 1)
        for i in range(count)
    ]


INSERT = "INSERT INTO login_requests VALUES (" + ", ".join("?" * 21) + ")"


def insert_cost(db, batch, group):
    start = time.process_time()
    for first in range(0, len(batch), group):
        if group > 1:
            db.execute("BEGIN IMMEDIATE")
        for row in batch[first:first + group]:
            db.execute(INSERT, row)
        if group > 1:
            db.execute("COMMIT")
    return (time.process_time() - start) / len(batch) * 1e6


def read_cost(db, batch):
    ids = [row[0] for row in batch]
    random.shuffle(ids)
    start = time.process_time()
    for request_id in ids:
        db.execute("SELECT * FROM login_requests WHERE id = ?", (request_id,)).fetchone()
    return (time.process_time() - start) / len(ids) * 1e6


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as directory:
        print(f"{count} inserts each; CPU microseconds per insert (Python's overhead included)")
        for group in (1, 2, 4, 8):
            costs = [insert_cost(open_database(directory), rows(count), group) for _ in range(2)]
            print(f"  commit groups of {group}: {min(costs):.1f} us per insert (best of 2)")
        for without_rowid in (False, True):
            inserts, reads = [], []
            for _ in range(2):
                db, batch = open_database(directory, without_rowid), rows(count)
                inserts.append(insert_cost(db, batch, 1))
                reads.append(read_cost(db, batch))
            kind = "WITHOUT ROWID table" if without_rowid else "rowid table (the schema's)"
            print(f"  {kind}: insert {min(inserts):.1f} us, read by id {min(reads):.1f} us (best of 2)")


if __name__ == "__main__":
    main()
