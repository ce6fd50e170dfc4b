//! Probes of this process through /proc (Linux only): descriptors,
//! threads, context switches and resident memory. Only for test binaries
//! that measure the process (tests/process.rs, tests/load.rs,
//! tests/soak.rs), where no other test runs beside the one measuring;
//! context switches of one named thread are safe anywhere.

use std::thread;
use std::time::{Duration, Instant};

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The names of this process's threads.
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

/// Threads of this process.
pub fn all_threads() -> usize {
    thread_names().len()
}

/// Context switches so far of the thread whose name is `name` (as
/// /proc shows it: the first 15 bytes), or None if there is none.
pub fn context_switches(name: &str) -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let task = tasks.flatten().find(|task| {
        std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    })?;
    let status = std::fs::read_to_string(task.path().join("status")).ok()?;
    let count = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(count("voluntary_ctxt_switches:")? + count("nonvoluntary_ctxt_switches:")?)
}

/// [`context_switches`] of a thread that has just been started: a thread
/// names itself when it first runs, which on a loaded machine can be a
/// while after its spawn returned. Panics if no thread of that name shows
/// within `limit`.
pub fn context_switches_once_named(name: &str, limit: std::time::Duration) -> u64 {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(count) = context_switches(name) {
            return count;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no thread named {name:?} within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Threads of the crate: every one it starts is named `tcpip-...`.
pub fn crate_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with("tcpip-"))
        .count()
}

/// The process's resident set, in bytes.
pub fn vm_rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<usize>().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// Waits (bounded) until `probe` gives `want`: a joined thread can still be
/// listed in /proc for a moment after `join` returned, and a closed socket
/// until the kernel has released it. Returns the last value seen.
pub fn settles_to(want: usize, probe: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let now = probe();
        if now == want || Instant::now() > deadline {
            return now;
        }
        thread::yield_now();
    }
}

/// The system call the thread named `name` is in (its number, as
/// /proc/<tid>/syscall gives it), or None if it runs or there is none.
pub fn syscall_of(name: &str) -> Option<i64> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let task = tasks.flatten().find(|task| {
        std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    })?;
    let syscall = std::fs::read_to_string(task.path().join("syscall")).ok()?;
    syscall.split_whitespace().next()?.parse().ok()
}
