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
        client = client.tls(pki::client_config(&ca, None), "localhost");
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

criterion_group!(benches, round_trip, blocks);
criterion_main!(benches);
