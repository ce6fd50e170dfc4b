//! write_from / read_into beside a hand-written byteorder version of the
//! same struct: the pure encode/decode, and a round trip over loopback.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use byteorder::{BigEndian, ByteOrder};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ts_tcpip::*;

binary_struct! {
    #[derive(Debug, Default, Clone, Copy, PartialEq)]
    #[byte_order(big)]
    struct Telemetry { flag: bool, counter: u32, position: [f64; 3], status: i8, code: u64 }
}

const SIZE: usize = 38;

/// The same layout written by hand with byteorder.
fn encode_by_hand(t: &Telemetry, out: &mut [u8; SIZE]) {
    out[0] = u8::from(t.flag);
    BigEndian::write_u32(&mut out[1..5], t.counter);
    for (i, p) in t.position.iter().enumerate() {
        BigEndian::write_f64(&mut out[5 + 8 * i..13 + 8 * i], *p);
    }
    out[29] = t.status as u8;
    BigEndian::write_u64(&mut out[30..38], t.code);
}

fn decode_by_hand(bytes: &[u8; SIZE]) -> Option<Telemetry> {
    let flag = match bytes[0] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let mut position = [0.0; 3];
    for (i, p) in position.iter_mut().enumerate() {
        *p = BigEndian::read_f64(&bytes[5 + 8 * i..13 + 8 * i]);
    }
    Some(Telemetry {
        flag,
        counter: BigEndian::read_u32(&bytes[1..5]),
        position,
        status: bytes[29] as i8,
        code: BigEndian::read_u64(&bytes[30..38]),
    })
}

fn sample() -> Telemetry {
    Telemetry {
        flag: true,
        counter: 4_000_000_000,
        position: [1.5, -2.25, 1e300],
        status: -7,
        code: 42,
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("struct_codec");
    let t = sample();
    let mut buf = Vec::with_capacity(SIZE);
    g.bench_function("ts_tcpip", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&t).encode(&mut buf);
            let mut back = Telemetry::default();
            back.decode(black_box(&buf)).expect("decodes");
            back
        })
    });
    let mut raw = [0u8; SIZE];
    g.bench_function("byteorder_by_hand", |b| {
        b.iter(|| {
            encode_by_hand(black_box(&t), &mut raw);
            decode_by_hand(black_box(&raw)).expect("decodes")
        })
    });
    g.finish();
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("struct_round_trip");
    g.measurement_time(Duration::from_secs(3));
    let t = sample();

    let server = OneClientServer::builder().start().expect("server");
    let client = Client::builder()
        .port(server.port())
        .connect()
        .expect("client");
    server
        .wait_connected(Duration::from_secs(5))
        .expect("connected");
    g.bench_function("ts_tcpip", |b| {
        let mut back = Telemetry::default();
        b.iter(|| {
            client.write_from(&[&t]).expect("write");
            server.read_into(&mut back).expect("read");
        })
    });

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut writer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    writer.set_nodelay(true).expect("nodelay");
    accepted.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(accepted);
    g.bench_function("std_net_by_hand", |b| {
        let mut raw = [0u8; SIZE];
        b.iter(|| {
            encode_by_hand(&t, &mut raw);
            writer.write_all(&raw).expect("write");
            reader.read_exact(&mut raw).expect("read");
            decode_by_hand(&raw).expect("decodes")
        })
    });
    g.finish();
}

criterion_group!(benches, codec, round_trip);
criterion_main!(benches);
