//! Serves one client on the given port, echoing every line back, so `nc`,
//! `line_client` or the Python package can talk to it.
//!
//! ```text
//! cargo run --example echo_server -- PORT [--host H] [--encoding E] [--terminator T]
//! cargo run --features tls --example echo_server -- PORT --cert CERT.pem --key KEY.pem [--client-ca CA.pem]
//! cargo run --example echo_server -- PORT [--allow CIDR]... [--replace]
//! cargo run --example echo_server -- PORT --json python
//! ```
//!
//! Prints `echo server listening on port N` once listening (PORT 0: any
//! free port). `--terminator` takes `\r\n`, `\n`, `\t` and `\\` as written
//! (default `\r\n`); `--encoding` one of the crate's encodings (default
//! `utf-8`). With `--cert` and `--key` it serves TLS; with `--client-ca`
//! as well, clients must show a certificate from that CA (mutual TLS). The
//! TLS options need the `tls` feature. `--allow CIDR` (repeatable) serves
//! only peers in those ranges (default: everyone); `--replace` serves a
//! new client and closes the current one (default: the new one is
//! closed at once, as in Python). With `--json STYLE` (`compact` or
//! `python`) it echoes JSON: each line is read with `read_json` (Python's
//! `NaN` and `Infinity` included) and written back with `write_json` in
//! that style, keys in their order; a line that is not JSON closes the
//! client. Stop it with Ctrl-C, or by sending the line `quit` (`"quit"`
//! with `--json`; echoed, then the server exits with status 0).

use std::path::PathBuf;
use std::process::ExitCode;

use ts_tcpip::prelude::*;
use ts_tcpip::{Error, Result};

mod cli;
use cli::{json_style, unescape, with_causes, Json};

const USAGE: &str = "usage: echo_server PORT [--host H] [--encoding E] [--terminator T] \
                     [--cert CERT.pem --key KEY.pem [--client-ca CA.pem]] [--allow CIDR]... [--replace] \
                     [--json compact|python]";

/// What a TLS flag says when the example was built without TLS.
pub const NO_TLS: &str =
    "built without the tls feature: cargo run --features tls --example echo_server -- ...";

/// Command-line options.
pub struct Options {
    /// Port to listen on (0: any free one).
    pub port: u16,
    /// Address to listen on.
    pub host: String,
    /// Text encoding of the lines.
    pub encoding: Encoding,
    /// Line terminator.
    pub terminator: Vec<u8>,
    /// TLS, or `None` for plain TCP.
    pub tls: Option<TlsFiles>,
    /// Address ranges of the peers served (empty: everyone).
    pub allow: Vec<String>,
    /// Serve a new client and close the current one
    /// ([`SlotPolicy::ReplaceOld`]), instead of closing the new one.
    pub replace: bool,
    /// Echo JSON values in this style instead of lines.
    pub json: Option<JsonStyle>,
}

/// The server's TLS as PEM files.
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA client certificates must come from; `None`: no client
    /// certificate asked for.
    pub client_ca: Option<PathBuf>,
}

impl Options {
    /// Plain TCP on `port` of the IPv4 loopback, UTF-8, `\r\n`.
    pub fn new(port: u16) -> Options {
        Options {
            port,
            host: LOCALHOST_IPV4.to_owned(),
            encoding: DEFAULT_ENCODING,
            terminator: DEFAULT_TERMINATOR.to_vec(),
            tls: None,
            allow: Vec::new(),
            replace: false,
            json: None,
        }
    }
}

/// Parses the arguments after the program's name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> std::result::Result<Options, String> {
    let mut args = args.into_iter();
    let mut options = Options::new(0);
    let mut port = None;
    let (mut cert, mut key, mut client_ca) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => options.host = value()?,
            "--encoding" => options.encoding = value()?.parse().map_err(|e| format!("{e}"))?,
            "--terminator" => options.terminator = unescape(&value()?),
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--client-ca" => client_ca = Some(PathBuf::from(value()?)),
            "--allow" => options.allow.push(value()?),
            "--replace" => options.replace = true,
            "--json" => options.json = Some(json_style(&value()?)?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            text if port.is_none() => {
                port = Some(text.parse().map_err(|_| format!("bad port {text:?}"))?)
            }
            text => return Err(format!("unexpected argument {text:?}")),
        }
    }
    options.port = port.unwrap_or(0);
    options.tls = match (cert, key, client_ca) {
        (None, None, None) => None,
        (Some(cert), Some(key), client_ca) => Some(TlsFiles {
            cert,
            key,
            client_ca,
        }),
        (None, None, Some(_)) => return Err("--client-ca needs --cert and --key".into()),
        _ => return Err("--cert and --key go together".into()),
    };
    if options.tls.is_some() && !cfg!(feature = "tls") {
        return Err(NO_TLS.into());
    }
    if options.terminator.is_empty() {
        return Err("the terminator must not be empty".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("echo_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {}", with_causes(&e));
            ExitCode::FAILURE
        }
    }
}

fn serve(options: Options) -> Result<()> {
    let (quit_tx, quit_rx) = crossbeam_channel::bounded(1);
    let server = start(&options, move || {
        let _ = quit_tx.try_send(());
    })?;
    // The port line is what a script waits for before connecting.
    println!("echo server listening on port {}", server.port());
    let _ = quit_rx.recv();
    server.close();
    Ok(())
}

/// Starts the echo server; `on_quit` runs when a client sends `quit`,
/// after the echo. (tests/echo_example.rs drives this function, as
/// Python's test_example.)
pub fn start(
    options: &Options,
    on_quit: impl Fn() + Send + 'static,
) -> Result<OneClientReadLoopServer> {
    let builder = OneClientReadLoopServer::builder()
        .host(&options.host)
        .port(options.port)
        .encoding(options.encoding)
        .terminator(options.terminator.clone())
        .name("echo")
        .connect_callback(|s, connected| println!("client connected={connected} ({})", s.name()));
    #[cfg(feature = "tls")]
    let builder = match &options.tls {
        Some(tls) => builder.tls_from_pem(&tls.cert, &tls.key, tls.client_ca.clone()),
        None => builder,
    };
    #[cfg(not(feature = "tls"))]
    if options.tls.is_some() {
        return Err(Error::invalid_argument(NO_TLS));
    }
    let mut builder = builder;
    for cidr in &options.allow {
        builder = builder.allow(cidr);
    }
    if options.replace {
        builder = builder.slot_policy(SlotPolicy::ReplaceOld);
    }
    if let Some(style) = options.json {
        return builder
            .json_style(style)
            .start(move |server: &OneClientReadLoopServer| {
                let value: Json = server.read_json()?;
                server.write_json(&value)?;
                if value == Json::Str("quit".into()) {
                    on_quit();
                }
                Ok::<(), Error>(())
            });
    }
    builder.start(move |server: &OneClientReadLoopServer| {
        let line = server.read_str()?;
        server.write_str(&line)?;
        if line == "quit" {
            on_quit();
        }
        Ok::<(), Error>(())
    })
}
