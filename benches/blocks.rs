//! 64 KiB blocks from a writer thread to a reader, on ts-tcpip and on plain
//! std::net, in interleaved runs.
//!
//! ```text
//! cargo bench --bench blocks [-- RUNS [BLOCKS]]    # default 20 2000
//! ```
//!
//! Two threads on a small VM make this workload bimodal (each side, run to
//! run, lands near 18 µs or far above, as the scheduler wakes the writer),
//! so one criterion run of each side, one after the other, can compare a
//! lucky run with an unlucky one. Alternating the two many times and
//! comparing medians and minimums says which is faster.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ts_tcpip::*;

const BLOCK: usize = 64 * 1024;

/// Microseconds per block through ts-tcpip.
fn crate_run(blocks: usize, block: &[u8]) -> Result<f64> {
    let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
    let client = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(server.port())
        .connect()?;
    server.wait_connected(Duration::from_secs(5))?;
    let started = Instant::now();
    std::thread::scope(|s| {
        let writer = s.spawn(|| (0..blocks).try_for_each(|_| server.write(block)));
        for _ in 0..blocks {
            std::hint::black_box(client.read_exact(BLOCK)?);
        }
        writer.join().expect("writer thread")
    })?;
    Ok(per_block(started, blocks))
}

/// Microseconds per block through BufReader + write_all.
fn plain_run(blocks: usize, block: &[u8]) -> std::io::Result<f64> {
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0))?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let mut reader = BufReader::new(client);
    let started = Instant::now();
    std::thread::scope(|s| {
        let writer = s.spawn(move || (0..blocks).try_for_each(|_| server.write_all(block)));
        for _ in 0..blocks {
            let mut got = vec![0; BLOCK];
            reader.read_exact(&mut got)?;
            std::hint::black_box(got);
        }
        writer.join().expect("writer thread")
    })?;
    Ok(per_block(started, blocks))
}

fn per_block(started: Instant, blocks: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / blocks as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    match xs.len() % 2 {
        1 => xs[mid],
        _ => (xs[mid - 1] + xs[mid]) / 2.0,
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench` to every bench: skip it.
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(|a| a.parse::<usize>());
    let runs = args.next().transpose()?.unwrap_or(20).max(1);
    let blocks = args.next().transpose()?.unwrap_or(2000).max(1);
    let block: Vec<u8> = (0..BLOCK).map(|i| i as u8).collect();
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(crate_run(blocks, &block)?);
        plain.push(plain_run(blocks, &block)?);
    }
    let min = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    let (our_min, plain_min) = (min(&ours), min(&plain));
    let (our_median, plain_median) = (median(ours), median(plain));
    println!("{runs} interleaved runs of {blocks} blocks of 64 KiB, µs per block:");
    println!("| | ts-tcpip | plain std::net | throughput ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| median of runs | {our_median:.1} | {plain_median:.1} | {:.2} |",
        plain_median / our_median
    );
    println!(
        "| best run | {our_min:.1} | {plain_min:.1} | {:.2} |",
        plain_min / our_min
    );
    Ok(())
}
