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
