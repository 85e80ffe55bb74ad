// SPDX-License-Identifier: GPL-2.0

//! `message_slot_stat [--json] [--sysfs DIR]`: prints the statistics of every message slot
//! that has a class device (the module's `nodes` parameter), from sysfs.

use std::io::Write;
use std::process::ExitCode;

use message_slot_tools::stat::{human, json, read_all, StatArgs};
use message_slot_tools::Failure;

fn stat(args: StatArgs) -> Result<u8, Failure> {
    let stats = read_all(&args.sysfs).map_err(|e| Failure::Sysfs(args.sysfs.clone(), e))?;
    let text = if args.json {
        json(&stats) + "\n"
    } else {
        human(&stats)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Failure::Stdout)?;
    Ok(0)
}

fn main() -> ExitCode {
    message_slot_tools::run(stat)
}
