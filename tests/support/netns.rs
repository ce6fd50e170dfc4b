//! Cutting a live connection for real: each test that needs it runs in a
//! private network namespace of its own, where nftables rules can drop
//! every packet of a connection without touching the host.
//!
//! [`isolate`] re-executes the current test binary for just that test
//! under `unshare --net` and reports the child's result; inside, it brings
//! loopback up and lets the test body run. [`Cut`] adds rules that drop
//! every packet to or from a TCP port and removes them when dropped.
//!
//! Needs root, `unshare`, `ip` and `nft`. Where any is missing the test
//! prints one `SKIPPED` line on stderr (what is missing, how to run it)
//! and passes without running, unless `TS_TCPIP_REQUIRE_NETNS=1` (set by
//! `.ci/run`), which turns the skip into a failure on Linux. Elsewhere
//! (Windows, macOS) the test always skips, with its reason.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Set in the child: the name of the test it runs inside the namespace.
const INSIDE: &str = "TS_TCPIP_NETNS_TEST";
/// Set to 1 to fail instead of skipping when the namespace cannot be had.
pub const REQUIRE: &str = "TS_TCPIP_REQUIRE_NETNS";

/// Call first in a test that cuts connections, with the test's own name
/// (its path in the test binary, as `--exact` takes it). True inside the
/// private namespace: run the test body. False in the parent, after the
/// child passed (or after a printed skip): return. A child that fails,
/// or runs no test (a wrong `test` name), or outlives `limit`, fails the
/// calling test.
#[must_use = "run the test body only when this is true"]
pub fn isolate(test: &str, limit: Duration) -> bool {
    if let Some(inside) = std::env::var_os(INSIDE) {
        assert_eq!(inside, test, "{INSIDE} names another test");
        run(Command::new("ip").args(["link", "set", "lo", "up"]));
        return true;
    }
    if let Err(why) = available() {
        // Elsewhere than Linux the skip stands whatever REQUIRE says: it
        // asks for a namespace where one can be had.
        if cfg!(target_os = "linux") && std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
            panic!("{test}: cannot cut connections here ({why}) and {REQUIRE}=1");
        }
        // Straight to stderr: the harness captures print! and eprint! (it
        // hooks the macros, not the descriptor), and a test that passes
        // without running must say so in a plain `cargo test`.
        let _ = writeln!(std::io::stderr(), "{}", skipped(test, &why));
        return false;
    }
    let log = std::env::temp_dir().join(format!(
        "ts-tcpip-netns-{}-{}.log",
        std::process::id(),
        test.replace("::", "-")
    ));
    let out = File::create(&log).expect("create the child's log file");
    let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
    let mut child = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(exe)
        .args([
            "--exact",
            test,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE, test)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup the log file"))
        .stderr(out)
        .spawn()
        .expect("spawn unshare");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    // Through print!, so the harness captures it like the test's own output.
    print!("--- {test} in a private network namespace ---\n{output}---\n");
    match status {
        None => panic!("{test}: still running in its namespace after {limit:?}; killed"),
        Some(status) if !status.success() => panic!("{test} failed in its namespace: {status}"),
        Some(_) if !output.contains("1 passed") => {
            panic!("{test}: the child ran no test; is the name given to isolate() its path?")
        }
        Some(_) => false,
    }
}

/// The one line a skipped test prints: which test, what is missing, and
/// how to run it.
fn skipped(test: &str, why: &str) -> String {
    // The binary's name without cargo's hash: `dead_peer-0123abcd`.
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem()?.to_str().map(str::to_owned))
        .map(|stem| stem.split('-').next().unwrap_or(&stem).to_owned())
        .unwrap_or_default();
    let how = if cfg!(target_os = "linux") {
        "it cuts a live connection with nftables in a private network namespace: \
         run the tests as root with nft, unshare and ip installed \
         (apt-get install nftables util-linux iproute2), or run .ci/run"
    } else {
        "it cuts a live connection with nftables, which only Linux has"
    };
    format!("SKIPPED (passed without running) {binary}::{test}: {why}; {how}")
}

/// Why connections cannot be cut here, if they cannot.
fn available() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        // Not "is there a /proc": Wine shows a Windows program the Linux
        // host's.
        return Err("network namespaces and nftables are Linux's".into());
    }
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if uid != "0" {
        return Err(format!("not root (effective uid {uid})"));
    }
    for tool in ["unshare", "nft", "ip"] {
        if !on_path(tool) {
            return Err(format!("`{tool}` not found"));
        }
    }
    match Command::new("unshare")
        .args(["--net", "--", "nft", "list", "ruleset"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`unshare --net nft list ruleset` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run unshare: {e}")),
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| Path::new(&dir).join(tool).is_file())
    })
}

#[track_caller]
fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn nft(script: &str) {
    run(Command::new("nft").arg(script));
}

/// Every packet to or from a TCP port dropped, as a pulled cable does:
/// nothing answers, nothing is refused. The rules sit in the prerouting
/// hook, before the receiving socket sees the packet; the sender's stack
/// sees its packets leave normally (a drop on output would tell it, and
/// it would retry without counting the probe as lost). Removed on drop.
/// Only inside [`isolate`].
#[must_use = "the cut heals when this is dropped"]
pub struct Cut {
    table: String,
}

impl Cut {
    /// Drops every packet whose source or destination port is `port`: all
    /// connections of a server (its port), or one connection (a client's
    /// local port).
    pub fn port(port: u16) -> Cut {
        assert!(
            std::env::var_os(INSIDE).is_some(),
            "Cut outside a private network namespace: call isolate() first"
        );
        let table = format!("tcut{port}");
        nft(&format!("add table inet {table}"));
        nft(&format!(
            "add chain inet {table} pre {{ type filter hook prerouting priority -300 ; }}"
        ));
        nft(&format!(
            "add rule inet {table} pre tcp dport {port} counter drop"
        ));
        nft(&format!(
            "add rule inet {table} pre tcp sport {port} counter drop"
        ));
        Cut { table }
    }

    /// The table as `nft` lists it, with each rule's counter of dropped
    /// packets.
    pub fn ruleset(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "inet", &self.table])
            .output()
            .expect("nft list");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}
