//! The workloads of README.md's Performance table: each runs on `ts_tcpip`
//! and on a plain `std::net` link (BufReader + write_all, TCP_NODELAY on
//! both ends, loopback, port 0) in the same criterion group, so the ratio
//! between the two holds even on a noisy machine.
//!
//! ```text
//! cargo bench --bench link                 # everything, a few minutes
//! cargo bench --bench link -- round_trip   # one family
//! ```
//!
//! Each workload is written once, generic over [`End`]; [`Ts`] and [`Plain`]
//! are the two implementations. A line of `LINE_40` is 40 bytes on the wire
//! (38 characters and `\r\n`).
//!
//! The two-thread workloads measure the scheduler as much as the code: on a
//! small VM a thread woken on an idle vCPU costs tens of microseconds, so
//! their times are bimodal (either side, run to run) and only the
//! one-thread ratios are tight. Compare the medians of several runs, on a
//! quiet machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, Bencher, BenchmarkGroup, Criterion, Throughput,
};
use crossbeam_channel::Sender;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ts_tcpip::*;

/// Bench id of the crate's side of each group.
const CRATE: &str = "ts_tcpip";
/// Bench id of the plain std::net side of each group.
const PLAIN: &str = "std_net";

const TERMINATOR: &[u8] = b"\r\n";
/// 38 characters: 40 bytes with the terminator.
const LINE_40: &str = "move 1.500000 2.500000 3.500000 4.50000";
/// Bytes per bulk block.
const BLOCK: usize = 64 * 1024;
/// Bytes written at once by a line writer, about 40 KB: small enough to
/// sit in the loopback socket buffers while the same thread reads it back.
const BATCH_BYTES: usize = 40_000;

/// The small JSON object of the JSON round trip:
/// `{"id":1,"cmd":"move","args":[1.5,2.5]}`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
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

/// A line of `len` bytes on the wire, terminator included.
fn line_of(len: usize) -> String {
    LINE_40
        .chars()
        .cycle()
        .take(len - TERMINATOR.len())
        .collect()
}

// ---------------------------------------------------------------- the ends

/// One end of a link, as the workloads drive it. Failures panic: a bench
/// has no use for a broken link.
trait End: Send + 'static {
    fn send_line(&mut self, line: &str);
    /// The next line without its terminator.
    fn recv_line(&mut self) -> String;
    fn send_json<T: Serialize>(&mut self, value: &T);
    fn recv_json<T: DeserializeOwned>(&mut self) -> T;
    fn send_block(&mut self, block: &[u8]);
    fn recv_block(&mut self, n: usize) -> Vec<u8>;
}

/// A `ts_tcpip` end: a [`Client`] or a [`OneClientServer`].
struct Ts<L>(L);

impl<L: Link + Send + 'static> End for Ts<L> {
    fn send_line(&mut self, line: &str) {
        self.0.write_str(line).expect("write_str");
    }

    fn recv_line(&mut self) -> String {
        self.0.read_str().expect("read_str")
    }

    fn send_json<T: Serialize>(&mut self, value: &T) {
        self.0.write_json(value).expect("write_json");
    }

    fn recv_json<T: DeserializeOwned>(&mut self) -> T {
        self.0.read_json().expect("read_json")
    }

    fn send_block(&mut self, block: &[u8]) {
        self.0.write(block).expect("write");
    }

    fn recv_block(&mut self, n: usize) -> Vec<u8> {
        self.0.read_exact(n).expect("read_exact")
    }
}

/// The plain std::net end: what a careful user writes by hand. Text is
/// encoded and decoded here (UTF-8, or UTF-16 with a BOM as Python writes
/// it); each frame goes out in one `write_all` from a reused buffer.
struct Plain {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    encoding: Encoding,
    out: Vec<u8>,
}

impl Plain {
    fn new(stream: TcpStream, encoding: Encoding) -> Plain {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Plain {
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
            encoding,
            out: Vec::new(),
        }
    }

    fn encode(&mut self, text: &str) {
        match self.encoding {
            Encoding::Utf8 => self.out.extend_from_slice(text.as_bytes()),
            Encoding::Utf16 => {
                self.out.extend_from_slice(&[0xFF, 0xFE]);
                text.encode_utf16()
                    .for_each(|u| self.out.extend_from_slice(&u.to_le_bytes()));
            }
            other => unimplemented!("plain {other}"),
        }
    }

    fn decode(&self, frame: Vec<u8>) -> String {
        match self.encoding {
            Encoding::Utf8 => String::from_utf8(frame).expect("UTF-8"),
            Encoding::Utf16 => {
                let units = frame.strip_prefix(&[0xFF, 0xFE]).unwrap_or(&frame);
                let units = units
                    .chunks_exact(2)
                    .map(|u| u16::from_le_bytes([u[0], u[1]]));
                char::decode_utf16(units)
                    .collect::<std::result::Result<_, _>>()
                    .expect("UTF-16")
            }
            other => unimplemented!("plain {other}"),
        }
    }

    /// Sends what `fill` puts in the reused buffer, plus the terminator.
    fn send_frame(&mut self, fill: impl FnOnce(&mut Self)) {
        self.out.clear();
        fill(self);
        self.out.extend_from_slice(TERMINATOR);
        self.writer.write_all(&self.out).expect("write_all");
    }

    /// The next frame without its terminator.
    fn recv_frame(&mut self) -> Vec<u8> {
        let mut frame = Vec::new();
        self.reader
            .read_until(b'\n', &mut frame)
            .expect("read_until");
        assert!(frame.ends_with(TERMINATOR), "frame without terminator");
        frame.truncate(frame.len() - TERMINATOR.len());
        frame
    }
}

impl End for Plain {
    fn send_line(&mut self, line: &str) {
        self.send_frame(|p| p.encode(line));
    }

    fn recv_line(&mut self) -> String {
        let frame = self.recv_frame();
        self.decode(frame)
    }

    fn send_json<T: Serialize>(&mut self, value: &T) {
        self.send_frame(|p| serde_json::to_writer(&mut p.out, value).expect("serialize"));
    }

    fn recv_json<T: DeserializeOwned>(&mut self) -> T {
        let frame = self.recv_frame();
        serde_json::from_slice(&frame).expect("JSON")
    }

    fn send_block(&mut self, block: &[u8]) {
        self.writer.write_all(block).expect("write_all");
    }

    fn recv_block(&mut self, n: usize) -> Vec<u8> {
        let mut block = vec![0; n];
        self.reader.read_exact(&mut block).expect("read_exact");
        block
    }
}

// ------------------------------------------------------- pairs and workers

/// A connected client and server; the server end moves to a worker thread
/// the first time a workload asks for one.
struct Pair<C: End, S: End> {
    client: C,
    server: Option<S>,
    worker: Option<Worker>,
}

impl<C: End, S: End> Pair<C, S> {
    fn new(client: C, server: S) -> Self {
        Pair {
            client,
            server: Some(server),
            worker: None,
        }
    }

    fn server(&mut self) -> &mut S {
        self.server
            .as_mut()
            .expect("the server end is on a worker thread")
    }

    /// The thread that runs the server end's side of a workload.
    fn worker(&mut self) -> &Worker {
        if self.worker.is_none() {
            let server = self.server.take().expect("a server end");
            self.worker = Some(Worker::spawn(server));
        }
        self.worker.as_ref().expect("just set")
    }
}

/// `ts_tcpip` both ways, text in `encoding`.
fn ts_pair(encoding: Encoding) -> Pair<Ts<Client>, Ts<OneClientServer>> {
    ts_json_pair(encoding, DEFAULT_JSON_STYLE, DEFAULT_JSON_NON_FINITE)
}

/// `ts_tcpip` both ways with no monitor: what the monitor costs a busy
/// link, beside the default.
fn ts_pair_unmonitored() -> Pair<Ts<Client>, Ts<OneClientServer>> {
    connected(
        OneClientServer::builder().monitor_connection_interval(Duration::ZERO),
        Client::builder().monitor_connection_interval(Duration::ZERO),
    )
}

/// `ts_tcpip` both ways, JSON written in `style`, NaN read if `non_finite`.
fn ts_json_pair(
    encoding: Encoding,
    style: JsonStyle,
    non_finite: bool,
) -> Pair<Ts<Client>, Ts<OneClientServer>> {
    connected(
        OneClientServer::builder()
            .encoding(encoding)
            .json_style(style)
            .json_non_finite(non_finite),
        Client::builder()
            .encoding(encoding)
            .json_style(style)
            .json_non_finite(non_finite),
    )
}

/// A server from `server` on a loopback port and a client from `client`
/// connected to it, the server's accept done.
fn connected(
    server: ServerBuilder,
    client: ClientBuilder,
) -> Pair<Ts<Client>, Ts<OneClientServer>> {
    let server = server
        .host(LOCALHOST_IPV4)
        .port(0)
        .start()
        .expect("server start");
    let client = client
        .host(LOCALHOST_IPV4)
        .port(server.port())
        .connect()
        .expect("client connect");
    server
        .wait_connected(Duration::from_secs(5))
        .expect("server sees the client");
    Pair::new(Ts(client), Ts(server))
}

/// Plain std::net both ways, text in `encoding` (UTF-8 or UTF-16).
fn plain_pair(encoding: Encoding) -> Pair<Plain, Plain> {
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("local addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    Pair::new(Plain::new(client, encoding), Plain::new(server, encoding))
}

/// What the worker thread does with the server end.
enum Job {
    /// Reads `n` lines and writes each back.
    Echo(u64),
    /// Writes `n` frames of `frame.len()` bytes, from `frame` repeated
    /// (pre-encoded, so the writer costs little and the reader is measured).
    Stream { n: u64, frame: Vec<u8> },
}

/// A thread owning the server end, running one job at a time.
struct Worker {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn<S: End>(mut server: S) -> Worker {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let thread = std::thread::spawn(move || {
            for job in rx {
                match job {
                    Job::Echo(n) => (0..n).for_each(|_| {
                        let line = server.recv_line();
                        server.send_line(&line);
                    }),
                    Job::Stream { n, frame } => write_frames(&mut server, n, &frame),
                }
            }
        });
        Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    fn start(&self, job: Job) {
        self.jobs
            .as_ref()
            .expect("running")
            .send(job)
            .expect("worker alive");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("worker thread");
        }
    }
}

/// `frame` repeated `n` times, in writes of about [`BATCH_BYTES`].
fn write_frames<S: End>(server: &mut S, n: u64, frame: &[u8]) {
    let per_batch = (BATCH_BYTES / frame.len()).max(1);
    let batch = frame.repeat(per_batch);
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(per_batch);
        server.send_block(&batch[..k * frame.len()]);
        left -= k;
    }
}

/// `line` with its terminator, as every end puts it on the wire in UTF-8.
fn frame_of(line: &str) -> Vec<u8> {
    [line.as_bytes(), TERMINATOR].concat()
}

// ---------------------------------------------------------------- workloads

/// A workload, written once for any pair of ends.
trait Workload {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>);
}

/// Client writes a line, server reads it and writes it back, client reads
/// it: all on the measured thread.
struct RoundTrip;

impl Workload for RoundTrip {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>) {
        b.iter(|| {
            pair.client.send_line(LINE_40);
            let line = pair.server().recv_line();
            pair.server().send_line(&line);
            black_box(pair.client.recv_line())
        });
    }
}

/// The same with the server echoing on its own thread.
struct EchoRoundTrip;

impl Workload for EchoRoundTrip {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>) {
        b.iter_custom(|n| {
            let started = Instant::now();
            pair.worker().start(Job::Echo(n));
            for _ in 0..n {
                pair.client.send_line(LINE_40);
                black_box(pair.client.recv_line());
            }
            started.elapsed()
        });
    }
}

/// A small JSON object there and back, as `RoundTrip` does a line.
struct JsonRoundTrip {
    sent: Command,
}

impl Workload for JsonRoundTrip {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>) {
        let sent = &self.sent;
        pair.client.send_json(sent);
        // Debug shows NaN as NaN, where == would not hold.
        assert_eq!(
            format!("{:?}", pair.server().recv_json::<Command>()),
            format!("{sent:?}"),
            "the object arrives whole"
        );
        b.iter(|| {
            pair.client.send_json(sent);
            let got: Command = pair.server().recv_json();
            pair.server().send_json(&got);
            black_box(pair.client.recv_json::<Command>())
        });
    }
}

/// Lines of `len` bytes read one by one with `read_str`. One thread: the
/// server end writes a batch of about 40 KB, then the client end reads it.
struct ReadLines {
    len: usize,
}

impl Workload for ReadLines {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>) {
        let line = line_of(self.len);
        let frame = frame_of(&line);
        let per_batch = (BATCH_BYTES / frame.len()) as u64;
        b.iter_custom(|n| {
            let started = Instant::now();
            let mut left = n;
            while left > 0 {
                let k = left.min(per_batch);
                write_frames(pair.server(), k, &frame);
                read_lines(&mut pair.client, k, &line);
                left -= k;
            }
            started.elapsed()
        });
    }
}

/// The same with a writer thread streaming the lines.
struct StreamLines {
    len: usize,
}

impl Workload for StreamLines {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>) {
        let line = line_of(self.len);
        b.iter_custom(|n| {
            let frame = frame_of(&line);
            let started = Instant::now();
            pair.worker().start(Job::Stream { n, frame });
            read_lines(&mut pair.client, n, &line);
            started.elapsed()
        });
    }
}

fn read_lines<C: End>(client: &mut C, n: u64, expected: &str) {
    for _ in 0..n {
        let got = client.recv_line();
        debug_assert_eq!(got, expected);
        black_box(got);
    }
}

/// 64 KiB blocks streamed by a writer thread, read with `read_exact`.
struct Blocks;

impl Workload for Blocks {
    fn run<C: End, S: End>(&self, b: &mut Bencher<'_>, pair: &mut Pair<C, S>) {
        let block: Vec<u8> = (0..BLOCK).map(|i| i as u8).collect();
        b.iter_custom(|n| {
            let frame = block.clone();
            let started = Instant::now();
            pair.worker().start(Job::Stream { n, frame });
            for _ in 0..n {
                black_box(pair.client.recv_block(BLOCK));
            }
            started.elapsed()
        });
    }
}

// ------------------------------------------------------------------ groups

/// A group with short runs: the whole file takes a few minutes.
fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    throughput: Option<Throughput>,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    if let Some(throughput) = throughput {
        group.throughput(throughput);
    }
    group
}

/// Benches `workload` under `id` on the pair `make` connects (only if the
/// bench is not filtered out), then closes the pair.
fn entry<C: End, S: End, W: Workload>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    make: impl FnOnce() -> Pair<C, S>,
    workload: &W,
) {
    let mut make = Some(make);
    let mut pair = None;
    group.bench_function(id, |b| {
        let pair = pair.get_or_insert_with(|| make.take().expect("connected once")());
        workload.run(b, pair);
    });
}

/// The crate and plain std::net side by side in one group.
fn compare<W: Workload>(
    c: &mut Criterion,
    name: &str,
    throughput: Option<Throughput>,
    encoding: Encoding,
    workload: W,
) {
    let mut group = group(c, name, throughput);
    entry(&mut group, CRATE, || ts_pair(encoding), &workload);
    entry(&mut group, PLAIN, || plain_pair(encoding), &workload);
    group.finish();
}

fn round_trips(c: &mut Criterion) {
    // With the crate's monitor off as well: a busy link takes the monitor
    // off the socket, so the two should match.
    let mut group = group(c, "round_trip_1_thread", None);
    entry(&mut group, CRATE, || ts_pair(Encoding::Utf8), &RoundTrip);
    entry(&mut group, PLAIN, || plain_pair(Encoding::Utf8), &RoundTrip);
    entry(
        &mut group,
        "ts_tcpip_no_monitor",
        ts_pair_unmonitored,
        &RoundTrip,
    );
    group.finish();
    compare(
        c,
        "round_trip_2_threads",
        None,
        Encoding::Utf8,
        EchoRoundTrip,
    );
    compare(c, "round_trip_utf16", None, Encoding::Utf16, RoundTrip);
}

fn throughput(c: &mut Criterion) {
    let lines = Some(Throughput::Elements(1));
    compare(
        c,
        "read_str_40B_1_thread",
        lines.clone(),
        Encoding::Utf8,
        ReadLines { len: 40 },
    );
    compare(
        c,
        "read_str_40B_2_threads",
        lines.clone(),
        Encoding::Utf8,
        StreamLines { len: 40 },
    );
    compare(
        c,
        "read_str_1KiB_1_thread",
        lines.clone(),
        Encoding::Utf8,
        ReadLines { len: 1024 },
    );
    compare(
        c,
        "read_str_1KiB_2_threads",
        lines,
        Encoding::Utf8,
        StreamLines { len: 1024 },
    );
    compare(
        c,
        "read_exact_64KiB",
        Some(Throughput::Bytes(BLOCK as u64)),
        Encoding::Utf8,
        Blocks,
    );
}

/// The JSON round trip beside the plain line round trip it is held to
/// (and the plain JSON round trip, for reference). Beside them, in the
/// same run: the crate refusing NaN (`json_non_finite(false)`: serde_json
/// alone, the read path before NaN was read), the Python style, and a
/// Python-style object with a NaN in it (the reader's second pass).
fn json(c: &mut Criterion) {
    let mut group = group(c, "json_round_trip", None);
    let (ts, plain) = (|| ts_pair(Encoding::Utf8), || plain_pair(Encoding::Utf8));
    let small = JsonRoundTrip { sent: command() };
    entry(&mut group, CRATE, ts, &small);
    entry(&mut group, PLAIN, plain, &small);
    entry(&mut group, "std_net_line", plain, &RoundTrip);
    entry(&mut group, "ts_tcpip_line", ts, &RoundTrip);
    let strict = || ts_json_pair(Encoding::Utf8, JsonStyle::Compact, false);
    entry(&mut group, "ts_tcpip_strict", strict, &small);
    let python = || ts_json_pair(Encoding::Utf8, JsonStyle::Python, true);
    entry(&mut group, "ts_tcpip_python", python, &small);
    let with_nan = JsonRoundTrip {
        sent: Command {
            args: vec![1.5, f64::NAN],
            ..command()
        },
    };
    entry(&mut group, "ts_tcpip_python_nan", python, &with_nan);
    group.finish();
}

/// The codec alone on one line of the small object, no socket: serde_json
/// beside the crate's reading (which is serde_json for a line without
/// NaN), a line with NaN, and each style's writing.
fn json_codec(c: &mut Criterion) {
    let mut group = group(c, "json_codec", None);
    let line = json::to_string(&command(), JsonStyle::Python).expect("write");
    let nan_line = line.replace("2.5", "NaN");
    group.bench_function("read_serde_json", |b| {
        b.iter(|| serde_json::from_str::<Command>(black_box(&line)).expect("read"))
    });
    group.bench_function("read", |b| {
        b.iter(|| json::from_str::<Command>(black_box(&line)).expect("read"))
    });
    group.bench_function("read_nan", |b| {
        b.iter(|| json::from_str::<Command>(black_box(&nan_line)).expect("read"))
    });
    for (id, style) in [
        ("write_compact", JsonStyle::Compact),
        ("write_python", JsonStyle::Python),
    ] {
        group.bench_function(id, |b| {
            b.iter(|| json::to_string(black_box(&command()), style).expect("write"))
        });
    }
    group.finish();
}

criterion_group!(benches, round_trips, throughput, json, json_codec);
criterion_main!(benches);
