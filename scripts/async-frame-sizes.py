#!/usr/bin/env python3
"""Prints the async context (frame) size of every async function whose symbol matches a
pattern, read from the binary's async function pointers (symbols ending in `Tu`: a 32-bit
relative offset to the function, then the 32-bit size of its context).

Why: an async function's context is allocated on its task, and a task keeps the memory of its
deepest call until it ends; for a waiting event stream that is as long as the PC waits
(BENCHMARKS.md, "Why four targets are missed").

Usage: scripts/async-frame-sizes.py .build/release/qrlogin [REGEX]
Needs nm and readelf (binutils) and `swift demangle`.
"""
import re
import struct
import subprocess
import sys


def sections(binary):
    found = []
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 6 and parts[0].startswith("["):
            try:
                found.append((int(parts[3], 16), int(parts[4], 16), int(parts[5], 16)))
            except ValueError:
                pass
    return found


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    pattern = re.compile(sys.argv[2] if len(sys.argv) > 2 else "QRLogin")
    data = open(binary, "rb").read()
    secs = sections(binary)
    symbols = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.split("\n")
    rows = []
    for line in symbols:
        parts = line.split()
        if len(parts) != 3 or not parts[2].endswith("Tu") or not pattern.search(parts[2]):
            continue
        address = int(parts[0], 16)
        offset = next((o + address - a for a, o, s in secs if a and a <= address < a + s), None)
        if offset is None:
            continue
        _, size = struct.unpack("<iI", data[offset:offset + 8])
        rows.append((size, parts[2]))
    names = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(n for _, n in rows),
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for (size, _), name in sorted(zip(rows, names), reverse=True):
        print(f"{size:7d}  {name.replace('async function pointer to ', '')}")


if __name__ == "__main__":
    main()
