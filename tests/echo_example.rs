//! The examples echo_server and line_client: driven as Python's
//! test_example drives its example (their `start`, `connect` and `talk`
//! functions), their command lines parsed as their usage lines give them, and,
//! when cargo has built the example binaries (as `cargo test` does), run
//! as processes with exactly those command lines.

// The two examples are two programs, each with its own copy of the
// command-line helpers they share (examples/cli); this test loads both,
// and the helpers once more for itself.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)]
#[path = "../examples/cli/mod.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;
#[allow(dead_code)]
#[path = "../examples/line_client.rs"]
mod line_client;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{watchdog, WAIT};
use ts_tcpip::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn quit_channel() -> (impl Fn() + Send + 'static, crossbeam_channel::Receiver<()>) {
    let (quit_tx, quit_rx) = crossbeam_channel::bounded(1);
    (
        move || {
            let _ = quit_tx.try_send(());
        },
        quit_rx,
    )
}

/// `got` is what a client sees once the server has closed its connection:
/// end of file (nothing of a reply), a reset or a broken pipe, or
/// `NotConnected` once its monitor has seen the close. Never a timeout.
#[track_caller]
fn assert_closed_by_the_server<T: std::fmt::Debug>(got: Result<T>) {
    match got {
        Err(Error::IncompleteRead(e)) if e.partial.is_empty() => {}
        Err(Error::ConnectionLost(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) => {}
        Err(Error::NotConnected) => {}
        other => panic!("expected the server to have closed the connection, got {other:?}"),
    }
}

#[test]
fn echo_example_echoes_lines_in_every_setting() {
    let _w = watchdog(Duration::from_secs(60));
    let settings = [
        (Encoding::Utf8, b"\r\n".to_vec()),
        (Encoding::Utf16, b"\n".to_vec()),
        (Encoding::Latin1, b"XYZZY".to_vec()),
    ];
    for (encoding, terminator) in settings {
        let options = echo_server::Options {
            encoding,
            terminator: terminator.clone(),
            ..echo_server::Options::new(0)
        };
        let (on_quit, quit_rx) = quit_channel();
        let server = echo_server::start(&options, on_quit).expect("echo server starts");
        let client = Client::builder()
            .port(server.port())
            .encoding(encoding)
            .terminator(terminator)
            .read_timeout(Some(WAIT))
            .connect()
            .expect("client connects");
        for line in ["hello", "", "café au lait", "quit"] {
            client.write_str(line).expect("write");
            assert_eq!(client.read_str().expect("echo"), line, "{encoding}");
        }
        quit_rx.recv_timeout(WAIT).expect("quit seen");
        server.close();
    }
}

#[test]
fn echo_server_parses_its_command_line() {
    let o = echo_server::parse_args(args("5000")).expect("port alone");
    assert_eq!(
        (o.port, o.host.as_str(), o.encoding, o.terminator.as_slice()),
        (5000, LOCALHOST_IPV4, Encoding::Utf8, &b"\r\n"[..])
    );
    assert!(o.tls.is_none());
    let o = echo_server::parse_args(args(
        r"5001 --host 0.0.0.0 --encoding utf-16 --terminator \n",
    ))
    .expect("every plain option");
    assert_eq!(
        (o.port, o.host.as_str(), o.encoding, o.terminator.as_slice()),
        (5001, "0.0.0.0", Encoding::Utf16, &b"\n"[..])
    );
    let o = echo_server::parse_args(args("5002 --allow 127.0.0.0/8 --replace --allow ::1/128"))
        .expect("who may connect");
    assert_eq!(
        (o.allow, o.replace),
        (vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()], true)
    );
    let o = echo_server::parse_args(args(r"0 --terminator \r\n --encoding latin-1"))
        .expect("any order");
    assert_eq!(
        (o.encoding, o.terminator.as_slice()),
        (Encoding::Latin1, &b"\r\n"[..])
    );
    for bad in [
        "notaport",
        "5000 5001",
        "5000 --host",
        "5000 --encoding klingon",
        "5000 --bogus 1",
        "5000 --cert c.pem",
        "5000 --key k.pem",
        "5000 --client-ca ca.pem",
        "5000 --terminator",
        "5000 --allow",
    ] {
        assert!(
            echo_server::parse_args(args(bad)).is_err(),
            "{bad:?} refused"
        );
    }
}

/// `--terminator` in its escaped form, read left to right: an escaped
/// backslash before an `n` is a backslash and an `n`, not a newline.
#[test]
fn both_read_the_terminator_in_its_escaped_form() {
    assert_eq!(cli::unescape("\\r\\n"), b"\r\n");
    assert_eq!(cli::unescape("\\n"), b"\n");
    assert_eq!(cli::unescape("\\t;"), b"\t;");
    assert_eq!(cli::unescape("\\\\n"), b"\\n");
    assert_eq!(cli::unescape("a\\qb\\"), b"a\\qb\\");
    for line in [
        "5000 --terminator \\\\n",
        "localhost 5000 --terminator \\\\n",
    ] {
        let terminator = if line.starts_with("5000") {
            echo_server::parse_args(args(line)).map(|o| o.terminator)
        } else {
            line_client::parse_args(args(line)).map(|o| o.terminator)
        };
        assert_eq!(terminator.expect("parsed"), b"\\n", "{line}");
    }
}

#[test]
fn line_client_parses_its_command_line() {
    let o = line_client::parse_args(args("localhost 5000")).expect("host and port");
    assert_eq!(
        (o.host.as_str(), o.port, o.encoding, o.terminator.as_slice()),
        ("localhost", 5000, Encoding::Utf8, &b"\r\n"[..])
    );
    assert!(o.tls.is_none());
    let o = line_client::parse_args(args(r"127.0.0.1 5001 --encoding utf-16 --terminator \n"))
        .expect("every plain option");
    assert_eq!(
        (o.host.as_str(), o.port, o.encoding, o.terminator.as_slice()),
        ("127.0.0.1", 5001, Encoding::Utf16, &b"\n"[..])
    );
    for bad in [
        "",
        "localhost",
        "localhost notaport",
        "localhost 5000 extra",
        "localhost 5000 --encoding",
        "localhost 5000 --bogus x",
        "localhost 5000 --cert c.pem --key k.pem",
        "localhost 5000 --server-name x",
        "localhost 5000 --ca ca.pem --cert c.pem",
    ] {
        assert!(
            line_client::parse_args(args(bad)).is_err(),
            "{bad:?} refused"
        );
    }
}

#[cfg(feature = "tls")]
#[test]
fn both_parse_the_tls_options() {
    let o = echo_server::parse_args(args(
        "5000 --cert s.pem --key s.key --client-ca ca.pem --host ::1",
    ))
    .expect("mutual TLS");
    let tls = o.tls.expect("TLS");
    assert_eq!(
        (tls.cert, tls.key, tls.client_ca),
        (
            "s.pem".into(),
            "s.key".into(),
            Some(PathBuf::from("ca.pem"))
        )
    );
    let o = echo_server::parse_args(args("5000 --key s.key --cert s.pem")).expect("TLS");
    assert!(o.tls.expect("TLS").client_ca.is_none());

    let o = line_client::parse_args(args(
        "127.0.0.1 5000 --ca ca.pem --cert c.pem --key c.key --server-name localhost",
    ))
    .expect("mutual TLS");
    let tls = o.tls.expect("TLS");
    assert_eq!(tls.ca, PathBuf::from("ca.pem"));
    assert_eq!(tls.identity, Some(("c.pem".into(), "c.key".into())));
    assert_eq!(tls.server_name.as_deref(), Some("localhost"));
    let o = line_client::parse_args(args("localhost 5000 --ca ca.pem")).expect("TLS");
    let tls = o.tls.expect("TLS");
    assert!(tls.identity.is_none() && tls.server_name.is_none());
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_options_without_the_feature_say_how_to_build_it() {
    for line in [
        "5000 --cert s.pem --key s.key",
        "5000 --cert s.pem --key s.key --client-ca ca.pem",
    ] {
        let e = echo_server::parse_args(args(line)).err().expect("refused");
        assert!(
            e.contains(
                "built without the tls feature: cargo run --features tls --example echo_server"
            ),
            "{e}"
        );
    }
    let e = line_client::parse_args(args("localhost 5000 --ca ca.pem"))
        .err()
        .expect("refused");
    assert!(
        e.contains("built without the tls feature: cargo run --features tls --example line_client"),
        "{e}"
    );
}

/// line_client's `talk` against echo_server's `start`: one reply line per
/// input line, nothing else on the output; the client closes at the end.
#[test]
fn line_client_talks_to_the_echo_server() {
    let _w = watchdog(Duration::from_secs(60));
    for (encoding, terminator) in [(Encoding::Utf8, "\\r\\n"), (Encoding::Utf16, "\\n")] {
        let server_options = echo_server::Options {
            encoding,
            terminator: cli::unescape(terminator),
            ..echo_server::Options::new(0)
        };
        let (on_quit, quit_rx) = quit_channel();
        let server = echo_server::start(&server_options, on_quit).expect("echo server");
        let options = line_client::Options {
            encoding,
            terminator: cli::unescape(terminator),
            ..line_client::Options::new(LOCALHOST_IPV4, server.port())
        };
        let client = line_client::connect(&options).expect("connects");
        let mut output = Vec::new();
        line_client::talk(
            &client,
            &b"hello\r\n\ncaf\xc3\xa9 au lait\nquit\n"[..],
            &mut output,
        )
        .expect("talks");
        assert_eq!(
            String::from_utf8(output).expect("UTF-8"),
            "hello\n\ncafé au lait\nquit\n",
            "{encoding}"
        );
        quit_rx.recv_timeout(WAIT).expect("quit seen");
        server.close();
    }
}

/// `--json STYLE` on both: the echo server reads each line with
/// `read_json` and writes it back in the style; line_client sends each
/// stdin line as its value and prints each reply in the style. Python's
/// NaN and Infinity go through, keys keep their order; in the Python
/// style the printed line is the one `json.dumps` wrote.
#[test]
fn line_client_and_the_echo_server_echo_json_in_either_style() {
    let _w = watchdog(Duration::from_secs(60));
    let input = concat!(
        r#"{"z": NaN, "a": [Infinity, -Infinity, -0.0, 1e+16, 2.5e-08], "s": "caf\u00e9"}"#,
        "\n[1, -2, 18446744073709551615, true, null, {}]\n",
        "\"quit\"\n",
    );
    let cases = [
        (JsonStyle::Python, input.to_owned()),
        (
            JsonStyle::Compact,
            concat!(
                r#"{"z":null,"a":[null,null,-0.0,1e+16,2.5e-8],"s":"café"}"#,
                "\n[1,-2,18446744073709551615,true,null,{}]\n",
                "\"quit\"\n",
            )
            .to_owned(),
        ),
    ];
    for (style, want) in cases {
        let server_options = echo_server::Options {
            json: Some(style),
            ..echo_server::Options::new(0)
        };
        let (on_quit, quit_rx) = quit_channel();
        let server = echo_server::start(&server_options, on_quit).expect("echo server");
        let options = line_client::Options {
            json: Some(style),
            ..line_client::Options::new(LOCALHOST_IPV4, server.port())
        };
        let client = line_client::connect(&options).expect("connects");
        let mut output = Vec::new();
        line_client::talk_json(&client, style, input.as_bytes(), &mut output).expect("talks");
        assert_eq!(String::from_utf8(output).expect("UTF-8"), want, "{style:?}");
        quit_rx.recv_timeout(WAIT).expect("quit seen");
        server.close();
    }
}

#[test]
fn both_parse_the_json_option() {
    let o = echo_server::parse_args(args("0 --json python")).expect("python");
    assert_eq!(o.json, Some(JsonStyle::Python));
    let o = line_client::parse_args(args("h 1 --json compact")).expect("compact");
    assert_eq!(o.json, Some(JsonStyle::Compact));
    assert_eq!(
        line_client::parse_args(args("h 1")).expect("none").json,
        None
    );
    assert!(echo_server::parse_args(args("0 --json yaml")).is_err());
    assert!(line_client::parse_args(args("h 1 --json")).is_err());
}

/// `--allow`: a peer outside the ranges is closed at once, one inside is
/// served; `--replace`: a new client is served and the old one closed.
#[test]
fn echo_server_allows_and_replaces() {
    let _w = watchdog(Duration::from_secs(60));
    let echo = |client: &Client| -> Result<String> {
        client.write_str("hi")?;
        client.read_str()
    };
    let client_of = |port| {
        Client::builder()
            .port(port)
            .read_timeout(Some(WAIT))
            .connect()
            .expect("TCP connect")
    };
    for (ranges, served) in [
        (vec!["10.0.0.0/8"], false),
        (vec!["10.0.0.0/8", "127.0.0.0/8"], true),
    ] {
        let options = echo_server::Options {
            allow: ranges.iter().map(|r| r.to_string()).collect(),
            ..echo_server::Options::new(0)
        };
        let server = echo_server::start(&options, || {}).expect("echo server");
        let got = echo(&client_of(server.port()));
        if served {
            assert_eq!(got.expect("served"), "hi", "{ranges:?}");
        } else {
            assert_closed_by_the_server(got);
        }
        server.close();
    }
    let bad = echo_server::Options {
        allow: vec!["10.0.0.1/8".into()],
        ..echo_server::Options::new(0)
    };
    assert!(
        echo_server::start(&bad, || {}).is_err(),
        "a range with host bits"
    );

    let options = echo_server::Options {
        replace: true,
        ..echo_server::Options::new(0)
    };
    let server = echo_server::start(&options, || {}).expect("echo server");
    let old = client_of(server.port());
    assert_eq!(echo(&old).expect("old served"), "hi");
    let new = client_of(server.port());
    assert_eq!(echo(&new).expect("new served"), "hi");
    // The old client was closed.
    assert_closed_by_the_server(echo(&old));
    assert_eq!(echo(&new).expect("new still served"), "hi");
    server.close();
}

#[test]
fn line_client_fails_when_nothing_listens() {
    let port = {
        let listener = std::net::TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        listener.local_addr().expect("addr").port()
    };
    match line_client::connect(&line_client::Options::new(LOCALHOST_IPV4, port)) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[cfg(feature = "tls")]
mod tls {
    use super::support::pki::{assert_handshake_failed, assert_refused_by_mutual_tls, Ca, TempDir};
    use super::*;

    /// PEM files in a temporary directory: a CA, a server certificate for
    /// localhost and 127.0.0.1, a client certificate, and another CA with
    /// its own client certificate.
    pub struct Files {
        /// Removed on drop.
        pub _dir: TempDir,
        pub ca: PathBuf,
        pub server: (PathBuf, PathBuf),
        pub client: (PathBuf, PathBuf),
        pub other_ca: PathBuf,
        pub other_client: (PathBuf, PathBuf),
    }

    pub fn files() -> Files {
        let dir = TempDir::new("examples");
        let (ca, other) = (Ca::new("examples CA"), Ca::new("another CA"));
        let pair = |name: &str, id: support::pki::Identity| {
            (
                dir.write(&format!("{name}.pem"), &id.cert_pem),
                dir.write(&format!("{name}.key"), &id.key_pem),
            )
        };
        let server = pair("server", ca.issue(&["localhost", "127.0.0.1"]));
        let client = pair("client", ca.issue(&["controller"]));
        let other_client = pair("other-client", other.issue(&["intruder"]));
        Files {
            ca: dir.write("ca.pem", ca.pem()),
            other_ca: dir.write("other-ca.pem", other.pem()),
            server,
            client,
            other_client,
            _dir: dir,
        }
    }

    fn server(files: &Files, mutual: bool) -> OneClientReadLoopServer {
        let options = echo_server::Options {
            tls: Some(echo_server::TlsFiles {
                cert: files.server.0.clone(),
                key: files.server.1.clone(),
                client_ca: mutual.then(|| files.ca.clone()),
            }),
            ..echo_server::Options::new(0)
        };
        echo_server::start(&options, || {}).expect("TLS echo server")
    }

    fn client_options(
        port: u16,
        ca: &Path,
        identity: Option<&(PathBuf, PathBuf)>,
        server_name: Option<&str>,
    ) -> line_client::Options {
        line_client::Options {
            tls: Some(line_client::TlsFiles {
                ca: ca.to_path_buf(),
                identity: identity.cloned(),
                server_name: server_name.map(str::to_owned),
            }),
            ..line_client::Options::new(LOCALHOST_IPV4, port)
        }
    }

    /// What the echo server sends back to a line client, once the server
    /// has seen that client leave: the server serves one client at a
    /// time, and a client that came before it had read the last one's
    /// goodbye would be turned away.
    fn echoes(server: &OneClientReadLoopServer, options: &line_client::Options) -> Result<String> {
        let events = server.events();
        let client = line_client::connect(options)?;
        let mut output = Vec::new();
        let talked = line_client::talk(&client, &b"one\ncaf\xc3\xa9\n"[..], &mut output);
        drop(client);
        // A client refused (during the handshake, or at its first read
        // with TLS 1.3) was never the server's.
        talked?;
        loop {
            match events
                .recv_timeout(WAIT)
                .expect("the server sees the client leave")
            {
                ConnectionEvent::Disconnected { .. } => break,
                _ => continue,
            }
        }
        Ok(String::from_utf8(output).expect("UTF-8"))
    }

    #[test]
    fn line_client_talks_tls_to_the_echo_server() {
        let _w = watchdog(Duration::from_secs(60));
        let files = files();
        let server = server(&files, false);
        let port = server.port();
        // Verified for the host (an IP address in the certificate) or a name.
        for name in [None, Some("localhost")] {
            let got =
                echoes(&server, &client_options(port, &files.ca, None, name)).expect("TLS echo");
            assert_eq!(got, "one\ncafé\n", "{name:?}");
        }
        // A name the certificate does not hold, a CA that did not sign it.
        for (ca, name, reason) in [
            (
                &files.ca,
                Some("elsewhere"),
                "not valid for name \"elsewhere\"",
            ),
            (&files.other_ca, None, "UnknownIssuer"),
        ] {
            let e = echoes(&server, &client_options(port, ca, None, name)).expect_err("refused");
            assert_handshake_failed(&e, reason);
        }
        // The server kept serving.
        assert_eq!(
            echoes(&server, &client_options(port, &files.ca, None, None)).expect("still serving"),
            "one\ncafé\n"
        );
        server.close();
    }

    #[test]
    fn mutual_tls_wants_a_client_certificate_from_its_ca() {
        let _w = watchdog(Duration::from_secs(60));
        let files = files();
        let server = server(&files, true);
        let port = server.port();
        let with = |id| client_options(port, &files.ca, id, Some("localhost"));
        assert_eq!(
            echoes(&server, &with(Some(&files.client))).expect("mTLS"),
            "one\ncafé\n"
        );
        // Refused during the handshake or, with TLS 1.3, at the first read.
        assert_refused_by_mutual_tls(
            &echoes(&server, &with(None)).expect_err("no client certificate"),
        );
        assert_refused_by_mutual_tls(
            &echoes(&server, &with(Some(&files.other_client)))
                .expect_err("a certificate from another CA"),
        );
        assert_eq!(
            echoes(&server, &with(Some(&files.client))).expect("still serving"),
            "one\ncafé\n"
        );
        server.close();
    }
}

// ------------------------------------------------ the binaries themselves

/// The example binary `name`, if cargo built it beside this test's binary
/// (`cargo test` builds every example; `cargo test --test echo_example`
/// alone does not).
fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} not built (run `cargo test`, which builds the examples)",
            path.display()
        );
        None
    }
}

/// A child process killed if the test ends before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn wait_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// Starts `echo_server` with `args` and returns it with its port, read
/// from the line it prints once listening.
fn spawn_echo_server(binary: &Path, args: &[&str]) -> (Running, u16, BufReader<ChildStdout>) {
    let mut child = Running(
        Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("echo_server runs"),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("a line from echo_server");
    let port = line
        .trim_end()
        .strip_prefix("echo server listening on port ")
        .unwrap_or_else(|| panic!("the listening line, got {line:?}"))
        .parse()
        .expect("a port");
    (child, port, stdout)
}

/// Runs `line_client` with `args` and `input` on its stdin: its status,
/// stdout and stderr.
fn run_line_client(binary: &Path, args: &[&str], input: &str) -> (ExitStatus, String, String) {
    let mut child = Running(
        Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("line_client runs"),
    );
    let mut stdin = child.0.stdin.take().expect("stdin");
    // A client that fails to connect may exit before it reads: a broken
    // pipe then is no failure of the test.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let status = child.wait_within(WAIT).expect("line_client ends");
    let mut out = String::new();
    let mut err = String::new();
    let _ = child
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out);
    let _ = child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    (status, out, err)
}

#[test]
fn the_example_binaries_take_their_command_lines() {
    let _w = watchdog(Duration::from_secs(60));
    let (Some(server_bin), Some(client_bin)) =
        (example_binary("echo_server"), example_binary("line_client"))
    else {
        return;
    };
    let (mut server, port, _stdout) = spawn_echo_server(
        &server_bin,
        &[
            "0",
            "--host",
            "127.0.0.1",
            "--encoding",
            "utf-16",
            "--terminator",
            "\\n",
            "--allow",
            "127.0.0.0/8",
            "--allow",
            "::1/128",
            "--replace",
        ],
    );
    let port = port.to_string();
    let (status, out, err) = run_line_client(
        &client_bin,
        &[
            "127.0.0.1",
            &port,
            "--encoding",
            "utf-16",
            "--terminator",
            "\\n",
        ],
        "hello\ncafé au lait\n\n",
    );
    assert!(status.success(), "line_client: {status}, stderr {err:?}");
    assert_eq!(out, "hello\ncafé au lait\n\n");
    // quit stops the server, with status 0, within 5 s.
    let started = Instant::now();
    let (status, out, _) = run_line_client(
        &client_bin,
        &[
            "127.0.0.1",
            &port,
            "--encoding",
            "utf-16",
            "--terminator",
            "\\n",
        ],
        "quit\n",
    );
    assert!(status.success());
    assert_eq!(out, "quit\n");
    let status = server
        .wait_within(Duration::from_secs(5).saturating_sub(started.elapsed()))
        .expect("echo_server exits within 5 s of quit");
    assert!(status.success(), "echo_server: {status}");
    // Nothing listens now: an error on stderr, nothing on stdout, status 1.
    let (status, out, err) = run_line_client(&client_bin, &["127.0.0.1", &port], "hello\n");
    assert_eq!(status.code(), Some(1), "stderr {err:?}");
    assert_eq!(out, "");
    assert!(err.starts_with("line_client: "), "{err:?}");
    // A bad command line: usage, status 2.
    let (status, _, err) = run_line_client(&client_bin, &["127.0.0.1"], "");
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("usage: line_client HOST PORT"), "{err:?}");
}

#[cfg(feature = "tls")]
#[test]
fn the_example_binaries_speak_mutual_tls() {
    let _w = watchdog(Duration::from_secs(60));
    let (Some(server_bin), Some(client_bin)) =
        (example_binary("echo_server"), example_binary("line_client"))
    else {
        return;
    };
    let files = tls::files();
    let path = |p: &PathBuf| p.to_str().expect("a UTF-8 path").to_owned();
    let (ca, other_ca) = (path(&files.ca), path(&files.other_ca));
    let (server_cert, server_key) = (path(&files.server.0), path(&files.server.1));
    let (client_cert, client_key) = (path(&files.client.0), path(&files.client.1));
    // Binaries left from a build without the feature say so: skip then.
    let (_, _, err) = run_line_client(&client_bin, &["127.0.0.1", "9", "--ca", &ca], "");
    if err.contains("built without the tls feature") {
        eprintln!("skipped: the example binaries were built without the tls feature");
        return;
    }
    let server_args = [
        "0",
        "--cert",
        &server_cert,
        "--key",
        &server_key,
        "--client-ca",
        &ca,
    ];
    let (mut server, port, _stdout) = spawn_echo_server(&server_bin, &server_args);
    let port = port.to_string();
    let mtls = [
        "127.0.0.1",
        &port,
        "--ca",
        &ca,
        "--cert",
        &client_cert,
        "--key",
        &client_key,
        "--server-name",
        "localhost",
    ];
    let (status, out, err) = run_line_client(&client_bin, &mtls, "hello\n");
    assert!(status.success(), "line_client: {status}, stderr {err:?}");
    assert_eq!(out, "hello\n");
    // A server the client cannot verify: the handshake fails, status 1.
    let (status, out, err) = run_line_client(
        &client_bin,
        &[
            "127.0.0.1",
            &port,
            "--ca",
            &other_ca,
            "--cert",
            &client_cert,
            "--key",
            &client_key,
        ],
        "hello\n",
    );
    assert_eq!(
        (status.code(), out.as_str()),
        (Some(1), ""),
        "stderr {err:?}"
    );
    // With the reason, from under the crate's error.
    assert!(
        err.contains("TLS handshake") && err.contains("UnknownIssuer"),
        "{err:?}"
    );
    // No client certificate: refused (with TLS 1.3 after the client's
    // side of the handshake: the server's alert or a reset at the first
    // read, or "not connected" once the client's monitor saw the close),
    // said on stderr.
    let (status, out, err) =
        run_line_client(&client_bin, &["127.0.0.1", &port, "--ca", &ca], "hello\n");
    assert_eq!(
        (status.code(), out.as_str()),
        (Some(1), ""),
        "stderr {err:?}"
    );
    assert!(
        (err.starts_with("line_client: connection lost")
            && (err.contains("CertificateRequired")
                || err.contains("reset")
                || err.contains("the peer closed the connection")))
            || err == "line_client: not connected\n",
        "{err:?}"
    );
    let started = Instant::now();
    let (status, out, _) = run_line_client(&client_bin, &mtls, "quit\n");
    assert!(status.success());
    assert_eq!(out, "quit\n");
    let status = server
        .wait_within(Duration::from_secs(5).saturating_sub(started.elapsed()))
        .expect("echo_server exits within 5 s of quit");
    assert!(status.success(), "echo_server: {status}");
}
