// SPDX-License-Identifier: GPL-2.0

//! In-guest test suite for the message-slot character device, its library and its tools.
//!
//! Runs inside the test VM as root with the module loaded and `/dev/slot0`..`/dev/slot3`
//! present. Every test prints `PASS <name>`, `FAIL <name>: <reason>` or, when it cannot run
//! on this kernel, `SKIP <name>: <reason>`; the last line is `N passed, M failed, K skipped`
//! and the exit status is 1 if anything failed (a skip is not a failure).
//!
//! ```text
//! message-slot-guest-tests [--list] [FILTER...]
//! ```
//!
//! With filters, only the tests whose name contains one of them run; the other options
//! (`--debug-kernel`, sizes such as `--cycles=N`) are in [`options`]. Tests that need other
//! processes re-execute this binary with a hidden first argument (`--child ...`).

/// Returns `Err(format!(...))` from the enclosing test unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod cases;
mod child;
mod memcg_harness;
mod module_loading;
mod options;
mod polling;
mod slab;
mod traffic;
mod util;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use util::TestResult;

/// One entry of the suite.
pub struct Test {
    /// Name printed after `PASS`/`FAIL` and matched by filters.
    pub name: &'static str,
    /// The test body.
    pub run: fn() -> TestResult,
    /// Longest the test may take before the watchdog fails it and ends the run.
    pub timeout: Duration,
}

/// Progress shared with the watchdog thread.
struct Progress {
    current: Option<(&'static str, Instant, Duration)>,
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Progress {
    /// The closing line.
    fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

static PROGRESS: Mutex<Progress> = Mutex::new(Progress {
    current: None,
    passed: 0,
    failed: 0,
    skipped: 0,
});

/// Why the running test skipped itself (see [`skip`]).
static SKIP_REASON: Mutex<Option<String>> = Mutex::new(None);

/// Ends the running test as skipped: what it checks cannot run on this kernel, for `reason`.
/// A test returns this (`return skip(...)`); the runner then reports `SKIP <name>: <reason>`
/// and counts it as skipped, neither passed nor failed (an `Err` returned instead still
/// fails the test).
pub fn skip(reason: String) -> TestResult {
    *SKIP_REASON.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    Ok(())
}

/// Tests that were selected but have not finished yet (reported by the watchdog).
static REMAINING: AtomicUsize = AtomicUsize::new(0);

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // Nothing sensible to do if stdout is gone.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Fails the running test and ends the process if it overruns its timeout, so that a hung
/// kernel call still produces a summary line instead of stalling the VM until it is killed.
fn watchdog() {
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let progress = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((name, started, limit)) = progress.current {
            if started.elapsed() > limit {
                let not_run = REMAINING.load(Ordering::SeqCst).saturating_sub(1);
                print_line(&format!(
                    "FAIL {name}: timed out after {}s ({not_run} later test(s) not run)",
                    limit.as_secs()
                ));
                // The tests the hang kept from running count as failed: they were meant to
                // run on this kernel.
                let counts = Progress {
                    current: None,
                    failed: progress.failed + 1 + not_run,
                    ..*progress
                };
                print_line(&counts.summary());
                std::process::exit(1);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(child::FLAG) {
        std::process::exit(child::main(&args[1..]));
    }

    let all = cases::all();
    if args.iter().any(|a| a == "--list") {
        for t in &all {
            print_line(t.name);
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected: Vec<&Test> = all
        .iter()
        .filter(|t| filters.is_empty() || filters.iter().any(|f| t.name.contains(f.as_str())))
        .collect();
    REMAINING.store(selected.len(), Ordering::SeqCst);
    std::thread::spawn(watchdog);

    let suite_start = Instant::now();
    for t in selected {
        {
            let mut p = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
            p.current = Some((t.name, Instant::now(), util::scaled(t.timeout)));
        }
        let started = Instant::now();
        let result = (t.run)();
        let secs = started.elapsed().as_secs_f64();
        let skipped = SKIP_REASON.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut p = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
        p.current = None;
        match (result, skipped) {
            (Err(reason), _) => {
                p.failed += 1;
                print_line(&format!("FAIL {}: {reason}", t.name));
            }
            (Ok(()), Some(reason)) => {
                p.skipped += 1;
                print_line(&format!("SKIP {}: {reason}", t.name));
            }
            (Ok(()), None) => {
                p.passed += 1;
                print_line(&format!("PASS {}", t.name));
            }
        }
        if secs >= 2.0 {
            eprintln!("  ({} took {secs:.1}s)", t.name);
        }
        REMAINING.fetch_sub(1, Ordering::SeqCst);
    }

    let p = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("  (suite took {:.1}s)", suite_start.elapsed().as_secs_f64());
    print_line(&p.summary());
    std::process::exit(if p.failed == 0 { 0 } else { 1 });
}
