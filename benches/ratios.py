#!/usr/bin/env python3
"""The README's performance tables from the last `cargo bench --bench link`,
`cargo bench --features tls --bench tls` and `cargo bench --bench proxy`.

Reads criterion's medians (target/criterion/<group>/<bench>/new/estimates.json)
and prints, for each workload of README.md's tables, the crate's and plain
std::net's medians with their confidence intervals, the ratio and whether
the target is met ("added" rows: the difference of the medians, for the
test kit's proxy). Throughput ratios are plain time / crate time (above 1: the crate is
faster); time ratios are crate / plain (below 1: the crate is faster).

    cargo bench --bench link && python3 benches/ratios.py [target/criterion]
    cargo bench --features tls --bench tls && python3 benches/ratios.py
"""
import json
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"

# (group, crate side, plain side, kind, target); a target in parentheses is
# for information only.
ROWS = [
    ("round_trip_1_thread", "ts_tcpip", "std_net", "time", "<= 1.05"),
    ("round_trip_1_thread", "ts_tcpip", "ts_tcpip_no_monitor", "time", "(monitor on / off)"),
    ("round_trip_2_threads", "ts_tcpip", "std_net", "time", "<= 1.05"),
    ("round_trip_utf16", "ts_tcpip", "std_net", "time", "(<= 1.05)"),
    ("read_str_40B_1_thread", "ts_tcpip", "std_net", "thrpt", ">= 0.95"),
    ("read_str_40B_2_threads", "ts_tcpip", "std_net", "thrpt", ">= 0.95"),
    ("read_str_1KiB_1_thread", "ts_tcpip", "std_net", "thrpt", ">= 0.95"),
    ("read_str_1KiB_2_threads", "ts_tcpip", "std_net", "thrpt", ">= 0.95"),
    ("read_exact_64KiB", "ts_tcpip", "std_net", "thrpt", ">= 0.95"),
    ("json_round_trip", "ts_tcpip", "std_net_line", "time", "<= 1.2"),
    ("json_round_trip", "std_net", "std_net_line", "time", "(plain JSON / plain line)"),
    ("json_round_trip", "ts_tcpip_line", "std_net_line", "time", "(<= 1.05)"),
    # Reading NaN costs a line without it nothing: the default against the
    # crate refusing NaN (serde_json alone), in the same run.
    ("json_round_trip", "ts_tcpip", "ts_tcpip_strict", "time", "(default / refusing NaN)"),
    ("json_round_trip", "ts_tcpip_python", "ts_tcpip", "time", "(Python style / compact)"),
    ("json_round_trip", "ts_tcpip_python_nan", "ts_tcpip_python", "time", "(with a NaN / without)"),
    ("json_codec", "read", "read_serde_json", "time", "(crate's read / serde_json, no NaN)"),
    ("json_codec", "read_nan", "read", "time", "(a line with NaN / without)"),
    ("json_codec", "write_python", "write_compact", "time", "(Python style / compact)"),
    # benches/tls.rs (cargo bench --features tls --bench tls): the crate
    # over TLS against the crate over plain TCP.
    ("tls_round_trip_1_thread", "ts_tcpip_tls", "ts_tcpip", "time", "<= 1.3"),
    # The floor: rustls's own stream against a bare TcpStream.
    ("tls_round_trip_1_thread", "rustls_stream", "std_tcp", "time", "(rustls alone / TCP alone)"),
    ("tls_round_trip_1_thread", "ts_tcpip_tls", "rustls_stream", "time", "(crate over TLS / rustls alone)"),
    ("tls_read_exact_64KiB", "ts_tcpip_tls", "ts_tcpip", "thrpt", ">= 0.5"),
    # benches/proxy.rs (cargo bench --bench proxy): what the test kit's
    # FaultProxy adds to a round trip, in microseconds; the floor (two
    # threads that read and write_all) beside it.
    ("proxy_round_trip_1_thread", "proxied", "direct", "added", "<= 20 us"),
    ("proxy_round_trip_1_thread", "floor", "direct", "added", "(floor)"),
    ("proxy_round_trip_1_thread", "proxied", "floor", "added", "(proxy over floor)"),
    ("proxy_round_trip_2_threads", "proxied", "direct", "added", "<= 20 us"),
    ("proxy_round_trip_2_threads", "floor", "direct", "added", "(floor)"),
    ("proxy_round_trip_2_threads", "proxied", "floor", "added", "(proxy over floor)"),
]


def median(group, bench):
    path = os.path.join(ROOT, group, bench, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = json.load(f)["median"]
    ci = m["confidence_interval"]
    return m["point_estimate"], ci["lower_bound"], ci["upper_bound"]


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"


def met(ratio, target):
    bare = target.strip("()")
    if bare.startswith("<="):
        ok = ratio <= float(bare[2:])
    elif bare.startswith(">="):
        ok = ratio >= float(bare[2:])
    else:
        return ""
    word = "yes" if ok else "NO"
    return f"({word})" if target.startswith("(") else word


def main():
    print("| workload | crate (median, CI) | plain (median, CI) | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for group, a, b, kind, target in ROWS:
        x, y = median(group, a), median(group, b)
        if not x or not y:
            continue
        if kind == "added":
            added = (x[0] - y[0]) / 1000
            ok = ""
            if not target.startswith("("):
                ok = "yes" if added <= float(target.split()[1]) else "NO"
            print(
                f"| {group} {a} vs {b} | {fmt(x[0])} [{fmt(x[1])}–{fmt(x[2])}] "
                f"| {fmt(y[0])} [{fmt(y[1])}–{fmt(y[2])}] | +{added:.2f} µs | {target} | {ok} |"
            )
            continue
        ratio = x[0] / y[0] if kind == "time" else y[0] / x[0]
        print(
            f"| {group} {a} vs {b} | {fmt(x[0])} [{fmt(x[1])}–{fmt(x[2])}] "
            f"| {fmt(y[0])} [{fmt(y[1])}–{fmt(y[2])}] | {ratio:.2f} ({kind}) "
            f"| {target} | {met(ratio, target)} |"
        )


if __name__ == "__main__":
    main()
