"""Independent cross-check of the QRCode encoder and renderers.

Random payloads over all modes, versions 1-40 and levels L/M/Q/H go through our encoder (the
qr-crosscheck-helper executable, one process for all cases). Each symbol must:
  * decode with zxing-cpp and with zbar to exactly the payload;
  * equal, module for module, Nayuki's qrcodegen for the same segments, version bounds, level,
    mask and boost (so with an automatic mask, Nayuki's choice of mask must be ours);
  * for text, use segments no longer than one byte segment.
Every tenth case is also rendered: our PNG and our SVG (rasterised by rsvg-convert) must decode
with zxing-cpp, and the terminal text must parse back to the matrix.

Usage: crosscheck.py HELPER [--cases N] [--seed S]
"""

import argparse
import ctypes
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile

import zxingcpp
from PIL import Image
from pyzbar import pyzbar as pz
from pyzbar import wrapper as zw
from qrcodegen import QrCode, QrSegment

LEVELS = {"L": QrCode.Ecc.LOW, "M": QrCode.Ecc.MEDIUM, "Q": QrCode.Ecc.QUARTILE, "H": QrCode.Ecc.HIGH}
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
ZBAR_CFG_BINARY = 4  # zbar.h: report bytes as they are, without charset conversion
QUIET = 4


def data_bits(ver, level):
    return QrCode._get_num_data_codewords(ver, LEVELS[level]) * 8


def kanji_chars(rng):
    """Assigned JIS X 0208 characters whose Shift_JIS code is in the QR kanji ranges."""
    chars = []
    for code in list(range(0x8140, 0x9FFD)) + list(range(0xE040, 0xEBC0)):
        lead, trail = code >> 8, code & 0xFF
        if trail < 0x40 or trail == 0x7F or trail > 0xFC:
            continue
        try:
            ch = bytes([lead, trail]).decode("shift_jis")
        except UnicodeDecodeError:
            continue
        if ch.encode("shift_jis") == bytes([lead, trail]):
            chars.append(bytes([lead, trail]))
    return chars


def bits_of(value, n):
    return [(value >> i) & 1 for i in range(n - 1, -1, -1)]


def header_bits(mode, ver):
    index = 0 if ver <= 9 else (1 if ver <= 26 else 2)
    return 4 + {"numeric": (10, 12, 14), "alphanumeric": (9, 11, 13), "byte": (8, 16, 16),
                "kanji": (8, 10, 12)}[mode][index]


def unit_bits(mode, count):
    if mode == "numeric":
        return count // 3 * 10 + (0, 4, 7)[count % 3]
    if mode == "alphanumeric":
        return count // 2 * 11 + (count % 2) * 6
    if mode == "kanji":
        return count * 13
    return count * 8


def max_units(mode, ver, level, overhead=0):
    room = data_bits(ver, level) - header_bits(mode, ver) - overhead
    n = 0
    step = max(1, room // 16)
    while step >= 1:
        while unit_bits(mode, n + step) <= room:
            n += step
        step //= 2
    return n


def make_case(rng, index, kanji):
    mode = ["numeric", "alphanumeric", "byte", "kanji", "eci", "text"][index % 6]
    level = "LMQH"[(index // 6) % 4]
    ver = rng.randint(1, 40)
    mask = rng.choice([-1, -1, rng.randint(0, 7)])
    boost = rng.choice([0, 1])
    eci = "-"
    fixed = rng.random() < 0.5  # fixed version, or the smallest version from 1
    unit_mode = "byte" if mode in ("eci", "text") else mode
    overhead = 0
    if mode == "eci":
        eci_value = rng.choice([26, 26, 3, 899, rng.randint(128, 16383), rng.randint(16384, 999999)])
        eci = str(eci_value)
        overhead = 4 + (8 if eci_value < 128 else (16 if eci_value < 16384 else 24))
    top = max(1, max_units(unit_mode, ver, level, overhead))
    low = 1 if (fixed or ver == 1) else min(top, max_units(unit_mode, ver - 1, level, overhead) + 1)
    count = rng.randint(low, top)
    if mode == "numeric":
        payload = "".join(rng.choice("0123456789") for _ in range(count)).encode()
    elif mode == "alphanumeric":
        payload = "".join(rng.choice(ALNUM) for _ in range(count)).encode()
    elif mode == "byte":
        payload = bytes(rng.randrange(256) for _ in range(count))
    elif mode == "kanji":
        payload = b"".join(rng.choice(kanji) for _ in range(count))
    elif mode == "eci":
        if eci == "26":
            text = "".join(rng.choice("aé€Z9 ") for _ in range(count))
            payload = text.encode("utf-8")[:count]
            payload = payload.decode("utf-8", "ignore").encode("utf-8") or b"a"
        elif eci == "3":
            payload = bytes(rng.randrange(32, 256) for _ in range(count))
        else:
            payload = bytes(rng.randrange(256) for _ in range(count))
    else:  # text: runs of digits, upper case and other characters, so modes mix
        parts = []
        while sum(len(p.encode()) for p in parts) < count:
            alphabet = rng.choice(["0123456789", ALNUM, "abcxyz-_/é€"])
            parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))))
        text = "".join(parts)
        while len(text.encode()) > count:
            text = text[:-1]
        payload = (text or "a").encode()
    minv, maxv = (ver, ver) if fixed else (1, 40)
    return dict(mode=mode, level=level, minv=minv, maxv=maxv, mask=mask, boost=boost,
                payload=payload, eci=eci)


def nayuki_segments(case, reported):
    mode, payload = case["mode"], case["payload"]
    if mode == "numeric":
        return [QrSegment.make_numeric(payload.decode())]
    if mode == "alphanumeric":
        return [QrSegment.make_alphanumeric(payload.decode())]
    if mode == "byte":
        return [QrSegment.make_bytes(payload)]
    if mode == "eci":
        return [QrSegment.make_eci(int(case["eci"])), QrSegment.make_bytes(payload)]
    if mode == "kanji":
        bits = []
        for i in range(0, len(payload), 2):
            code = payload[i] << 8 | payload[i + 1]
            code -= 0x8140 if code <= 0x9FFC else 0xC140
            bits += bits_of((code >> 8) * 0xC0 + (code & 0xFF), 13)
        return [QrSegment(QrSegment.Mode.KANJI, len(payload) // 2, bits)]
    # text: our automatic segments, rebuilt from their reported bits
    modes = {"numeric": QrSegment.Mode.NUMERIC, "alphanumeric": QrSegment.Mode.ALPHANUMERIC,
             "byte": QrSegment.Mode.BYTE}
    segs = []
    for mode_name, count, nbits, hexbits in reported:
        data = bytes.fromhex(hexbits)
        bits = [(data[i >> 3] >> (7 - (i & 7))) & 1 for i in range(nbits)]
        segs.append(QrSegment(modes[mode_name], count, bits))
    return segs


def image_of(rows, scale=4):
    n = len(rows)
    side = n + 2 * QUIET
    pixels = bytearray([255]) * (side * side)
    for y, row in enumerate(rows):
        base = (y + QUIET) * side + QUIET
        for x, dark in enumerate(row):
            if dark:
                pixels[base + x] = 0
    img = Image.frombytes("L", (side, side), bytes(pixels))
    return img.resize((side * scale, side * scale), Image.NEAREST)


def zxing_bytes(img):
    return [b.bytes for b in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]


def zbar_bytes(img):
    pixels, width, height = pz._pixel_data(img.convert("L"))
    with pz._image_scanner() as scanner:
        zw.zbar_image_scanner_set_config(scanner, zw.ZBarSymbol.QRCODE, ZBAR_CFG_BINARY, 1)
        with pz._image() as image:
            zw.zbar_image_set_format(image, pz._FOURCC["L800"])
            zw.zbar_image_set_size(image, width, height)
            zw.zbar_image_set_data(image, ctypes.cast(pixels, ctypes.c_void_p), len(pixels), None)
            zw.zbar_scan_image(scanner, image)
            return [ctypes.string_at(zw.zbar_symbol_get_data(s), zw.zbar_symbol_get_data_length(s))
                    for s in pz._symbols_for_image(image)]


def parse_terminal(text):
    rows = []
    for line in text.split("\n"):
        if not line:
            continue
        top, bottom, skipping = [], [], False
        for ch in line:
            if ch == "\x1b":
                skipping = True
                continue
            if skipping:
                skipping = ch != "m"
                continue
            t, b = {"\u2588": (1, 1), "\u2580": (1, 0), "\u2584": (0, 1)}.get(ch, (0, 0))
            top.append(not t)  # the default output draws light modules
            bottom.append(not b)
        rows += [top, bottom]
    return rows


def check(case, line, render_prefix):
    problems = []
    fields = line.split(" ")
    if fields[0] != "ok":
        return ["encoder: " + line]
    version, level, mask = int(fields[1]), fields[2], int(fields[3])
    reported = [(s.split(":")[0], int(s.split(":")[1]), int(s.split(":")[2]), s.split(":")[3])
                for s in fields[4].split(",")]
    size = version * 4 + 17
    flat = fields[5]
    rows = [[flat[y * size + x] == "1" for x in range(size)] for y in range(size)]

    segs = nayuki_segments(case, reported)
    if case["mode"] == "text":
        single = header_bits("byte", version) + 8 * len(case["payload"])
        if QrSegment.get_total_bits(segs, version) > single:
            problems.append("text segments longer than one byte segment")
        minv = maxv = version
    else:
        minv, maxv = case["minv"], case["maxv"]
    ref = QrCode.encode_segments(segs, LEVELS[case["level"]], minv, maxv, case["mask"], bool(case["boost"]))
    if (ref.get_version(), "LMQH"[ref.get_error_correction_level().ordinal], ref.get_mask()) != (version, level, mask):
        problems.append("nayuki chose version %d level %s mask %d, we %d %s %d" % (
            ref.get_version(), "LMQH"[ref.get_error_correction_level().ordinal], ref.get_mask(), version, level, mask))
    elif any(ref.get_module(x, y) != rows[y][x] for y in range(size) for x in range(size)):
        problems.append("modules differ from nayuki")

    expected = case["payload"]
    img = image_of(rows)
    got = zxing_bytes(img)
    if got != [expected]:
        problems.append("zxing-cpp read %r" % (got,))
    zbar_expected = expected.decode("latin-1").encode("utf-8") if case["eci"] == "3" else expected
    got = zbar_bytes(img)
    if got != [zbar_expected]:
        problems.append("zbar read %r" % ([g[:40] for g in got],))

    if render_prefix:
        got = zxing_bytes(Image.open(render_prefix + ".png"))
        if got != [expected]:
            problems.append("our PNG: zxing-cpp read %r" % (got,))
        subprocess.run(["rsvg-convert", "-w", str((size + 8) * 4), "-o", render_prefix + ".svg.png",
                        render_prefix + ".svg"], check=True)
        got = zxing_bytes(Image.open(render_prefix + ".svg.png"))
        if got != [expected]:
            problems.append("our SVG via rsvg-convert: zxing-cpp read %r" % (got,))
        with open(render_prefix + ".term", encoding="utf-8") as f:
            parsed = parse_terminal(f.read())
        padded = [[False] * (size + 8) for _ in range(4)]
        padded = padded + [[False] * 4 + row + [False] * 4 for row in rows] + padded
        if [row for row in parsed[:size + 8]] != padded:
            problems.append("terminal text does not parse back to the matrix")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("helper")
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kanji = kanji_chars(rng)
    cases = [make_case(rng, i, kanji) for i in range(args.cases)]
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for i, c in enumerate(cases):
            prefix = os.path.join(tmp, "case%d" % i) if i % 10 == 0 else "-"
            c["render"] = None if prefix == "-" else prefix
            lines.append("%s %s %d %d %d %d %s %s %s" % (
                c["mode"], c["level"], c["minv"], c["maxv"], c["mask"], c["boost"],
                c["payload"].hex() or "-", c["eci"], prefix))
        out = subprocess.run([args.helper], input="\n".join(lines) + "\n", capture_output=True,
                             text=True, check=True).stdout.splitlines()
        if len(out) != len(cases):
            print("helper returned %d lines for %d cases" % (len(out), len(cases)))
            return 1
        passed = failed = 0
        versions, levels, modes, auto_masks = set(), set(), set(), 0
        # Nayuki's pure-Python reference dominates the time: spread the checks over all cores.
        with multiprocessing.Pool(os.cpu_count() or 1) as pool:
            results = pool.starmap(check, [(c, line, c["render"]) for c, line in zip(cases, out)], chunksize=4)
        for i, (case, line, problems) in enumerate(zip(cases, out, results)):
            if line.startswith("ok "):
                versions.add(int(line.split(" ")[1]))
                levels.add(line.split(" ")[2])
            if case["mode"] == "eci":
                value = int(case["eci"])
                modes.add("eci:%d-byte" % (1 if value < 128 else (2 if value < 16384 else 3)))
            else:
                modes.add(case["mode"])
            auto_masks += case["mask"] == -1
            if problems:
                failed += 1
                print("FAIL case %d (%s %s v%d-%d mask %d boost %d, %d bytes): %s" % (
                    i, case["mode"], case["level"], case["minv"], case["maxv"], case["mask"],
                    case["boost"], len(case["payload"]), "; ".join(problems)))
            else:
                passed += 1
    missing = set(range(1, 41)) - versions
    print("versions covered: %d of 40%s; levels: %s; modes: %s; automatic masks: %d" % (
        40 - len(missing), (" (missing %s)" % sorted(missing)) if missing else "",
        "".join(sorted(levels)), ", ".join(sorted(modes)), auto_masks))
    if missing or levels != set("LMQH"):
        failed += 1
        print("FAIL coverage")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
