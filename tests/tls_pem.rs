//! TLS from PEM files (feature `tls`): the setters of both builders read
//! alike (a server's `tls_from_pem(cert, key)` and `tls_client_ca(ca)`, a
//! client's `tls_from_pem(ca)`, `tls_identity(cert, key)` and
//! `tls_server_name(name)`, each path anything that makes a `PathBuf`),
//! the server name defaults to the host, and settings that cannot work are
//! refused before any socket exists.
#![cfg(all(feature = "tls", not(target_vendor = "apple")))]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::pki::{
    assert_handshake_failed, assert_refused_by_mutual_tls, client_config, server_config, Ca,
    Identity, TempDir,
};
use support::{watchdog, WAIT};
use ts_tcpip::prelude::*;
use ts_tcpip::Error;

/// A CA, a server certificate for loopback, a client certificate, and
/// all of them as PEM files.
struct Files {
    _dir: TempDir,
    ca: Ca,
    server: Identity,
    ca_pem: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn files(tag: &str) -> Files {
    let ca = Ca::new("ts-tcpip test CA");
    let server = ca.issue(&["localhost", "127.0.0.1"]);
    let client = ca.issue(&["controller"]);
    let dir = TempDir::new(tag);
    Files {
        ca_pem: dir.write("ca.pem", ca.pem()),
        server_cert: dir.write("server.pem", &server.cert_pem),
        server_key: dir.write("server.key", &server.key_pem),
        client_cert: dir.write("client.pem", &client.cert_pem),
        client_key: dir.write("client.key", &client.key_pem),
        _dir: dir,
        ca,
        server,
    }
}

fn exchange(server: &OneClientServer, client: &Client, tag: &str) {
    server.wait_connected(WAIT).expect("served");
    client.write_str(tag).expect("write");
    assert_eq!(server.read_str().expect("read"), tag);
}

#[test]
fn pem_files_make_a_mutual_tls_link() {
    let _w = watchdog(Duration::from_secs(60));
    let f = files("pem-mutual");
    let server = OneClientServer::builder()
        .tls_from_pem(&f.server_cert, f.server_key.as_path())
        .tls_client_ca(f.ca_pem.display().to_string())
        .start()
        .expect("server from PEM files");
    let client = Client::builder()
        .port(server.port())
        .tls_from_pem(f.ca_pem.clone())
        .tls_identity(&f.client_cert, &f.client_key)
        .tls_server_name("localhost")
        .connect()
        .expect("client from PEM files");
    exchange(&server, &client, "mutual");
    client.close();

    // Without its certificate, the client is turned away.
    let server_calls_before = server.stats().connections_rejected;
    let refused = Client::builder()
        .port(server.port())
        .tls_from_pem(&f.ca_pem)
        .connect()
        .and_then(|c| c.read_str());
    assert_refused_by_mutual_tls(&refused.expect_err("no client certificate"));
    let deadline = std::time::Instant::now() + WAIT;
    while server.stats().connections_rejected == server_calls_before {
        assert!(std::time::Instant::now() < deadline, "not counted");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server is verified for the host unless a name is given: a
/// certificate for `127.0.0.1` passes with no name, and the same
/// certificate fails for a name it does not hold.
#[test]
fn the_server_name_defaults_to_the_host() {
    let _w = watchdog(Duration::from_secs(60));
    let f = files("pem-name");
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .tls_from_pem(&f.server_cert, &f.server_key)
        .start()
        .expect("server");
    let client = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(server.port())
        .tls_from_pem(&f.ca_pem)
        .connect()
        .expect("verified for the host, 127.0.0.1");
    exchange(&server, &client, "by host");
    client.close();

    let wrong = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(server.port())
        .tls(client_config(&f.ca, None))
        .tls_server_name("elsewhere.example")
        .connect()
        .expect_err("the certificate does not hold that name");
    assert_handshake_failed(&wrong, "not valid for name");
}

#[test]
fn tls_settings_that_cannot_work_are_refused_before_any_socket() {
    let _w = watchdog(Duration::from_secs(60));
    let f = files("pem-refused");
    let refusal = |what: &str, result: ts_tcpip::Result<()>, needle: &str| match result {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains(needle), "{what}: {msg}"),
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    };
    let server = || OneClientServer::builder();
    refusal(
        "a client CA on a plain server",
        server().tls_client_ca(&f.ca_pem).start().map(drop),
        "tls_client_ca",
    );
    refusal(
        "a client CA beside a configuration of one's own",
        server()
            .tls(server_config(&f.server, None))
            .tls_client_ca(&f.ca_pem)
            .start()
            .map(drop),
        "tls_client_ca",
    );
    refusal(
        "a missing certificate file",
        server()
            .tls_from_pem(f.ca_pem.with_file_name("nope.pem"), &f.server_key)
            .start()
            .map(drop),
        "nope.pem",
    );
    // Port 1 is never reached: each is refused before connecting.
    let client = || Client::builder().port(1);
    refusal(
        "a client identity on a plain client",
        client()
            .tls_identity(&f.client_cert, &f.client_key)
            .connect()
            .map(drop),
        "tls_identity",
    );
    refusal(
        "a server name on a plain client",
        client().tls_server_name("localhost").connect().map(drop),
        "tls_server_name",
    );
    refusal(
        "a client identity beside a configuration of one's own",
        client()
            .tls(client_config(&f.ca, None))
            .tls_identity(&f.client_cert, &f.client_key)
            .connect()
            .map(drop),
        "tls_identity",
    );
    refusal(
        "a missing CA file",
        client()
            .tls_from_pem(f.ca_pem.with_file_name("nope.pem"))
            .connect_in_background()
            .map(drop),
        "nope.pem",
    );
}
