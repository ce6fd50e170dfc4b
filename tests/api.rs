//! Compile-time checks of the public API's promises.

use ts_tcpip::*;

fn send_sync<T: Send + Sync + 'static>() {}

#[test]
fn handles_and_errors_are_send_and_sync() {
    send_sync::<OneClientServer>();
    send_sync::<OneClientReadLoopServer>();
    send_sync::<Client>();
    send_sync::<Error>();
    send_sync::<ConnectionEvent>();
    send_sync::<Stats>();
}

#[test]
fn builders_can_move_to_another_thread() {
    fn send<T: Send + 'static>() {}
    send::<ServerBuilder>();
    send::<ClientBuilder>();
    send::<ReadLoopServerBuilder>();
}

#[test]
fn binary_struct_is_object_safe() {
    let _: Option<&dyn BinaryStruct> = None;
}

#[test]
fn constants_match_the_python_package() {
    assert_eq!(DEFAULT_TERMINATOR, b"\r\n");
    assert_eq!(DEFAULT_ENCODING, Encoding::Utf8);
    assert_eq!(DEFAULT_MONITOR_CONNECTION_INTERVAL.as_millis(), 100);
    assert_eq!(DEFAULT_READ_LIMIT, 65_536);
    assert_eq!(HEARTBEAT, b"heartbeat");
    assert_eq!(
        (LOCALHOST_IPV4, LOCALHOST_IPV6, DEFAULT_LOCALHOST),
        ("127.0.0.1", "::1", "127.0.0.1")
    );
    assert_eq!(
        (
            KEEPALIVE_TIME.as_secs(),
            KEEPALIVE_PROBES,
            KEEPALIVE_INTERVAL.as_secs()
        ),
        (60, 4, 15)
    );
    assert_eq!(DEFAULT_MAX_HEARTBEAT_INTERVAL.as_secs(), 10);
}

/// A program's own error type, glob-imported as a program's prelude
/// would be.
mod own {
    #[derive(Debug, PartialEq)]
    pub struct Error(pub String);
    pub type Result<T> = std::result::Result<T, Error>;
}

/// `use ts_tcpip::prelude::*` beside a glob of the program's own `Error`
/// and `Result`: were they in the prelude too, every use of them here
/// would be ambiguous (E0659) and this would not compile.
mod prelude_beside_own_globs {
    use super::own::*;
    use ts_tcpip::prelude::*;

    pub fn ping(link: &impl Link) -> Result<String> {
        link.write_str("ping").map_err(|e| Error(e.to_string()))?;
        link.read_str().map_err(|e| Error(e.to_string()))
    }
}

/// With the prelude alone, `Result` is still the standard library's
/// (two type parameters), and a local alias is the module's own.
mod prelude_alone {
    use ts_tcpip::prelude::*;

    pub fn parse(text: &str) -> Result<Encoding, String> {
        text.parse().map_err(|e: ts_tcpip::Error| e.to_string())
    }

    pub mod with_an_alias {
        use ts_tcpip::prelude::*;
        pub type Result<T> = std::result::Result<T, String>;

        pub fn terminator(link: &impl Link) -> Result<Vec<u8>> {
            Ok(link.terminator())
        }
    }
}

#[test]
fn the_prelude_brings_the_api_and_not_error_or_result() {
    use std::time::Duration;
    use ts_tcpip::prelude::*;
    assert_eq!(prelude_alone::parse("utf-8"), Ok(Encoding::Utf8));
    let server: OneClientServer = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .start()
        .expect("server");
    let builder: ClientBuilder = Client::builder().port(server.port());
    let client: Client = builder.connect().expect("client");
    server
        .wait_connected(Duration::from_secs(10))
        .expect("connected");
    assert_eq!(
        prelude_alone::with_an_alias::terminator(&client),
        Ok(DEFAULT_TERMINATOR.to_vec())
    );
    client.set_read_timeout(Some(Duration::from_secs(10)));
    let replier = std::thread::spawn(move || {
        let line = server.read_str().expect("ping");
        server.write_str(&format!("{line} pong")).expect("pong");
        server
    });
    assert_eq!(
        prelude_beside_own_globs::ping(&client),
        Ok("ping pong".to_owned())
    );
    drop(replier.join().expect("replier"));
    // The rest of what the prelude names.
    let _: fn() -> ServerBuilder = OneClientServer::builder;
    let _: fn() -> ReadLoopServerBuilder = OneClientReadLoopServer::builder;
    let _: Option<(Backoff, Stats, ConnectionEvent, DisconnectReason)> = None;
    let _: Option<&dyn BinaryStruct> = None;
    fn handler<H: ReadLoopHandler>(_: &H) {}
    handler(&|_: &OneClientReadLoopServer| Ok(()));
    assert_eq!(
        (
            DEFAULT_ENCODING,
            DEFAULT_LOCALHOST,
            LOCALHOST_IPV6,
            HEARTBEAT
        ),
        (Encoding::Utf8, "127.0.0.1", "::1", &b"heartbeat"[..])
    );
    assert_eq!(
        (DEFAULT_READ_LIMIT, DEFAULT_MONITOR_CONNECTION_INTERVAL),
        (65_536, Duration::from_millis(100))
    );
}
