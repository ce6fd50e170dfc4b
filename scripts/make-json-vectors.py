#!/usr/bin/env python3
"""Writes tests/data/python_json.json: what Python's json.dumps(value) writes,
byte for byte, for values a Rust test can rebuild exactly.

    python3 scripts/make-json-vectors.py            # rewrites the file
    python3 scripts/make-json-vectors.py --check    # exit 1 if it would change

The file holds, for JsonStyle::Python (tests/python_json.rs and the unit
tests of src/wire/json/):

  cases   each with "about" (what it covers), "value" (a typed description,
          below), "dumps" (json.dumps(value) with its default arguments:
          ensure_ascii=True, separators ", " and ": ", allow_nan=True; ASCII,
          so a JSON string holds it exactly) and, where json.loads(dumps)
          is not the value itself (keys that are not strings), "loads".
  floats  "bits repr" strings: many doubles (every class, random bit patterns,
          both sides of the 1e16 and 1e-4 layout bounds) and json.dumps of
          each, which is repr(float).

A typed description is one of {"null": null}, {"bool": b}, {"int": "digits"}
(any width, as text), {"float": "hex of the IEEE 754 bits"} (so every double,
NaN's sign and -0.0 included, survives the trip), {"str": s}, {"list": [...]}
and {"dict": [[key, value], ...]} (keys described the same way, in order).

Deterministic: the random doubles come from a fixed seed, so running it again
gives the same cases and floats (--check compares those). Made with the real
json module; the Python version that made it is recorded in the file.
"""
import json
import math
import os
import random
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "python_json.json")


def bits(x):
    return struct.pack(">d", x).hex()


def describe(v):
    if v is None:
        return {"null": None}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"float": bits(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (list, tuple)):
        return {"list": [describe(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[describe(k), describe(x)] for k, x in v.items()]}
    raise TypeError(type(v))


NAN, INF = float("nan"), float("inf")

CASES = [
    # Every float class.
    ("float: integer-valued", 1.0),
    ("float: negative integer-valued", -3.0),
    ("float: 2**53", 2.0**53),
    ("float: 1e15, the last positional power of ten", 1e15),
    ("float: 1e16, the first in exponent form", 1e16),
    ("float: 123456789012345678.0", 123456789012345678.0),
    ("float: 0.1", 0.1),
    ("float: 0.1 + 0.2", 0.1 + 0.2),
    ("float: 1/3", 1 / 3),
    ("float: 0.0001, the last positional small one", 0.0001),
    ("float: 0.00001, the first small one in exponent form", 0.00001),
    ("float: tiny 2.5e-08", 2.5e-08),
    ("float: huge 1.7976931348623157e+308 (max)", 1.7976931348623157e308),
    ("float: most negative", -1.7976931348623157e308),
    ("float: smallest normal", 2.2250738585072014e-308),
    ("float: largest subnormal", 2.225073858507201e-308),
    ("float: smallest subnormal 5e-324", 5e-324),
    ("float: zero", 0.0),
    ("float: negative zero", -0.0),
    ("float: NaN", NAN),
    ("float: Infinity", INF),
    ("float: -Infinity", -INF),
    ("float: pi", math.pi),
    ("float: 1e22", 1e22),
    ("float: 1e23 (not exact)", 1e23),
    # Integers of every width serde gives.
    ("int: zero", 0),
    ("int: -1", -1),
    ("int: i64::MAX", 2**63 - 1),
    ("int: i64::MIN", -(2**63)),
    ("int: u64::MAX", 2**64 - 1),
    ("int: u64::MAX + 1 (u128)", 2**64),
    ("int: i64::MIN - 1 (i128)", -(2**63) - 1),
    ("int: i128::MAX", 2**127 - 1),
    ("int: i128::MIN", -(2**127)),
    ("int: u128::MAX", 2**128 - 1),
    # Other scalars.
    ("true", True),
    ("false", False),
    ("null", None),
    # Text.
    ("str: empty", ""),
    ("str: plain ASCII with / and ~", "plain / text ~"),
    ("str: quote and backslash", 'say "hi" \\ bye'),
    ("str: the short escapes", "\n\r\t\b\f"),
    ("str: other control characters", "\x00\x01\x1b\x1f"),
    ("str: DEL 0x7f", "\x7f"),
    ("str: latin-1", "café"),
    ("str: C1 control U+0080 and U+00FF", "\x80\xff"),
    ("str: BMP, line and paragraph separators, BOM, U+FFFF", "日本 \u2028\u2029\ufeff\uffff"),
    ("str: astral (surrogate pairs)", "𝄞 😀"),
    ("str: the last code point", "\U0010ffff"),
    ("str: everything at once", "a\"\\\n\x00\x7fé€😀z"),
    # Containers.
    ("empty list", []),
    ("empty dict", {}),
    ("nested empties", [[], {}, [[]], {"a": {}}]),
    ("list of mixed scalars", [1, 1.0, "1", True, None, -0.0, NAN]),
    ("dict keeps its order, not sorted", {"z": 1, "a": 2, "m": 3}),
    ("dict with escaped and non-ASCII keys", {"é": 1, "\n": 2, "😀": 3, "": 4}),
    ("deep nesting", [[[[[[[[[[{"deep": [1.5]}]]]]]]]]]]),
    (
        "telemetry with non-finite values",
        {"sensor": "M1 temp", "values": [21.5, NAN, INF, -INF], "ok": False, "note": None},
    ),
    (
        "a command as a struct would write it",
        {"id": 1, "cmd": "move", "args": [1.5, 2.5e-08, -3.0]},
    ),
    # Keys that are not strings: json.dumps writes their text.
    ("int keys", {1: "a", -2: "b"}),
    ("float keys", {1.5: 1, 1e16: 2, -0.0: 3}),
    ("bool and None keys", {True: 1, None: 2}),
    ("non-finite float keys", {NAN: 1, INF: 2, -INF: 3}),
]


def floats():
    rng = random.Random(20261207)
    out = []
    seen = set()

    def add(x):
        b = bits(x)
        if b not in seen:
            seen.add(b)
            out.append(f"{b} {json.dumps(x)}")

    for e in range(-330, 310):
        for m in (1.0, 9.999999999999998):
            try:
                add(float(f"{m}e{e}"))
            except OverflowError:
                pass
    for _ in range(1500):  # any finite double
        x = struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0]
        if math.isfinite(x):
            add(x)
    for _ in range(800):  # short decimals around the layout bounds
        add(round(rng.uniform(-1, 1) * 10 ** rng.randint(-8, 20), rng.randint(0, 17)))
    for _ in range(200):  # integers as floats
        add(float(rng.randint(-(2**60), 2**60)))
    for _ in range(1500):  # short exact values, where two shortest decimals can tie
        add(float(rng.randint(2**52, 2**53)) * 2.0 ** rng.randint(-8, 30))
    for x in (0.0, -0.0, NAN, INF, -INF, 5e-324, -5e-324):
        add(x)
    return out


def main():
    cases = []
    for about, value in CASES:
        dumps = json.dumps(value)
        assert dumps.isascii(), about
        case = {"about": about, "value": describe(value), "dumps": dumps}
        loads = describe(json.loads(dumps))
        if json.dumps(loads) != json.dumps(case["value"]):
            case["loads"] = loads
        cases.append(case)
    doc = {
        "about": "json.dumps(value) with its default arguments; see scripts/make-json-vectors.py",
        "python": sys.version.split()[0],
        "cases": cases,
        "floats": floats(),
    }
    text = json.dumps(doc, indent=1, ensure_ascii=True) + "\n"
    if "--check" in sys.argv:
        with open(OUT) as f:
            old = json.load(f)
        same = all(old.get(k) == doc[k] for k in ("cases", "floats"))
        print("python_json.json is " + ("up to date" if same else "out of date"))
        sys.exit(0 if same else 1)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}: {len(cases)} cases, {len(doc['floats'])} floats")


if __name__ == "__main__":
    main()
