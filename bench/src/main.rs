// SPDX-License-Identifier: GPL-2.0

//! In-guest benchmarks of the message-slot device against the floor (the cheapest write +
//! read system-call pair) and other IPC mechanisms, its scaling with live channels, its
//! kernel memory per channel and its parallel read throughput; and mapped reads of a channel's
//! record against the same reader on a plain shared-memory page.
//!
//! Runs inside the VM as root with the module freshly loaded (`make bench` runs it through
//! `vm/run`); it creates its own nodes `/dev/slot_bench_240`.. `/dev/slot_bench_244`.
//!
//! ```text
//! message-slot-bench [--accel NAME] [--rep-ms MS] [--reps N] [--sections ipc,breakdown,scale,parallel,trace]
//! ```
//!
//! `make bench` runs the single-threaded sections (`ipc`, `scale`) in a 1-vCPU guest and
//! `parallel` in a 2-vCPU guest: under TCG an idle second vCPU makes single-threaded timings
//! jitter by up to 2x.
//!
//! Progress goes to stderr; the tables go to stdout, followed by the same results as JSON
//! between the lines [`JSON_BEGIN`] and [`JSON_END`]. Nothing is judged against a threshold:
//! the exit status is non-zero only if a measurement could not be made.

mod breakdown;
mod ipc;
mod mapped;
mod measure;
mod parallel;
mod record;
mod scale;
mod sys;
mod trace;

use std::time::Duration;

use serde_json::json;

use measure::{paired_ratio, round, Timer};

/// Line printed before the JSON results.
pub const JSON_BEGIN: &str = "=== message-slot-bench json begin ===";
/// Line printed after the JSON results.
pub const JSON_END: &str = "=== message-slot-bench json end ===";

const USAGE: &str = "usage: message-slot-bench [--accel NAME] [--rep-ms MS] [--reps N] \
                     [--sections ipc,breakdown,scale,parallel,trace]";

/// Command-line options.
struct Options {
    accel: String,
    timer: Timer,
    sections: Vec<String>,
}

/// The sections run by default, in the order they run.
const SECTIONS: [&str; 4] = ["ipc", "breakdown", "scale", "parallel"];
/// Sections run only when asked for: `trace` (see [`trace`]) needs the host's help.
const EXTRA_SECTIONS: [&str; 1] = ["trace"];

fn parse_args() -> Result<Options, String> {
    let mut accel = None;
    let mut rep_ms = 150u64;
    let mut reps = 15usize;
    let mut sections: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--accel" => accel = Some(value()?),
            "--rep-ms" => rep_ms = value()?.parse().map_err(|e| format!("--rep-ms: {e}"))?,
            "--reps" => reps = value()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--sections" => {
                sections = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = sections.iter().find(|s| {
                    !SECTIONS.contains(&s.as_str()) && !EXTRA_SECTIONS.contains(&s.as_str())
                }) {
                    return Err(format!("unknown section {bad}\n{USAGE}"));
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    if reps == 0 || rep_ms == 0 {
        return Err("--reps and --rep-ms must be positive".into());
    }
    Ok(Options {
        accel: accel.unwrap_or_else(detect_accel),
        timer: Timer {
            rep: Duration::from_millis(rep_ms),
            reps,
        },
        sections,
    })
}

/// The accelerator as seen from inside the guest: KVM announces itself in the hypervisor
/// CPUID leaf, QEMU's TCG does not.
fn detect_accel() -> String {
    use std::arch::x86_64::__cpuid;
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 0x40000000 is only read when the
    // hypervisor bit says it is defined.
    let signature = unsafe {
        if __cpuid(1).ecx & (1 << 31) == 0 {
            return "bare metal".into();
        }
        let l = __cpuid(0x4000_0000);
        [l.ebx, l.ecx, l.edx]
    };
    let bytes: Vec<u8> = signature.iter().flat_map(|r| r.to_le_bytes()).collect();
    match String::from_utf8_lossy(&bytes).trim_end_matches('\0') {
        "KVMKVMKVM" => "kvm".into(),
        "TCGTCGTCGTCG" | "" => "tcg".into(),
        other => format!("unknown hypervisor {other:?}"),
    }
}

fn progress(line: &str) {
    eprintln!("bench: {line}");
}

fn run(opts: &Options) -> Result<(), String> {
    let timer = &opts.timer;
    let vcpus = std::thread::available_parallelism().map_or(1, usize::from);
    let kernel = sys::kernel_release();
    let wants = |section: &str| opts.sections.iter().any(|s| s == section);
    progress(&format!(
        "accel {}, {vcpus} vCPUs, kernel {kernel}; {} reps of ~{} ms per case; sections {}",
        opts.accel,
        timer.reps,
        timer.rep.as_millis(),
        opts.sections.join(",")
    ));
    let mut report = json!({
        "accel": opts.accel,
        "vcpus": vcpus,
        "guest_cpus_online": vcpus,
        "kernel": kernel,
        "message_bytes": sys::MAX_MESSAGE_LEN,
        "reps": timer.reps,
        "rep_ms": timer.rep.as_millis() as u64,
        "sections": opts.sections,
    });
    println!();
    println!(
        "message-slot benchmarks: accel {}, {vcpus} vCPUs, kernel {kernel}, 128-byte messages, \
         median of {} reps of ~{} ms; ratios: median of the per-turn ratios",
        opts.accel,
        timer.reps,
        timer.rep.as_millis()
    );

    if wants("ipc") {
        let cases = ipc::run_all(timer, &mut |c| {
            progress(&format!("{:<12} {:>10.1} ns", c.name, c.sample.median()))
        })?;
        print_ipc(&cases);
        let floor = &cases[0].sample;
        report["floor_ns"] = json!(round(floor.median()));
        report["cases"] = cases
            .iter()
            .map(|c| {
                let mut v = c.sample.json();
                v["name"] = json!(c.name);
                v["exchange"] = json!(c.what);
                v["ratio_to_floor"] = json!(paired_ratio(&c.sample, floor));
                v
            })
            .collect();
        if let Some((mapped, shm)) = mapped_and_reference(&cases) {
            let ratio = json!(paired_ratio(&mapped.sample, &shm.sample));
            if let Some(case) = report["cases"]
                .as_array_mut()
                .and_then(|cases| cases.iter_mut().find(|c| c["name"] == "mapped"))
            {
                case["ratio_to_shm_reference"] = ratio;
            }
        }
    }
    if wants("breakdown") {
        let calls = breakdown::run(timer)?;
        let derived = breakdown::derived(&calls);
        print_breakdown(&calls, &derived);
        report["breakdown"] = json!({
            "calls": calls.iter().map(|c| {
                let mut v = c.sample.json();
                v["name"] = json!(c.name);
                v["call"] = json!(c.what);
                v
            }).collect::<Vec<_>>(),
            "derived_ns": derived.iter().map(|(name, what, ns)| json!({
                "name": name,
                "what": what,
                "ns": round(*ns),
            })).collect::<Vec<_>>(),
        });
    }
    if wants("scale") {
        let (scale, memory) = scale::run(timer)?;
        for p in &scale.points {
            progress(&format!(
                "scale {:>7} {} channels: rebind {:.1} ns, bound fds {:.1} ns, fill {:.1} \
                 ns/channel",
                p.channels,
                p.ids.name(),
                p.rebind.median(),
                p.bound_fds.median(),
                p.fill_ns_per_channel
            ));
        }
        print_scale(&scale, &memory);
        report["scale"] = scale::json(&scale);
        report["scale"]["cold_page_ns"] = json!(round(scale.cold_page_ns()));
        report["scale"]["rebind_extra_cold_pages"] = json!(print_cold_pages(&scale));
        report["memory_bytes_per_channel"] = memory
            .iter()
            .map(|m| (format!("{}_ids", m.ids.name()), m.json()))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if wants("parallel") {
        let runs = parallel::run_all(timer, &mut |r| {
            progress(&format!(
                "parallel {:?} x{}: {:.0} reads/s",
                r.target,
                r.threads,
                r.median()
            ))
        })?;
        print_parallel(&runs, vcpus);
        report["parallel"] = parallel::json(&runs);
    }
    if wants("trace") {
        report["trace"] = trace::run()?;
    }

    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    println!("{JSON_BEGIN}\n{text}\n{JSON_END}");
    Ok(())
}

fn print_ipc(cases: &[ipc::Case]) {
    println!();
    println!(
        "{:<46} {:>12} {:>10} {:>10}",
        "case", "ns/exchange", "(min)", "vs floor"
    );
    for c in cases {
        let label = format!("{}: {}", c.name, c.what);
        println!(
            "{label:<46} {:>12.1} {:>10.1} {:>10.2}",
            c.sample.median(),
            c.sample.min(),
            paired_ratio(&c.sample, &cases[0].sample)
        );
    }
    if let Some((mapped, shm)) = mapped_and_reference(cases) {
        println!(
            "mapped read vs the same read of a memfd page (shm_reference): {:.2}",
            paired_ratio(&mapped.sample, &shm.sample)
        );
    }
}

/// The `mapped` and `shm_reference` cases, when both ran.
fn mapped_and_reference(cases: &[ipc::Case]) -> Option<(&ipc::Case, &ipc::Case)> {
    let find = |name: &str| cases.iter().find(|c| c.name == name);
    Some((find("mapped")?, find("shm_reference")?))
}

fn print_breakdown(calls: &[breakdown::Call], derived: &[(&str, &str, f64)]) {
    println!();
    println!(
        "{:<46} {:>12} {:>10}",
        "breakdown: one system call", "ns/call", "(min)"
    );
    for c in calls {
        println!(
            "{:<46} {:>12.1} {:>10.1}",
            c.what,
            c.sample.median(),
            c.sample.min()
        );
    }
    println!(
        "{:<58} {:>10}",
        "derived (median of per-turn differences)", "ns"
    );
    for (_, what, ns) in derived {
        println!("  {what:<56} {ns:>10.1}");
    }
}

fn print_scale(scale: &scale::Scale, memory: &[scale::Memory]) {
    println!();
    println!(
        "{:<38} {:>15} {:>12} {:>10} {:>10}",
        "scale (random channel order)", "channels", "ns/exchange", "vs 1 ch", "vs floor"
    );
    for (label, rebind) in [
        ("rebind: ioctl + write + read", true),
        ("1024 bound fds: write + read", false),
    ] {
        for p in &scale.points {
            let pick = |pair: (f64, f64)| if rebind { pair.0 } else { pair.1 };
            let sample = if rebind { &p.rebind } else { &p.bound_fds };
            let channels = format!("{} {}", p.channels, p.ids.name());
            println!(
                "{label:<38} {channels:>15} {:>12.1} {:>10.2} {:>10.2}",
                sample.median(),
                pick(scale.vs_one_channel(p)),
                pick(scale.vs_floor(p))
            );
        }
    }
    println!();
    print!("{:<36}", "kernel memory per live channel (B)");
    for m in memory {
        print!(" {:>20}", format!("{} {} ids", m.channels, m.ids.name()));
    }
    println!();
    for (key, what) in scale::Memory::KEYS {
        print!("  {what:<34}");
        for m in memory {
            print!(" {:>20.1}", m.per_channel(key));
        }
        println!();
    }
}

/// What each size's rebind costs over one channel, in cold pages (priced in the same
/// turns); returns them by `channels ids`.
fn print_cold_pages(scale: &scale::Scale) -> serde_json::Map<String, serde_json::Value> {
    let mut pages = serde_json::Map::new();
    println!(
        "rebind cost over 1 channel, in cold pages (getppid + load from a random page of \
         256 MiB - getppid: {:.0} ns, same turns):",
        scale.cold_page_ns()
    );
    for p in &scale.points[1..] {
        let label = format!("{} {}", p.channels, p.ids.name());
        let extra = scale.rebind_extra_cold_pages(p);
        println!("  {label:<36} {extra:>6.1} pages");
        pages.insert(label, json!(round(extra)));
    }
    pages
}

fn print_parallel(runs: &[parallel::Run], vcpus: usize) {
    println!();
    println!(
        "{:<30} {:>14} {:>14} {:>9}",
        "parallel readers (own fds)", "1 thread op/s", "2 threads op/s", "ratio"
    );
    for (_, what, two, one) in parallel::RATIOS {
        let (t2, t1) = (parallel::ops(runs, two, 2), parallel::ops(runs, one, 1));
        println!("{what:<30} {t1:>14.0} {t2:>14.0} {:>9.2}", t2 / t1);
    }
    if vcpus < 2 {
        println!(
            "note: only {vcpus} CPU online in the guest: two readers time-share it, so the \
             parallel ratios do not measure parallelism"
        );
    }
    println!();
}

fn main() {
    let result = parse_args().and_then(|opts| run(&opts));
    if let Err(e) = result {
        eprintln!("message-slot-bench: {e}");
        std::process::exit(1);
    }
}
