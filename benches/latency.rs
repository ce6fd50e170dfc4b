//! The figures criterion does not give: how soon the connect callback
//! hears of a new client and of a peer that closed, what an idle link
//! costs in CPU, and the threads and memory a server with a client holds.
//! Prints a markdown table with each target (README.md, Performance).
//!
//! ```text
//! cargo bench --bench latency              # about 15 s
//! cargo bench --bench latency -- --quick   # 2 s idle window, fewer trials
//! cargo bench --bench latency -- --trials 500 --links 50
//! ```
//!
//! Linux only: CPU time, memory and threads come from `/proc/self`.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use ts_tcpip::*;

/// How long to wait for a callback before calling the run a failure.
const PATIENCE: Duration = Duration::from_secs(5);

struct Options {
    /// Connects and disconnects timed per figure.
    trials: usize,
    /// How long the idle link is watched.
    idle: Duration,
    /// Servers (and clients) started for the footprint figures.
    links: usize,
}

fn parse_args() -> std::result::Result<Options, String> {
    let mut options = Options {
        trials: 200,
        idle: Duration::from_secs(10),
        links: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut count = || -> std::result::Result<usize, String> {
            let value = args.next().ok_or(format!("{arg} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("bad count {value:?} for {arg}"))
        };
        match arg.as_str() {
            // `cargo bench` passes it to every bench.
            "--bench" => {}
            "--quick" => {
                options.idle = Duration::from_secs(2);
                options.trials = 50;
            }
            "--trials" => options.trials = count()?.max(1),
            "--links" => options.links = count()?.max(1),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--quick, --trials N, --links N)"
                ))
            }
        }
    }
    Ok(options)
}

// ------------------------------------------------------------ the figures

/// One line of the table.
struct Row {
    figure: String,
    measured: String,
    target: &'static str,
    /// None for reference lines that have no target.
    met: Option<bool>,
}

impl Row {
    fn new(figure: &str, measured: String, target: &'static str, met: Option<bool>) -> Row {
        Row {
            figure: figure.to_owned(),
            measured,
            target,
            met,
        }
    }
}

/// Median and maximum of a set of samples.
struct Spread {
    median: Duration,
    max: Duration,
}

impl Spread {
    fn of(mut samples: Vec<Duration>) -> Spread {
        samples.sort();
        Spread {
            median: samples[samples.len() / 2],
            max: samples[samples.len() - 1],
        }
    }

    fn show(&self) -> String {
        format!("median {}, max {}", ms(self.median), ms(self.max))
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// The connect callback's calls, each with the instant it was made.
struct Calls(Receiver<(bool, Instant)>);

impl Calls {
    /// A recorder and the callback that feeds it, for either builder.
    fn new<T>() -> (Calls, impl FnMut(&T, bool) + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let callback = move |_: &T, connected: bool| {
            let _ = tx.send((connected, Instant::now()));
        };
        (Calls(rx), callback)
    }

    /// When the next call came; panics unless it says `expected`.
    fn next(&self, expected: bool) -> Instant {
        let (connected, at) = self.0.recv_timeout(PATIENCE).expect("a connect callback");
        assert_eq!(connected, expected, "connect callback out of order");
        at
    }

    /// Time from just before `action` to the next call, which must say
    /// `expected`.
    fn time<R>(&self, expected: bool, action: impl FnOnce() -> R) -> (Duration, R) {
        let started = Instant::now();
        let result = action();
        (self.next(expected) - started, result)
    }
}

fn server_with(callback: impl FnMut(&OneClientServer, bool) + Send + 'static) -> OneClientServer {
    OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(0)
        .connect_callback(callback)
        .start()
        .expect("server start")
}

/// A client of `port` without a callback.
fn client_of(port: u16) -> Client {
    connect(Client::builder().host(LOCALHOST_IPV4).port(port))
}

/// A client of `port` whose connect callback is `callback`.
fn client_with(port: u16, callback: impl FnMut(&Client, bool) + Send + 'static) -> Client {
    connect(
        Client::builder()
            .host(LOCALHOST_IPV4)
            .port(port)
            .connect_callback(callback),
    )
}

fn connect(builder: ClientBuilder) -> Client {
    builder.connect().expect("client connect")
}

fn plain_peer_of(port: u16) -> TcpStream {
    TcpStream::connect((LOCALHOST_IPV4, port)).expect("plain connect")
}

/// Connect → server callback(true), and peer closes → server
/// callback(false), with `peer` connecting each time (the peer is dropped
/// to close it).
fn server_side<P>(trials: usize, peer: impl Fn(u16) -> P) -> (Spread, Spread) {
    let (calls, callback) = Calls::new();
    let server = server_with(callback);
    let (mut connects, mut drops) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let (took, link) = calls.time(true, || peer(server.port()));
        connects.push(took);
        // Nothing unread on either side: the monitor sees a clean EOF.
        drops.push(calls.time(false, || drop(link)).0);
    }
    (Spread::of(connects), Spread::of(drops))
}

/// Server `close_client()` → client callback(false).
fn client_notices_close(trials: usize) -> Spread {
    let server = server_with(|_, _| {});
    let samples = (0..trials)
        .map(|_| {
            let (calls, callback) = Calls::new();
            let client = client_with(server.port(), callback);
            calls.next(true);
            server
                .wait_connected(PATIENCE)
                .expect("server sees the client");
            let took = calls.time(false, || server.close_client()).0;
            drop(client);
            took
        })
        .collect();
    Spread::of(samples)
}

/// std::net alone: connect() → accept() returning on another thread.
fn plain_accept(trials: usize) -> Spread {
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let (tx, rx) = mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        for _ in 0..trials {
            let (stream, _) = listener.accept().expect("accept");
            if tx.send((Instant::now(), stream)).is_err() {
                return;
            }
        }
    });
    let samples = (0..trials)
        .map(|_| {
            let started = Instant::now();
            let _peer = plain_peer_of(port);
            let (accepted, _stream) = rx.recv_timeout(PATIENCE).expect("accepted");
            accepted - started
        })
        .collect();
    acceptor.join().expect("acceptor");
    Spread::of(samples)
}

fn latency_rows(trials: usize) -> Vec<Row> {
    let (client_connects, client_drops) = server_side(trials, client_of);
    let (plain_connects, plain_drops) = server_side(trials, plain_peer_of);
    let client_side = client_notices_close(trials);
    let accept = plain_accept(trials);
    let interval = DEFAULT_MONITOR_CONNECTION_INTERVAL;
    let connect_met = |s: &Spread| Some(s.median <= Duration::from_micros(100));
    let drop_met = |s: &Spread| Some(s.median <= Duration::from_millis(5) && s.max <= interval);
    vec![
        Row::new(
            "connect → server callback(true), peer a ts_tcpip Client",
            client_connects.show(),
            "≤ 0.1 ms median",
            connect_met(&client_connects),
        ),
        Row::new(
            "connect → server callback(true), peer a std TcpStream",
            plain_connects.show(),
            "≤ 0.1 ms median",
            connect_met(&plain_connects),
        ),
        Row::new(
            "(reference) std::net connect → accept() returns",
            accept.show(),
            "",
            None,
        ),
        Row::new(
            "peer closes → server callback(false), peer a ts_tcpip Client (close())",
            client_drops.show(),
            "≤ 5 ms median, max ≤ 100 ms",
            drop_met(&client_drops),
        ),
        Row::new(
            "peer closes → server callback(false), peer a std TcpStream (drop)",
            plain_drops.show(),
            "≤ 5 ms median, max ≤ 100 ms",
            drop_met(&plain_drops),
        ),
        Row::new(
            "server close_client() → client callback(false)",
            client_side.show(),
            "≤ 5 ms median, max ≤ 100 ms",
            drop_met(&client_side),
        ),
    ]
}

// ----------------------------------------------------- /proc measurements

/// CPU time of the threads `cpu_time` counts, from the schedulers' own
/// nanosecond counters (`/proc/self/task/*/schedstat`), and from
/// `/proc/self/stat` (utime + stime, in clock ticks of 10 ms).
struct CpuTime {
    schedstat: Duration,
    ticks: u64,
}

/// The CPU time of every thread but the calling one (which measures: its
/// own reads of /proc and its wake from the window's sleep cost more than
/// an idle link), and the process's ticks.
fn cpu_time() -> CpuTime {
    // "PID/task/TID": this thread's own entry.
    let me = fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()));
    let mut nanos = 0u64;
    for task in fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        if Some(task.file_name()) == me {
            continue;
        }
        if let Ok(text) = fs::read_to_string(task.path().join("schedstat")) {
            nanos += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    let stat = fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    CpuTime {
        schedstat: Duration::from_nanos(nanos),
        ticks: fields[11] + fields[12],
    }
}

/// Threads of this process.
fn threads() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// CPU used by a connected, idle server and client (callbacks set, default
/// monitor interval) over `window`: their threads' time, the measuring
/// thread left out. Both ends are in this process, so the figure is the
/// pair's, not the server's alone: an upper bound.
fn idle_rows(window: Duration) -> Vec<Row> {
    let server = server_with(|_, _| {});
    let client = client_with(server.port(), |_, _| {});
    server
        .wait_connected(PATIENCE)
        .expect("server sees the client");
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_time();
    let started = Instant::now();
    std::thread::sleep(window);
    let after = cpu_time();
    let elapsed = started.elapsed().as_secs_f64();
    let share = (after.schedstat - before.schedstat).as_secs_f64() / elapsed * 100.0;
    let ticks = after.ticks - before.ticks;
    assert!(
        server.connected() && client.connected(),
        "the link stayed up"
    );
    vec![Row::new(
        &format!("idle server + client, {elapsed:.0} s: CPU of one core (their threads)"),
        format!(
            "{share:.4} % ({} µs; /proc/self/stat: {ticks} ticks)",
            (after.schedstat - before.schedstat).as_micros()
        ),
        "< 0.1 %",
        Some(share < 0.1),
    )]
}

/// Threads and resident memory, before and after a step.
#[derive(Clone, Copy)]
struct Footprint {
    threads: usize,
    rss_kib: u64,
}

impl Footprint {
    fn now() -> Footprint {
        Footprint {
            threads: threads(),
            rss_kib: rss_kib(),
        }
    }

    /// Per-link growth since `base`, for `links` links.
    fn per_link(self, base: Footprint, links: usize) -> (f64, f64) {
        let threads = (self.threads as f64 - base.threads as f64) / links as f64;
        let rss = (self.rss_kib as f64 - base.rss_kib as f64) / links as f64;
        (threads, rss)
    }
}

/// `links` servers (with callbacks), then a plain peer on each, then
/// `links` ts_tcpip clients (with callbacks) on a plain listener: what each
/// side holds, counted apart.
fn footprint_rows(links: usize) -> Vec<Row> {
    let base = Footprint::now();
    let servers: Vec<OneClientServer> = (0..links).map(|_| server_with(|_, _| {})).collect();
    let listening = Footprint::now();
    let peers: Vec<TcpStream> = servers.iter().map(|s| plain_peer_of(s.port())).collect();
    for server in &servers {
        server
            .wait_connected(PATIENCE)
            .expect("server sees its peer");
    }
    let serving = Footprint::now();

    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let before_clients = Footprint::now();
    let clients: Vec<(Client, TcpStream)> = (0..links)
        .map(|_| {
            let client = client_with(port, |_, _| {});
            (client, listener.accept().expect("accept").0)
        })
        .collect();
    let with_clients = Footprint::now();

    let (idle_threads, _) = listening.per_link(base, links);
    let (threads, rss) = serving.per_link(base, links);
    let (client_threads, client_rss) = with_clients.per_link(before_clients, links);
    drop((clients, peers, servers));
    vec![
        Row::new(
            &format!("threads per server, listening ({links} servers)"),
            format!("{idle_threads:.1}"),
            "",
            None,
        ),
        Row::new(
            &format!("threads per server with a client ({links} servers)"),
            format!("{threads:.1}"),
            "≤ 4",
            Some(threads <= 4.0),
        ),
        Row::new(
            &format!("resident memory per server with a client ({links} servers)"),
            format!("{rss:.0} KiB"),
            "",
            None,
        ),
        Row::new(
            &format!("threads per connected ts_tcpip Client ({links} clients)"),
            format!("{client_threads:.1}"),
            "",
            None,
        ),
        Row::new(
            &format!("resident memory per connected ts_tcpip Client ({links} clients)"),
            format!("{client_rss:.0} KiB"),
            "",
            None,
        ),
    ]
}

// ------------------------------------------------------------------ output

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                Some(
                    l.strip_prefix("model name")?
                        .trim_start_matches([' ', '\t', ':'])
                        .to_owned(),
                )
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores, {model}; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn print_table(rows: &[Row]) {
    println!("| figure | measured | target | met |");
    println!("| --- | --- | --- | --- |");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {met} |",
            row.figure, row.measured, row.target
        );
    }
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("latency: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("machine: {}", machine());
    println!(
        "{} trials per latency, monitor interval {:?}, idle window {:?}\n",
        options.trials, DEFAULT_MONITOR_CONNECTION_INTERVAL, options.idle
    );
    let mut rows = latency_rows(options.trials);
    rows.extend(idle_rows(options.idle));
    rows.extend(footprint_rows(options.links));
    print_table(&rows);
    std::process::ExitCode::SUCCESS
}
