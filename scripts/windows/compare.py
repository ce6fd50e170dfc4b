#!/usr/bin/env python3
"""Compares the tests that ran under Wine with those that run on Linux.

Usage: compare.py NATIVE_BUILD_JSON WINE_LOG_DIR

NATIVE_BUILD_JSON is `cargo test --no-run --message-format=json` for the
host; WINE_LOG_DIR holds one NAME.log per test binary as scripts/test-windows
ran it under Wine. For every binary it lists the host's tests (`--list`,
less `--list --ignored`), and prints how many ran on each side and which
ran on Linux but not under Wine: ignored there (with the reason the test
gives) or not compiled there (a `cfg`). Tests that passed under Wine only
by skipping themselves (a printed "SKIPPED name: reason") are listed too,
and the tests that run under Wine only. Exits 0: it reports; the
exceptions are documented, not failures.
"""

import json
import os
import re
import subprocess
import sys


def host_binaries(build_json):
    seen = {}
    for line in open(build_json):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        exe = msg.get("executable")
        if exe and msg.get("profile", {}).get("test"):
            name = os.path.basename(exe).rsplit("-", 1)[0]
            seen.setdefault(name, exe)
    return seen


def listed(exe, *extra):
    out = subprocess.run(
        [exe, "--list", *extra], capture_output=True, text=True, check=False
    ).stdout
    return {l[: -len(": test")] for l in out.splitlines() if l.endswith(": test")}


def wine_outcomes(log):
    """From a libtest log: name -> 'ok' | 'FAILED' | 'ignored[, reason]',
    and name -> reason for the tests that printed a skip."""
    outcomes = {}
    if not os.path.exists(log):
        return outcomes, {}
    text = open(log, errors="replace").read().replace("\r", "")
    # A test's stderr and libtest's stdout share the log and can share a
    # line, either way round: "test x ... SKIPPED x: why" + "ok" on the
    # next line, or "SKIPPED x: why" followed by "test y ... ok". The
    # skip messages are taken out first (up to the end of their line or
    # the next libtest line), so that what is left reads as libtest wrote it.
    skip = re.compile(r"SKIPPED (\S+): (.*?)(?:\n|(?=test \S+ \.\.\. )|$)")
    skipped = {m.group(1): m.group(2).strip() for m in skip.finditer(text)}
    text = skip.sub("", text)
    for m in re.finditer(r"test (\S+) \.\.\. (ok|FAILED|ignored[^\n]*)", text):
        outcomes[m.group(1)] = m.group(2)
    return outcomes, skipped


def main():
    build_json, log_dir = sys.argv[1], sys.argv[2]
    rows, missing, skipped_all, extra = [], [], [], []
    for name, exe in sorted(host_binaries(build_json).items()):
        linux = listed(exe) - listed(exe, "--ignored")
        outcomes, skipped = wine_outcomes(os.path.join(log_dir, name + ".log"))
        ran = {t for t, o in outcomes.items() if o in ("ok", "FAILED")}
        for t in sorted(linux - ran):
            why = outcomes.get(t)
            why = why if why else "not compiled for Windows (cfg)"
            missing.append(f"{name}::{t}: {why}")
        for t, why in sorted(skipped.items()):
            skipped_all.append(f"{name}::{t.split('::')[-1]}: {why}")
        extra += [f"{name}::{t}" for t in sorted(ran - linux)]
        rows.append((name, len(linux), len(ran & linux)))
    print("== tests run: Linux (this host) and Windows (Wine), per binary")
    print(f"{'binary':28} {'linux':>6} {'wine':>6}")
    for name, l, w in rows:
        print(f"{name:28} {l:6d} {w:6d}")
    total_l = sum(r[1] for r in rows)
    total_w = sum(r[2] for r in rows)
    print(f"{'total':28} {total_l:6d} {total_w:6d}")
    print(
        f"run on Linux but not under Wine: {len(missing)} "
        "(each says why in the test; README.md, Platforms)"
    )
    for m in missing:
        print(f"  {m}")
    if skipped_all:
        print(f"passed under Wine by skipping themselves: {len(skipped_all)}")
        for s in skipped_all:
            print(f"  {s}")
    if extra:
        print(f"run under Wine but not on Linux (Windows's own tests): {len(extra)}")
        for e in extra:
            print(f"  {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
