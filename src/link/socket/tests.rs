//! Addresses in errors, keepalive timing, the timeout kinds.

use super::*;

#[test]
fn keepalive_probes_fit_in_the_dead_peer_bound() {
    let s = Duration::from_secs;
    assert_eq!(keepalive_timing(s(10)), (s(5), s(1)));
    assert_eq!(keepalive_timing(s(120)), (s(60), s(15)));
    // Below the kernel's resolution: whole seconds, at least one.
    assert_eq!(keepalive_timing(Duration::from_millis(500)), (s(1), s(1)));
    for bound in 8..300 {
        let (time, interval) = keepalive_timing(s(bound));
        assert!(time + interval * KEEPALIVE_PROBES <= s(bound), "{bound}");
    }
}

#[test]
fn a_refused_connect_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let err = connect("127.0.0.1", port, Duration::from_secs(5)).expect_err("refused");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn a_port_in_use_names_the_address() {
    let first = bind_listeners(&["127.0.0.1:0".parse().expect("addr")], 1, false).expect("bind");
    let addr = first[0]
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("ip");
    let err = bind_listeners(&[addr], 1, false).expect_err("in use");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
