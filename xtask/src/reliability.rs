//! `cargo xtask reliability [--runs N]`: the full form of the fault and abuse suite
//! (`tests/tests/reliability_*.rs`): every kill scenario repeated N times (default 50), bigger
//! floods and Ping storms, then a summary of the figures for docs/reliability.md.
//!
//! The same tests run in their short form (3 repetitions) within `cargo xtask test`; the
//! variable `EAS_EDGE_RELIABILITY_RUNS` is what switches them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Repetitions of each kill scenario in the full form (issue #10 asks for at least 50).
const DEFAULT_RUNS: &str = "50";

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    let runs = match args {
        [] => DEFAULT_RUNS.to_owned(),
        [flag, runs] if flag == "--runs" && runs.parse::<u32>().is_ok_and(|n| n > 0) => {
            runs.clone()
        }
        _ => anyhow::bail!("usage: cargo xtask reliability [--runs N]"),
    };
    crate::sys::run(Command::new(root.join("tests/mailstack.sh")).arg("install"))?;
    let built = crate::build(root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .current_dir(root)
        .args(["test", "--profile", crate::HOST_PROFILE, "-p", "eas-edge-tests"])
        .args(["--test", "reliability_abuse", "--test", "reliability_faults"])
        // two scenarios at a time: each runs its own mail stack and gateway, and the figures
        // mean more on a machine that is not saturated
        // --include-ignored: scenarios that show an open finding (docs/reliability.md) are
        // left out of CI but belong in the figures
        .args(["--", "--nocapture", "--include-ignored", "--test-threads", "2"])
        .env("EAS_EDGE_RELIABILITY_RUNS", &runs)
        .env("EAS_EDGE_BIN", &built.host)
        .env("EAS_EDGE_PLUGIN", &built.plugins.component)
        .env("EAS_EDGE_FAULTY_PLUGIN", &built.plugins.faulty_component)
        .stderr(Stdio::piped())
        .spawn()?;
    // pass the output through, keeping the figure lines the tests print
    let mut figures = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line?;
            eprintln!("{line}");
            if let Some(figure) = line.strip_prefix("RELIABILITY | ") {
                figures.push(figure.to_owned());
            }
        }
    }
    let status = child.wait()?;
    eprintln!("\nxtask: reliability figures ({runs} runs per kill scenario):\n");
    eprintln!("| scenario | result |\n|---|---|");
    for figure in &figures {
        let (scenario, result) = figure.split_once(" | ").unwrap_or((figure, ""));
        eprintln!("| {scenario} | {result} |");
    }
    eprintln!("\nxtask: reliability suite finished in {:.0?}", started.elapsed());
    anyhow::ensure!(status.success(), "the reliability suite failed ({status})");
    Ok(())
}
