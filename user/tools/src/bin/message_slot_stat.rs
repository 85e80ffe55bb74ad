// SPDX-License-Identifier: GPL-2.0

//! `message_slot_stat [--json] [--sysfs DIR]`: prints the statistics of every message slot
//! that has a class device (the module's `nodes` parameter), from sysfs.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use message_slot_tools::stat::{human, json, read_all};
use message_slot_tools::Failure;

/// Prints, for every message slot with a class device, its channels in use, bytes held,
/// writes, reads, open files and max_channels (exit 0; 1 on error, e.g. the module is not
/// loaded or was loaded with nodes=0).
#[derive(Parser)]
#[command(name = "message_slot_stat", version)]
struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
    /// The class directory to read.
    #[arg(long, value_name = "DIR", default_value_os_t = message_slot::sysfs_class_dir())]
    sysfs: PathBuf,
}

fn stat(args: Args) -> Result<u8, Failure> {
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
