//! Connects to a line server (`echo_server`, a Python `OneClientServer`,
//! an instrument), sends each line of stdin and prints each reply line.
//!
//! ```text
//! cargo run --example line_client -- HOST PORT [--encoding E] [--terminator T]
//! cargo run --features tls --example line_client -- HOST PORT --ca CA.pem [--cert CERT.pem --key KEY.pem] [--server-name NAME]
//! cargo run --example line_client -- HOST PORT --json python
//! ```
//!
//! One reply line is read for each line sent, and stdout holds only the
//! reply lines. Exits with status 0 at the end of stdin; if the connection
//! or the TLS handshake fails, or the server goes before replying, it
//! prints the error on stderr and exits with status 1 (2 for bad
//! arguments). `--terminator` takes `\r\n`, `\n`, `\t` and `\\` as written
//! (default `\r\n`); `--encoding` one of the crate's encodings (default
//! `utf-8`). With `--ca` it speaks TLS, verifying the server against
//! CA.pem for NAME (default: HOST), and with `--cert` and `--key` shows a
//! client certificate (mutual TLS). The TLS options need the `tls`
//! feature. With `--json STYLE` (`compact` or `python`) each line of stdin
//! is a JSON value (Python's `NaN` and `Infinity` allowed), sent with
//! `write_json` in that style; each reply is read with `read_json` and
//! printed in the same style.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use ts_tcpip::prelude::*;
use ts_tcpip::{Error, Result};

mod cli;
use cli::{json_style, unescape, with_causes, Json};

const USAGE: &str = "usage: line_client HOST PORT [--encoding E] [--terminator T] \
                     [--ca CA.pem [--cert CERT.pem --key KEY.pem] [--server-name NAME]] \
                     [--json compact|python]";

/// What a TLS flag says when the example was built without TLS.
pub const NO_TLS: &str =
    "built without the tls feature: cargo run --features tls --example line_client -- ...";

/// Command-line options.
pub struct Options {
    /// The server's address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Text encoding of the lines.
    pub encoding: Encoding,
    /// Line terminator.
    pub terminator: Vec<u8>,
    /// TLS, or `None` for plain TCP.
    pub tls: Option<TlsFiles>,
    /// Send and print JSON values in this style instead of lines.
    pub json: Option<JsonStyle>,
}

/// The client's TLS as PEM files.
pub struct TlsFiles {
    /// The CA to verify the server against.
    pub ca: PathBuf,
    /// A client certificate chain and its key, for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The name to verify the server for; `None`: the host.
    pub server_name: Option<String>,
}

impl Options {
    /// Plain TCP to `host`:`port`, UTF-8, `\r\n`.
    pub fn new(host: &str, port: u16) -> Options {
        Options {
            host: host.to_owned(),
            port,
            encoding: DEFAULT_ENCODING,
            terminator: DEFAULT_TERMINATOR.to_vec(),
            tls: None,
            json: None,
        }
    }
}

/// Parses the arguments after the program's name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> std::result::Result<Options, String> {
    let mut args = args.into_iter();
    let mut positional = Vec::new();
    let (mut encoding, mut terminator) = (DEFAULT_ENCODING, DEFAULT_TERMINATOR.to_vec());
    let (mut ca, mut cert, mut key, mut server_name) = (None, None, None, None);
    let mut json = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--encoding" => encoding = value()?.parse().map_err(|e| format!("{e}"))?,
            "--terminator" => terminator = unescape(&value()?),
            "--ca" => ca = Some(PathBuf::from(value()?)),
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--server-name" => server_name = Some(value()?),
            "--json" => json = Some(json_style(&value()?)?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    let [host, port] = <[String; 2]>::try_from(positional)
        .map_err(|got| format!("HOST and PORT expected, got {got:?}"))?;
    let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    let tls = match ca {
        Some(ca) => Some(TlsFiles {
            ca,
            identity,
            server_name,
        }),
        None if identity.is_some() || server_name.is_some() => {
            return Err("--cert, --key and --server-name need --ca".into())
        }
        None => None,
    };
    if tls.is_some() && !cfg!(feature = "tls") {
        return Err(NO_TLS.into());
    }
    if terminator.is_empty() {
        return Err("the terminator must not be empty".into());
    }
    Ok(Options {
        host,
        port,
        encoding,
        terminator,
        tls,
        json,
    })
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("line_client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    let run = |client: Client| match options.json {
        Some(style) => talk_json(&client, style, stdin, stdout),
        None => talk(&client, stdin, stdout),
    };
    match connect(&options).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("line_client: {}", with_causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// Connects (and completes the TLS handshake) once, without retrying.
pub fn connect(options: &Options) -> Result<Client> {
    let builder = Client::builder()
        .host(&options.host)
        .port(options.port)
        .encoding(options.encoding)
        .terminator(options.terminator.clone())
        .json_style(options.json.unwrap_or(ts_tcpip::DEFAULT_JSON_STYLE))
        .name("line_client");
    #[cfg(feature = "tls")]
    let builder = match &options.tls {
        Some(tls) => {
            builder.tls_from_pem(&tls.ca, tls.identity.clone(), tls.server_name.as_deref())
        }
        None => builder,
    };
    #[cfg(not(feature = "tls"))]
    if options.tls.is_some() {
        return Err(Error::invalid_argument(NO_TLS));
    }
    builder.connect()
}

/// Sends each line of `input` (without its `\n` or `\r\n`) and writes each
/// reply to `output`, one line each, until `input` ends.
pub fn talk(client: &Client, input: impl BufRead, mut output: impl Write) -> Result<()> {
    for line in input.lines() {
        client.write_str(&line?)?;
        let reply = client.read_str()?;
        writeln!(output, "{reply}")?;
        output.flush()?;
    }
    client.close();
    Ok::<(), Error>(())
}

/// Sends each line of `input` as the JSON value it holds and writes each
/// reply to `output` as JSON text in `style`, one line each, until `input`
/// ends. A line that is not JSON is [`Error::Json`] (nothing sent).
pub fn talk_json(
    client: &Client,
    style: JsonStyle,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<()> {
    for line in input.lines() {
        let value: Json = ts_tcpip::json::from_str(&line?)?;
        client.write_json(&value)?;
        let reply: Json = client.read_json()?;
        writeln!(output, "{}", ts_tcpip::json::to_string(&reply, style)?)?;
        output.flush()?;
    }
    client.close();
    Ok::<(), Error>(())
}
