//! What the test kit's `FaultProxy` adds to a loopback round trip with no
//! fault on: the same workload on a direct link and through the proxy, in
//! one criterion group, so the difference holds on a noisy machine.
//!
//! ```text
//! cargo bench --bench proxy && python3 benches/ratios.py
//! ```
//!
//! The workload is `benches/link.rs`'s round trip: a 40-byte line (38
//! characters and `\r\n`) from a `Client` to a `OneClientServer` and back,
//! with the crate's defaults (TCP_NODELAY), either on one thread (write,
//! read on the other end, write back, read) or with the server echoing on
//! a thread of its own. Through the proxy each direction also crosses the
//! proxy's forwarding thread for that direction: one wake-up, one read
//! and one write each way.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion};
use crossbeam_channel::Sender;
use ts_tcpip::testing::FaultProxy;
use ts_tcpip::*;

/// 38 characters: 40 bytes with the terminator.
const LINE_40: &str = "move 1.500000 2.500000 3.500000 4.50000";

/// A client and a server, directly or through a proxy (kept alive here).
struct Pair {
    client: Client,
    server: Option<OneClientServer>,
    echo: Option<Echo>,
    _proxy: Option<FaultProxy>,
}

impl Pair {
    fn new(proxied: bool) -> Pair {
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .port(0)
            .start()
            .expect("server start");
        let proxy =
            proxied.then(|| FaultProxy::start(server.local_addrs()[0]).expect("proxy start"));
        let port = proxy.as_ref().map_or(server.port(), FaultProxy::port);
        let client = Client::builder()
            .host(LOCALHOST_IPV4)
            .port(port)
            .connect()
            .expect("client connect");
        server
            .wait_connected(Duration::from_secs(5))
            .expect("server sees the client");
        Pair {
            client,
            server: Some(server),
            echo: None,
            _proxy: proxy,
        }
    }

    fn server(&self) -> &OneClientServer {
        self.server
            .as_ref()
            .expect("the server is on the echo thread")
    }

    /// The thread that echoes, started the first time it is asked for.
    fn echo(&mut self) -> &Echo {
        if self.echo.is_none() {
            let server = self.server.take().expect("a server");
            self.echo = Some(Echo::spawn(server));
        }
        self.echo.as_ref().expect("just set")
    }
}

/// A thread owning the server, echoing `n` lines per job.
struct Echo {
    jobs: Option<Sender<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn spawn(server: OneClientServer) -> Echo {
        let (jobs, rx) = crossbeam_channel::unbounded::<u64>();
        let thread = std::thread::spawn(move || {
            for n in rx {
                for _ in 0..n {
                    let line = server.read_str().expect("read_str");
                    server.write_str(&line).expect("write_str");
                }
            }
        });
        Echo {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("echo thread");
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

fn one_thread(c: &mut Criterion) {
    let mut group = group(c, "proxy_round_trip_1_thread");
    for (id, proxied) in [("direct", false), ("proxied", true)] {
        let mut pair = None;
        group.bench_function(id, |b| {
            let pair = pair.get_or_insert_with(|| Pair::new(proxied));
            b.iter(|| {
                pair.client.write_str(LINE_40).expect("write_str");
                let line = pair.server().read_str().expect("read_str");
                pair.server().write_str(&line).expect("write_str");
                black_box(pair.client.read_str().expect("read_str"))
            });
        });
    }
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = group(c, "proxy_round_trip_2_threads");
    for (id, proxied) in [("direct", false), ("proxied", true)] {
        let mut pair = None;
        group.bench_function(id, |b| {
            let pair = pair.get_or_insert_with(|| Pair::new(proxied));
            b.iter_custom(|n| {
                let started = Instant::now();
                pair.echo()
                    .jobs
                    .as_ref()
                    .expect("running")
                    .send(n)
                    .expect("echo alive");
                for _ in 0..n {
                    pair.client.write_str(LINE_40).expect("write_str");
                    black_box(pair.client.read_str().expect("read_str"));
                }
                started.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, one_thread, two_threads);
criterion_main!(benches);
