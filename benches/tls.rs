//! What TLS costs (feature `tls`): each workload on the crate over TLS and
//! on the crate over plain TCP, in the same criterion group, so the ratio
//! holds on a noisy machine.
//!
//! ```text
//! cargo bench --features tls --bench tls && python3 benches/ratios.py
//! ```
//!
//! - `tls_round_trip_1_thread`: a 40-byte line (`\r\n` included) there and
//!   back with `write_str`/`read_str`, client and server on the measured
//!   thread (target: TLS ≤ 1.3 × plain).
//!   Beside them, the floor under that ratio: rustls alone
//!   (`rustls::StreamOwned` over a `TcpStream`, `rustls_stream`) against
//!   the bare `TcpStream` (`std_tcp`), the same 40 bytes there and back,
//!   no framing, no crate. TLS costs each record a fixed amount of work
//!   (AEAD, record layer, rustls's buffers) whatever carries it; where a
//!   plain round trip is short, that work is a larger share of it.
//! - `tls_read_exact_64KiB`: 64 KiB blocks written with `write` by a thread
//!   owning the server and read with `read_exact` by the client (target:
//!   TLS ≥ 0.5 × plain throughput).
//!
//! TLS 1.3 with rustls' ring provider and its default cipher suite
//! (AES-256-GCM where the CPU has AES instructions), certificates made at
//! start (rcgen), loopback, defaults otherwise (TCP_NODELAY, monitor on).

#[allow(dead_code)]
#[path = "../tests/support/pki.rs"]
mod pki;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput,
};
use crossbeam_channel::Sender;
use ts_tcpip::*;

/// Bench id of the TLS side of each group.
const TLS: &str = "ts_tcpip_tls";
/// Bench id of the plain TCP side.
const PLAIN: &str = "ts_tcpip";

/// 38 characters: 40 bytes with the terminator.
const LINE_40: &str = "move 1.500000 2.500000 3.500000 4.50000";
/// Bytes per block.
const BLOCK: usize = 64 * 1024;

/// A connected client and server of the crate, over TLS or plain TCP.
fn pair(tls: bool) -> (Client, OneClientServer) {
    let mut server = OneClientServer::builder().host(LOCALHOST_IPV4).port(0);
    let mut client = Client::builder().host(LOCALHOST_IPV4);
    if tls {
        let ca = pki::Ca::new("bench CA");
        let id = ca.issue(&["localhost"]);
        server = server.tls(pki::server_config(&id, None));
        client = client
            .tls(pki::client_config(&ca, None))
            .tls_server_name("localhost");
    }
    let server = server.start().expect("server start");
    let client = client
        .port(server.port())
        .connect()
        .expect("client connect");
    server
        .wait_connected(Duration::from_secs(5))
        .expect("server sees the client");
    (client, server)
}

/// A thread owning the server, writing `n` blocks per job.
struct Writer {
    jobs: Option<Sender<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn spawn(server: OneClientServer) -> Writer {
        let (jobs, rx) = crossbeam_channel::unbounded::<u64>();
        let thread = std::thread::spawn(move || {
            let block: Vec<u8> = (0..BLOCK).map(|i| i as u8).collect();
            for n in rx {
                for _ in 0..n {
                    server.write(&block).expect("write");
                }
            }
            server.close();
        });
        Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("writer thread");
        }
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group
}

fn round_trip(c: &mut Criterion) {
    let mut group = group(c, "tls_round_trip_1_thread");
    for (id, tls) in [(TLS, true), (PLAIN, false)] {
        let mut ends = None;
        group.bench_function(id, |b| {
            let (client, server) = ends.get_or_insert_with(|| pair(tls));
            b.iter(|| {
                client.write_str(LINE_40).expect("write_str");
                let line = server.read_str().expect("read_str");
                server.write_str(&line).expect("write_str");
                black_box(client.read_str().expect("read_str"))
            });
        });
        if let Some((client, server)) = ends {
            client.close();
            server.close();
        }
    }
    group.finish();
}

/// rustls and std alone: a connected `TcpStream` pair (TCP_NODELAY, as the
/// crate sets), over TLS when `tls`, the handshake run on a thread.
fn bare_pair(tls: bool) -> (Box<dyn ReadWrite>, Box<dyn ReadWrite>) {
    use std::net::{TcpListener, TcpStream};
    use ts_tcpip::tls::rustls;
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    client.set_nodelay(true).expect("nodelay");
    server.set_nodelay(true).expect("nodelay");
    if !tls {
        return (Box::new(client), Box::new(server));
    }
    let ca = pki::Ca::new("bench CA");
    let id = ca.issue(&["localhost"]);
    let config = pki::server_config(&id, None);
    let serving = std::thread::spawn(move || {
        let mut session = rustls::ServerConnection::new(config).expect("server session");
        let mut socket = server;
        while session.is_handshaking() {
            session.complete_io(&mut socket).expect("server handshake");
        }
        rustls::StreamOwned::new(session, socket)
    });
    let name = "localhost".try_into().expect("name");
    let mut session =
        rustls::ClientConnection::new(pki::client_config(&ca, None), name).expect("client session");
    let mut socket = client;
    while session.is_handshaking() {
        session.complete_io(&mut socket).expect("client handshake");
    }
    let server = serving.join().expect("server handshake thread");
    (
        Box::new(rustls::StreamOwned::new(session, socket)),
        Box::new(server),
    )
}

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn floor(c: &mut Criterion) {
    let mut group = group(c, "tls_round_trip_1_thread");
    let line = format!("{LINE_40}\r\n");
    for (id, tls) in [("rustls_stream", true), ("std_tcp", false)] {
        let (mut client, mut server) = bare_pair(tls);
        let mut buf = [0u8; 64];
        group.bench_function(id, |b| {
            b.iter(|| {
                client.write_all(line.as_bytes()).expect("write");
                let n = server.read(&mut buf).expect("read");
                server.write_all(&buf[..n]).expect("write");
                black_box(client.read(&mut buf).expect("read"))
            });
        });
    }
    group.finish();
}

fn blocks(c: &mut Criterion) {
    let mut group = group(c, "tls_read_exact_64KiB");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    for (id, tls) in [(TLS, true), (PLAIN, false)] {
        let mut ends = None;
        group.bench_function(id, |b| {
            let (client, writer) = ends.get_or_insert_with(|| {
                let (client, server) = pair(tls);
                (client, Writer::spawn(server))
            });
            b.iter_custom(|n| {
                let started = Instant::now();
                writer.jobs.as_ref().expect("running").send(n).expect("job");
                for _ in 0..n {
                    black_box(client.read_exact(BLOCK).expect("read_exact"));
                }
                started.elapsed()
            });
        });
        if let Some((client, writer)) = ends {
            drop(writer);
            client.close();
        }
    }
    group.finish();
}

criterion_group!(benches, round_trip, floor, blocks);
criterion_main!(benches);
