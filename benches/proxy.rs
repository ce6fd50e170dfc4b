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
//!
//! Beside them, the floor: the same workload through the least a
//! forwarder can be, a thread each way that `read`s and `write_all`s
//! (TCP_NODELAY on both legs) and nothing else. What the floor adds to the
//! direct link is the cost of the hand-offs between threads on this
//! machine; what the proxy adds to the floor is its own.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion};
use crossbeam_channel::Sender;
use ts_tcpip::testing::FaultProxy;
use ts_tcpip::*;

/// 38 characters: 40 bytes with the terminator.
const LINE_40: &str = "move 1.500000 2.500000 3.500000 4.50000";

/// How the client reaches the server, by bench id.
const PATHS: [(&str, Path); 3] = [
    ("direct", Path::Direct),
    ("proxied", Path::Proxied),
    ("floor", Path::Floor),
];

#[derive(Clone, Copy)]
enum Path {
    Direct,
    /// Through a `FaultProxy` with no fault on.
    Proxied,
    /// Through a [`Floor`].
    Floor,
}

/// A client, a server, and what is between them (kept alive with them,
/// and dropped after them).
struct Pair {
    client: Client,
    server: Option<OneClientServer>,
    echo: Option<Echo>,
    _proxy: Option<FaultProxy>,
    _floor: Option<Floor>,
}

impl Pair {
    fn new(path: Path) -> Pair {
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .port(0)
            .start()
            .expect("server start");
        let upstream = server.local_addrs()[0];
        let proxy = matches!(path, Path::Proxied)
            .then(|| FaultProxy::start(upstream).expect("proxy start"));
        let floor = matches!(path, Path::Floor).then(|| Floor::start(upstream));
        let port = match (&proxy, &floor) {
            (Some(proxy), _) => proxy.port(),
            (_, Some(floor)) => floor.port,
            _ => server.port(),
        };
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
            _floor: floor,
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

/// The least a forwarder can be, for one connection: a thread each way
/// that reads and writes what it read.
struct Floor {
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Floor {
    fn start(upstream: SocketAddr) -> Floor {
        let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let thread = std::thread::spawn(move || {
            let (client, _) = listener.accept().expect("accept");
            let server = TcpStream::connect(upstream).expect("connect upstream");
            client.set_nodelay(true).expect("TCP_NODELAY");
            server.set_nodelay(true).expect("TCP_NODELAY");
            let back = {
                let (client, server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(server, client))
            };
            pump(client, server);
            back.join().expect("the pump back");
        });
        Floor {
            port,
            thread: Some(thread),
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        // The pumps end once the client and the server have closed: the
        // pair drops them before this.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies `from` to `to` until either ends.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
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
    for (id, path) in PATHS {
        let mut pair = None;
        group.bench_function(id, |b| {
            let pair = pair.get_or_insert_with(|| Pair::new(path));
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
    for (id, path) in PATHS {
        let mut pair = None;
        group.bench_function(id, |b| {
            let pair = pair.get_or_insert_with(|| Pair::new(path));
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
