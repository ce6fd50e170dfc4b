//! A runner for test binaries built with `harness = false`, whose checks
//! measure the whole process and so must run one after another with
//! nothing beside them: each on a thread named after it, reported as
//! libtest reports (`--list` and name filters work as they do there).

use std::process::ExitCode;

/// Runs every check whose name contains one of the arguments that are not
/// options (all of them when there are none), each on a thread named after
/// it, and reports as libtest does.
pub fn run(checks: &[(&str, fn())]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&(&str, fn())> = checks
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    // None of these is ignored: `--list --ignored` lists none.
    if args.iter().any(|a| a == "--list") {
        let ignored = args.iter().any(|a| a == "--ignored");
        for (name, _) in chosen.iter().filter(|_| !ignored) {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--ignored") {
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed\n");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, check) in &chosen {
        let outcome = std::thread::Builder::new()
            .name((*name).to_owned())
            .spawn(*check)
            .expect("spawn a check's thread")
            .join();
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    let passed = chosen.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed\n");
        ExitCode::SUCCESS
    } else {
        println!("\nfailures: {failed:?}");
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed\n",
            failed.len()
        );
        ExitCode::from(101)
    }
}
