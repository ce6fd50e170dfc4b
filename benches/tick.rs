//! Tail latency of a control loop, beside plain std::net in the same run.
//!
//! A controller sends a 40-byte command line and waits for the reply from
//! an echo thread on the other end, at 100 Hz, 1 kHz and as fast as it
//! can. The crate's side is a `Client` (controller) and a
//! `OneClientServer` (echo), defaults (monitor on); the plain side is a
//! `TcpStream` pair with TCP_NODELAY, `BufReader::read_line` and
//! `write_all`, which like the crate's `read_str` hands each line over as
//! a `String` of its own (as `benches/link.rs`'s plain side does: the same
//! work, minus the crate). In each run both links are up side by side and
//! take turns in half-second blocks, so both see the same machine (a load
//! that comes and goes falls on both alike). Criterion reports means; a control loop
//! lives by its worst ticks, so this prints p50, p99, p99.9 and max, each
//! the median over the runs, and the ratio crate / plain.
//!
//! Then the detection figures: a peer's close noticed (close → the
//! `events()` `Disconnected`) on an idle link and on a busy one whose
//! reader stops after the last message (bytes may still wait unread when
//! the FIN comes), and connect → callback from before `Client::connect()`.
//!
//! On Linux it also counts, from `/proc/self/task/*/status`, the context
//! switches of the monitor threads (`tcpip-monitor …`) and of the whole
//! process per tick (the wakeups each tick costs), and from
//! `/proc/self/task/*/schedstat` the CPU time of the process per tick.
//!
//! With `TICK_SPIN=µs` both of the crate's ends spin that long for a reply
//! before they sleep (`Builder::spin`); then an idle crate link with the
//! spin is measured too: the CPU its threads use in 2 s of silence.
//!
//! ```text
//! cargo bench --bench tick                      # 3 runs of 5 s per side at each rate
//! TICK_SECS=2 TICK_RUNS=5 cargo bench --bench tick
//! TICK_RATES=1000 cargo bench --bench tick      # rates in Hz, 0 = as fast as possible
//! TICK_DETECT=0 cargo bench --bench tick        # ticks only
//! TICK_MONITOR=0 cargo bench --bench tick       # the crate's monitor off on both ends
//! TICK_SPIN=50 cargo bench --bench tick         # the crate's ends spin 50 µs for a reply
//! TICK_PIN=1 cargo bench --bench tick           # controller on CPU 0, echo threads on CPU 1
//! cargo bench --bench tick -- --quick           # about 1 s of ticks (or TICK_QUICK=1)
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ts_tcpip::*;

/// 38 bytes of text + "\r\n": the 40-byte command line on the wire.
const COMMAND: &str = "move axis=1 pos=+12.3456 vel=0.500 #00";
const PATIENCE: Duration = Duration::from_secs(5);
const WARMUP_TICKS: usize = 200;

struct Options {
    secs: f64,
    runs: usize,
    /// Hz; 0 is as fast as possible.
    rates: Vec<u32>,
    detect: bool,
    /// Trials per detection figure.
    trials: usize,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => panic!("{name}={value:?}: not a valid value"),
    }
}

fn options() -> Options {
    // `cargo bench` passes `--bench` (and any filter); only --quick counts.
    let quick = std::env::args().any(|a| a == "--quick") || env::<u8>("TICK_QUICK") == Some(1);
    let rates = match std::env::var("TICK_RATES") {
        Ok(list) => list
            .split(',')
            .map(|r| r.trim().parse().expect("TICK_RATES: Hz, comma-separated"))
            .collect(),
        Err(_) => vec![100, 1000, 0],
    };
    Options {
        secs: env("TICK_SECS").unwrap_or(if quick { 0.15 } else { 5.0 }),
        runs: env::<usize>("TICK_RUNS")
            .unwrap_or(if quick { 1 } else { 3 })
            .max(1),
        rates,
        detect: env::<u8>("TICK_DETECT") != Some(0),
        trials: env::<usize>("TICK_TRIALS")
            .unwrap_or(if quick { 5 } else { 30 })
            .max(1),
    }
}

// ------------------------------------------------------------------ links

/// One side of the comparison: a controller end and its echo peer.
trait RoundTrip {
    /// Sends the command and waits for its echo.
    fn tick(&mut self);
    /// Ends the link and joins the echo thread.
    fn finish(self: Box<Self>);
}

/// The crate's monitor interval: its default, or off (`TICK_MONITOR=0`)
/// to see the monitor's share of a tick.
fn monitor_interval() -> Duration {
    if env::<u8>("TICK_MONITOR") == Some(0) {
        Duration::ZERO
    } else {
        DEFAULT_MONITOR_CONNECTION_INTERVAL
    }
}

/// With `TICK_PIN=1`, pins the calling thread to CPU `cpu` (Linux): the
/// controller to 0, the echo threads to 1, so that each end has a core
/// of its own and no thread migrates.
fn pin(cpu: usize) {
    #[cfg(target_os = "linux")]
    if env::<u8>("TICK_PIN") == Some(1) {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set).expect("sched_setaffinity");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// The crate's spin (`TICK_SPIN`, µs): zero unless asked for.
fn spin() -> Duration {
    Duration::from_micros(env::<u64>("TICK_SPIN").unwrap_or(0))
}

struct CrateLink {
    client: Client,
    server: Arc<OneClientServer>,
    echo: Option<JoinHandle<()>>,
}

impl CrateLink {
    fn start() -> CrateLink {
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .port(0)
            .name("echo")
            .monitor_connection_interval(monitor_interval())
            .spin(spin())
            .start()
            .expect("server start");
        let server = Arc::new(server);
        let client = Client::builder()
            .host(LOCALHOST_IPV4)
            .port(server.port())
            .name("ctl")
            .monitor_connection_interval(monitor_interval())
            .spin(spin())
            .connect()
            .expect("client connect");
        server.wait_connected(PATIENCE).expect("server connected");
        let echoing = server.clone();
        let echo = std::thread::Builder::new()
            .name("echo crate".into())
            .spawn(move || {
                pin(1);
                while let Ok(line) = echoing.read_str() {
                    if echoing.write_str(&line).is_err() {
                        break;
                    }
                }
            })
            .expect("echo thread");
        CrateLink {
            client,
            server,
            echo: Some(echo),
        }
    }
}

impl RoundTrip for CrateLink {
    #[inline]
    fn tick(&mut self) {
        self.client.write_str(COMMAND).expect("crate write");
        let reply = self.client.read_str().expect("crate read");
        debug_assert_eq!(reply.len(), COMMAND.len());
    }

    fn finish(mut self: Box<Self>) {
        self.client.close();
        if let Some(echo) = self.echo.take() {
            echo.join().expect("echo thread");
        }
        self.server.close();
    }
}

struct PlainLink {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
    echo: Option<JoinHandle<()>>,
}

impl PlainLink {
    fn start() -> PlainLink {
        let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        let writer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (peer, _) = listener.accept().expect("accept");
        writer.set_nodelay(true).expect("nodelay");
        peer.set_nodelay(true).expect("nodelay");
        let echo = std::thread::Builder::new()
            .name("echo plain".into())
            .spawn(move || {
                pin(1);
                let mut out = peer.try_clone().expect("clone");
                let mut input = BufReader::new(peer);
                let (mut line, mut frame) = (String::new(), Vec::new());
                loop {
                    line.clear();
                    match input.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            // As the crate's read_str/write_str: the line as
                            // a String of its own, written back with its
                            // terminator from a reused buffer.
                            let text = line[..n.saturating_sub(2)].to_owned();
                            frame.clear();
                            frame.extend_from_slice(text.as_bytes());
                            frame.extend_from_slice(b"\r\n");
                            if out.write_all(&frame).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .expect("echo thread");
        PlainLink {
            reader: BufReader::new(writer.try_clone().expect("clone")),
            writer,
            line: String::with_capacity(64),
            echo: Some(echo),
        }
    }
}

impl RoundTrip for PlainLink {
    #[inline]
    fn tick(&mut self) {
        let mut command = [0u8; 40];
        command[..38].copy_from_slice(COMMAND.as_bytes());
        command[38..].copy_from_slice(b"\r\n");
        self.writer.write_all(&command).expect("plain write");
        self.line.clear();
        let n = self.reader.read_line(&mut self.line).expect("plain read");
        assert_eq!(n, 40, "plain echo");
        // The reply as a String of its own, as read_str returns it.
        std::hint::black_box(self.line[..n - 2].to_owned());
    }

    fn finish(mut self: Box<Self>) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        if let Some(echo) = self.echo.take() {
            echo.join().expect("echo thread");
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Crate,
    Plain,
}

impl Side {
    fn start(self) -> Box<dyn RoundTrip> {
        match self {
            Side::Crate => Box::new(CrateLink::start()),
            Side::Plain => Box::new(PlainLink::start()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Crate => "crate",
            Side::Plain => "plain",
        }
    }
}

// ------------------------------------------------------------ /proc counts

/// Context switches (voluntary + involuntary) of this process's threads
/// whose name starts with `prefix` ("" for all), summed. Linux only.
fn switches(prefix: &str) -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// CPU time so far of every thread of this process, in nanoseconds, from
/// `/proc/self/task/*/schedstat` (its first field). Linux only.
fn cpu_ns() -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

// ------------------------------------------------------------------ ticks

/// What one run of one side at one rate measured.
#[derive(Clone, Copy, Default)]
struct Stats {
    ticks: usize,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
    /// Context switches of the monitor threads per tick.
    monitor_per_tick: Option<f64>,
    /// Context switches of every thread of the process per tick.
    all_per_tick: Option<f64>,
    /// CPU time of the process per tick, µs (both ends of the link and
    /// the measuring thread).
    cpu_per_tick: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// How long one side ticks before the other takes over, within a run.
const BLOCK: Duration = Duration::from_millis(500);

/// What one side has measured so far in a run.
#[derive(Default)]
struct Tally {
    samples: Vec<Duration>,
    monitor: Option<u64>,
    all: Option<u64>,
    cpu: Option<u64>,
}

impl Tally {
    fn add_switches(
        &mut self,
        before: (Option<u64>, Option<u64>),
        after: (Option<u64>, Option<u64>),
    ) {
        let add = |total: Option<u64>, b: Option<u64>, a: Option<u64>| {
            Some(total.unwrap_or(0) + a?.saturating_sub(b?))
        };
        self.monitor = add(self.monitor, before.0, after.0);
        self.all = add(self.all, before.1, after.1);
    }

    fn add_cpu(&mut self, before: Option<u64>, after: Option<u64>) {
        self.cpu = (|| Some(self.cpu.unwrap_or(0) + after?.saturating_sub(before?)))();
    }

    fn stats(mut self) -> Stats {
        self.samples.sort_unstable();
        let samples = &self.samples;
        let per_tick = |n: Option<u64>| Some(n? as f64 / samples.len() as f64);
        Stats {
            ticks: samples.len(),
            p50: percentile(samples, 0.50),
            p99: percentile(samples, 0.99),
            p999: percentile(samples, 0.999),
            max: samples[samples.len() - 1],
            monitor_per_tick: per_tick(self.monitor),
            all_per_tick: per_tick(self.all),
            cpu_per_tick: per_tick(self.cpu).map(|ns| ns / 1e3),
        }
    }
}

/// One run at one rate: both links up side by side, taking turns in
/// blocks of [`BLOCK`] until each has ticked for `secs`, so that both see
/// the same moments of the machine (a quiet second, a busy one) rather
/// than each its own. The first tick of a block follows the other side's
/// block, an idle pause a steady loop never has: it is not counted. Only
/// the ticking side's threads run during its block (the other's wait in
/// `recv` or `poll`), so the context switches counted over a block are
/// that side's.
fn run_pair(rate: u32, secs: f64, crate_first: bool) -> (Stats, Stats) {
    let mut links = [Side::Crate.start(), Side::Plain.start()];
    for link in &mut links {
        for _ in 0..WARMUP_TICKS {
            link.tick();
        }
    }
    let period = (rate > 0).then(|| Duration::from_secs(1) / rate);
    let mut tallies = [Tally::default(), Tally::default()];
    let mut ticked = Duration::ZERO;
    let each = Duration::from_secs_f64(secs);
    let order = if crate_first { [0, 1] } else { [1, 0] };
    while ticked < each {
        let block = BLOCK.min(each - ticked);
        for side in order {
            let (link, tally) = (&mut links[side], &mut tallies[side]);
            let before = (switches("tcpip-monitor"), switches(""));
            let cpu_before = cpu_ns();
            let started = Instant::now();
            let mut next = started;
            let mut first = true;
            while started.elapsed() < block {
                if let Some(period) = period {
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        // Late (a tick took longer than the period): start
                        // again from now rather than bunching ticks up.
                        next = now;
                    }
                }
                let t = Instant::now();
                link.tick();
                let took = t.elapsed();
                if !std::mem::take(&mut first) {
                    tally.samples.push(took);
                }
            }
            tally.add_switches(before, (switches("tcpip-monitor"), switches("")));
            tally.add_cpu(cpu_before, cpu_ns());
        }
        ticked += block;
    }
    for link in links {
        link.finish();
    }
    let [c, p] = tallies;
    (c.stats(), p.stats())
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn rate_name(rate: u32) -> String {
    match rate {
        0 => "max rate".into(),
        r if r >= 1000 && r % 1000 == 0 => format!("{} kHz", r / 1000),
        r => format!("{r} Hz"),
    }
}

fn median_of<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

/// The median over runs of each figure (each figure on its own).
fn median_stats(runs: &[Stats]) -> Stats {
    let pick = |f: fn(&Stats) -> Duration| median_of(runs.iter().map(f).collect());
    let pick_f = |f: fn(&Stats) -> Option<f64>| {
        let v: Option<Vec<f64>> = runs.iter().map(f).collect();
        v.map(median_of)
    };
    Stats {
        ticks: median_of(runs.iter().map(|s| s.ticks).collect()),
        p50: pick(|s| s.p50),
        p99: pick(|s| s.p99),
        p999: pick(|s| s.p999),
        max: pick(|s| s.max),
        monitor_per_tick: pick_f(|s| s.monitor_per_tick),
        all_per_tick: pick_f(|s| s.all_per_tick),
        cpu_per_tick: pick_f(|s| s.cpu_per_tick),
    }
}

fn per_tick(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

fn ticks(options: &Options) -> Vec<(u32, Stats, Stats)> {
    let mut results: Vec<(u32, Vec<Stats>, Vec<Stats>)> = options
        .rates
        .iter()
        .map(|&r| (r, Vec::new(), Vec::new()))
        .collect();
    for run in 0..options.runs {
        for (rate, crate_runs, plain_runs) in &mut results {
            // Alternate which side opens the run, so neither always
            // ticks first after a pause.
            let (c, p) = run_pair(*rate, options.secs, run % 2 == 0);
            for (side, s) in [(Side::Crate, &c), (Side::Plain, &p)] {
                println!(
                    "run {}/{} {:>8} {}: n={:>6} p50 {:>7} p99 {:>7} p99.9 {:>7} max {:>8} µs; \
                     switches/tick: monitor {}, all threads {}; CPU/tick {} µs",
                    run + 1,
                    options.runs,
                    rate_name(*rate),
                    side.name(),
                    s.ticks,
                    us(s.p50),
                    us(s.p99),
                    us(s.p999),
                    us(s.max),
                    per_tick(s.monitor_per_tick),
                    per_tick(s.all_per_tick),
                    per_tick(s.cpu_per_tick),
                );
            }
            crate_runs.push(c);
            plain_runs.push(p);
        }
    }
    results
        .into_iter()
        .map(|(rate, c, p)| (rate, median_stats(&c), median_stats(&p)))
        .collect()
}

fn print_tick_table(options: &Options, results: &[(u32, Stats, Stats)]) {
    println!();
    println!(
        "Round trip of a 40-byte line, µs, median of {} run(s) of {} s each (crate / plain = ratio):",
        options.runs, options.secs
    );
    println!();
    println!("| rate | side | ticks | p50 | p99 | p99.9 | max | monitor switches/tick | all switches/tick | CPU µs/tick |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (rate, c, p) in results {
        for (name, s) in [("crate", c), ("plain std::net", p)] {
            println!(
                "| {} | {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rate_name(*rate),
                s.ticks,
                us(s.p50),
                us(s.p99),
                us(s.p999),
                us(s.max),
                per_tick(s.monitor_per_tick),
                per_tick(s.all_per_tick),
                per_tick(s.cpu_per_tick),
            );
        }
        println!(
            "| {} | **crate / plain** | | **{}** | **{}** | **{}** | {} | | | |",
            rate_name(*rate),
            ratio(c.p50, p.p50),
            ratio(c.p99, p.p99),
            ratio(c.p999, p.p999),
            ratio(c.max, p.max),
        );
    }
}

// -------------------------------------------------------------- detection

/// Median and maximum of a set of samples.
fn spread(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    format!(
        "median {:.3} ms, max {:.3} ms (n={})",
        samples[samples.len() / 2].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    )
}

fn next_disconnect(events: &crossbeam_channel::Receiver<ConnectionEvent>) -> Instant {
    loop {
        match events.recv_timeout(Duration::from_secs(2)) {
            Ok(ConnectionEvent::Disconnected { .. }) => return Instant::now(),
            Ok(_) => {}
            Err(e) => panic!("no Disconnected event: {e}"),
        }
    }
}

fn next_connect(events: &crossbeam_channel::Receiver<ConnectionEvent>) {
    loop {
        match events.recv_timeout(PATIENCE) {
            Ok(ConnectionEvent::Connected { .. }) => return,
            Ok(_) => {}
            Err(e) => panic!("no Connected event: {e}"),
        }
    }
}

fn echo_server() -> OneClientServer {
    OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(0)
        .name("watch")
        .start()
        .expect("server start")
}

/// A plain peer connects to a crate server, the link idles, the peer
/// closes: how soon the server's `events()` says Disconnected.
fn server_notices_idle_close(trials: usize) -> Vec<Duration> {
    let server = echo_server();
    let events = server.events();
    (0..trials)
        .map(|_| {
            let peer = TcpStream::connect((LOCALHOST_IPV4, server.port())).expect("connect");
            next_connect(&events);
            // Let the monitor settle into its wait.
            std::thread::sleep(Duration::from_millis(20));
            let t0 = Instant::now();
            drop(peer);
            next_disconnect(&events) - t0
        })
        .collect()
}

/// A crate client of a plain listener; the listener's end closes.
fn client_notices_idle_close(trials: usize) -> Vec<Duration> {
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (0..trials)
        .map(|_| {
            let client = Client::builder()
                .host(LOCALHOST_IPV4)
                .port(port)
                .connect()
                .expect("connect");
            let events = client.events();
            let (peer, _) = listener.accept().expect("accept");
            std::thread::sleep(Duration::from_millis(20));
            let t0 = Instant::now();
            drop(peer);
            let took = next_disconnect(&events) - t0;
            client.close();
            took
        })
        .collect()
}

/// A busy link: the peer sends a line every 0.5 ms for 40 ms, which a
/// reader thread on the crate server reads as it comes; then the peer
/// sends "bye" and closes at once. The reader stops after "bye" (it may
/// not have read it yet when the FIN arrives). Close → Disconnected.
fn server_notices_busy_close(trials: usize) -> Vec<Duration> {
    let server = Arc::new(echo_server());
    let events = server.events();
    (0..trials)
        .map(|_| {
            let mut peer = TcpStream::connect((LOCALHOST_IPV4, server.port())).expect("connect");
            peer.set_nodelay(true).expect("nodelay");
            next_connect(&events);
            let reading = server.clone();
            let reader = std::thread::spawn(move || {
                while let Ok(line) = reading.read_str() {
                    if line == "bye" {
                        break;
                    }
                }
            });
            let line = format!("{COMMAND}\r\n");
            let started = Instant::now();
            while started.elapsed() < Duration::from_millis(40) {
                peer.write_all(line.as_bytes()).expect("peer write");
                std::thread::sleep(Duration::from_micros(500));
            }
            peer.write_all(b"bye\r\n").expect("peer write");
            let t0 = Instant::now();
            drop(peer);
            let took = next_disconnect(&events) - t0;
            reader.join().expect("reader");
            took
        })
        .collect()
}

/// From before `Client::connect()` to the client's and the server's
/// connect callback(true).
fn connect_to_callback(trials: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (server_tx, server_rx) = mpsc::channel();
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(0)
        .connect_callback(move |_: &OneClientServer, connected| {
            let _ = server_tx.send((connected, Instant::now()));
        })
        .start()
        .expect("server start");
    let (mut to_client, mut to_server) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let (client_tx, client_rx) = mpsc::channel();
        let t0 = Instant::now();
        let client = Client::builder()
            .host(LOCALHOST_IPV4)
            .port(server.port())
            .connect_callback(move |_: &Client, connected| {
                let _ = client_tx.send((connected, Instant::now()));
            })
            .connect()
            .expect("connect");
        let (connected, at) = client_rx.recv_timeout(PATIENCE).expect("client callback");
        assert!(connected);
        to_client.push(at - t0);
        let (connected, at) = server_rx.recv_timeout(PATIENCE).expect("server callback");
        assert!(connected);
        to_server.push(at - t0);
        client.close();
        let (connected, _) = server_rx.recv_timeout(PATIENCE).expect("server callback");
        assert!(!connected);
    }
    (to_client, to_server)
}

fn detection(trials: usize) {
    println!();
    println!("Detection, {trials} trials each (monitor_connection_interval {DEFAULT_MONITOR_CONNECTION_INTERVAL:?}):");
    println!();
    println!("| figure | measured |");
    println!("|---|---|");
    let rows = [
        (
            "peer closes an idle link → server events() Disconnected",
            spread(server_notices_idle_close(trials)),
        ),
        (
            "peer closes an idle link → client events() Disconnected",
            spread(client_notices_idle_close(trials)),
        ),
        (
            "peer closes a busy link, reader stops after the last line → server Disconnected",
            spread(server_notices_busy_close(trials)),
        ),
    ];
    for (figure, measured) in rows {
        println!("| {figure} | {measured} |");
    }
    let (to_client, to_server) = connect_to_callback(trials);
    println!(
        "| before Client::connect() → client callback(true) | {} |",
        spread(to_client)
    );
    println!(
        "| before Client::connect() → server callback(true) | {} |",
        spread(to_server)
    );
}

fn main() {
    pin(0);
    let options = options();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    if !options.rates.is_empty() {
        let results = ticks(&options);
        print_tick_table(&options, &results);
    }
    if options.detect {
        detection(options.trials);
    }
    if !spin().is_zero() {
        idle_with_spin();
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!();
        println!("load average at end: {}", load.trim());
    }
}

/// An idle crate link whose ends spin, for 2 s after its last tick: the
/// echo thread waits in a read for the next command (it spins once, for
/// the spin, after its last reply, then sleeps), the controller reads
/// nothing. The CPU the process uses is that of sleeping threads.
fn idle_with_spin() {
    let mut link = Box::new(CrateLink::start());
    for _ in 0..WARMUP_TICKS {
        link.tick();
    }
    let before = cpu_ns();
    std::thread::sleep(Duration::from_secs(2));
    let after = cpu_ns();
    if let (Some(b), Some(a)) = (before, after) {
        println!();
        println!(
            "idle link with TICK_SPIN={} µs, both ends waiting 2 s: {:.3} ms of CPU in all ({:.4} % of one core)",
            spin().as_micros(),
            (a - b) as f64 / 1e6,
            (a - b) as f64 / 2e9 * 100.0
        );
    }
    link.finish();
}
