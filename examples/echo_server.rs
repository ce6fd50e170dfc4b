//! Serves one client on the given port, echoing every line back, so `nc`
//! or the Python package can talk to it.
//!
//! ```text
//! cargo run --example echo_server -- 5000 [--host 127.0.0.1] [--encoding utf-16] [--terminator '\n']
//! ```
//! Stop it with Ctrl-C, or by sending the line `quit`.

use std::process::ExitCode;

use ts_tcpip::prelude::*;
use ts_tcpip::Result;

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
}

fn parse_args() -> std::result::Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        port: 0,
        host: LOCALHOST_IPV4.to_owned(),
        encoding: DEFAULT_ENCODING,
        terminator: DEFAULT_TERMINATOR.to_vec(),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => options.host = value()?,
            "--encoding" => options.encoding = value()?.parse().map_err(|e| format!("{e}"))?,
            "--terminator" => options.terminator = unescape(&value()?),
            port => options.port = port.parse().map_err(|_| format!("bad port {port:?}"))?,
        }
    }
    Ok(options)
}

/// `\r`, `\n`, `\t` and `\\` as a shell cannot easily pass them.
fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\\\", "\\")
        .into_bytes()
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("echo_server: {e}\nusage: echo_server PORT [--host H] [--encoding E] [--terminator T]");
            return ExitCode::from(2);
        }
    };
    match serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
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

/// Starts the echo server; `on_quit` runs when a client sends `quit`.
/// (tests/echo_example.rs drives this function, as Python's test_example.)
pub fn start(
    options: &Options,
    on_quit: impl Fn() + Send + 'static,
) -> Result<OneClientReadLoopServer> {
    OneClientReadLoopServer::builder()
        .host(&options.host)
        .port(options.port)
        .encoding(options.encoding)
        .terminator(options.terminator.clone())
        .name("echo")
        .connect_callback(|s, connected| println!("client connected={connected} ({})", s.name()))
        .start(move |server: &OneClientReadLoopServer| {
            let line = server.read_str()?;
            if line == "quit" {
                on_quit();
            }
            server.write_str(&line)
        })
}
