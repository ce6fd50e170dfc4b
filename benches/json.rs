//! What reading Python's NaN and writing `json.dumps`' bytes cost, measured
//! in interleaved blocks so that a machine whose load comes and goes
//! weighs on every side alike (criterion's groups run one side after the
//! other):
//!
//! ```text
//! cargo bench --bench json            # about a minute
//! JSON_RUNS=5 cargo bench --bench json
//! ```
//!
//! The small object is the one of `benches/link.rs`'s JSON round trip,
//! `{"id": 1, "cmd": "move", "args": [1.5, 2.5]}`. Each figure is the
//! median over the blocks of one run; each ratio is to the row's first
//! column.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ts_tcpip::json::{from_str, to_string, JsonStyle};
use ts_tcpip::*;

#[derive(Serialize, Deserialize, Debug)]
struct Command {
    id: u32,
    cmd: String,
    args: Vec<f64>,
}

fn command() -> Command {
    Command {
        id: 1,
        cmd: "move".into(),
        args: vec![1.5, 2.5],
    }
}

/// Nanoseconds per call of `f`, over `n` calls.
fn per_call(n: u32, f: &mut dyn FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the sides in turn, `blocks` times `n` calls each, and prints each
/// side's median and its ratio to the first.
fn interleaved(name: &str, n: u32, blocks: usize, sides: &mut [(&str, &mut dyn FnMut())]) {
    let mut times = vec![Vec::new(); sides.len()];
    for _ in 0..blocks {
        for (i, (_, f)) in sides.iter_mut().enumerate() {
            times[i].push(per_call(n, *f));
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    let cells: Vec<String> = sides
        .iter()
        .zip(&medians)
        .map(|((label, _), m)| format!("{label} {m:.0} ns ({:.2})", m / medians[0]))
        .collect();
    println!("| {name} | {} |", cells.join(" | "));
}

fn pair(style: JsonStyle, non_finite: bool) -> (OneClientServer, Client) {
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(0)
        .json_style(style)
        .json_non_finite(non_finite)
        .start()
        .expect("server");
    let client = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(server.port())
        .json_style(style)
        .json_non_finite(non_finite)
        .connect()
        .expect("client");
    server
        .wait_connected(Duration::from_secs(5))
        .expect("connected");
    (server, client)
}

/// The client writes `value`, the server reads it and writes it back, the
/// client reads it: one thread, as `benches/link.rs` does.
fn round_trip(server: &OneClientServer, client: &Client, value: &Command) {
    client.write_json(value).expect("write_json");
    let got: Command = server.read_json().expect("read_json");
    server.write_json(&got).expect("write_json");
    black_box(client.read_json::<Command>().expect("read_json"));
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let runs: usize = std::env::var("JSON_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let compact = to_string(&command(), JsonStyle::Compact).expect("write");
    let python = to_string(&command(), JsonStyle::Python).expect("write");
    let with_nan = python.replace("2.5", "NaN");
    let value = command();
    let nan_value = Command {
        args: vec![1.5, f64::NAN],
        ..command()
    };
    let (s_strict, c_strict) = pair(JsonStyle::Compact, false);
    let (s_default, c_default) = pair(JsonStyle::Compact, true);
    let (s_python, c_python) = pair(JsonStyle::Python, true);
    println!("| what | sides, median per call (ratio to the first) |");
    println!("| --- | --- |");
    for _ in 0..runs {
        interleaved(
            "read a line without NaN",
            100_000,
            15,
            &mut [
                ("serde_json", &mut || {
                    black_box(serde_json::from_str::<Command>(black_box(&compact)).expect("read"));
                }),
                ("ts_tcpip::json", &mut || {
                    black_box(from_str::<Command>(black_box(&compact)).expect("read"));
                }),
            ],
        );
        interleaved(
            "read a Python line",
            100_000,
            15,
            &mut [
                ("without NaN", &mut || {
                    black_box(from_str::<Command>(black_box(&python)).expect("read"));
                }),
                ("with a NaN", &mut || {
                    black_box(from_str::<Command>(black_box(&with_nan)).expect("read"));
                }),
            ],
        );
        interleaved(
            "write the object",
            100_000,
            15,
            &mut [
                ("compact", &mut || {
                    black_box(to_string(black_box(&value), JsonStyle::Compact).expect("write"));
                }),
                ("python", &mut || {
                    black_box(to_string(black_box(&value), JsonStyle::Python).expect("write"));
                }),
            ],
        );
        interleaved(
            "round trip over a link",
            2_000,
            21,
            &mut [
                ("refusing NaN", &mut || {
                    round_trip(&s_strict, &c_strict, &value)
                }),
                ("default", &mut || {
                    round_trip(&s_default, &c_default, &value)
                }),
                ("python style", &mut || {
                    round_trip(&s_python, &c_python, &value)
                }),
                ("python style, a NaN", &mut || {
                    round_trip(&s_python, &c_python, &nan_value)
                }),
            ],
        );
    }
}
