//! The echo example, driven as Python's test_example drives its example.

#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;

use std::time::Duration;

use ts_tcpip::*;

#[test]
fn echo_example_echoes_lines_in_every_setting() {
    let settings = [
        (Encoding::Utf8, b"\r\n".to_vec()),
        (Encoding::Utf16, b"\n".to_vec()),
        (Encoding::Latin1, b"XYZZY".to_vec()),
    ];
    for (encoding, terminator) in settings {
        let options = echo_server::Options {
            port: 0,
            host: LOCALHOST_IPV4.to_owned(),
            encoding,
            terminator: terminator.clone(),
        };
        let (quit_tx, quit_rx) = crossbeam_channel::bounded(1);
        let server = echo_server::start(&options, move || {
            let _ = quit_tx.try_send(());
        })
        .expect("echo server starts");
        let client = Client::builder()
            .port(server.port())
            .encoding(encoding)
            .terminator(terminator)
            .read_timeout(Some(Duration::from_secs(10)))
            .connect()
            .expect("client connects");
        for line in ["hello", "", "café au lait", "quit"] {
            client.write_str(line).expect("write");
            assert_eq!(client.read_str().expect("echo"), line, "{encoding}");
        }
        quit_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("quit seen");
        server.close();
    }
}
