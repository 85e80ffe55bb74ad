// SPDX-License-Identifier: GPL-2.0

//! `message_slot_stat`: the statistics of every slot that has a class device, read from
//! sysfs (`/sys/class/message_slot/message_slotN/{channels,bytes,writes,reads,open_files,
//! max_channels}`: mode 0440, readable by root and, through the udev rule, the device nodes'
//! group).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::Parser;
use message_slot::{statistic_names, CLASS_NAME, STATISTICS};

/// Print the statistics of every message slot.
///
/// Prints, for every message slot with a class device, its channels in use, bytes held,
/// writes, reads, open files and max_channels (exit 0; 1 on error, e.g. the module is not
/// loaded or was loaded with nodes=0).
#[derive(Parser)]
#[command(name = "message_slot_stat", version)]
pub struct StatArgs {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The class directory to read.
    #[arg(long, value_name = "DIR", default_value_os_t = message_slot::sysfs_class_dir())]
    pub sysfs: PathBuf,
}

/// One slot's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStat {
    /// The slot's minor.
    pub minor: u32,
    /// The values of the statistics, in the order of `message_slot::STATISTICS`.
    pub values: [u64; STATISTICS.len()],
}

/// Reads every `message_slotN` device under `class_dir`, sorted by minor. A missing
/// `class_dir` (module not loaded, or loaded with `nodes=0`) is `NotFound`.
pub fn read_all(class_dir: &Path) -> io::Result<Vec<SlotStat>> {
    let mut stats = Vec::new();
    for entry in fs::read_dir(class_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(minor) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CLASS_NAME.to_str().unwrap_or_default()))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let mut values = [0; STATISTICS.len()];
        for (value, field) in values.iter_mut().zip(statistic_names()) {
            let path: PathBuf = entry.path().join(field);
            let text = fs::read_to_string(&path)?;
            *value = text.trim().parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a number: {text:?}", path.display()),
                )
            })?;
        }
        stats.push(SlotStat { minor, values });
    }
    stats.sort_by_key(|s| s.minor);
    Ok(stats)
}

/// A table with a header line, one line per slot, columns aligned.
pub fn human(stats: &[SlotStat]) -> String {
    let mut rows = vec![std::iter::once("slot".to_string())
        .chain(statistic_names().iter().map(|f| f.to_string()))
        .collect::<Vec<_>>()];
    for stat in stats {
        rows.push(
            std::iter::once(stat.minor.to_string())
                .chain(stat.values.iter().map(u64::to_string))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..=STATISTICS.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A JSON array of objects `{"slot": N, "device": "/dev/message_slot/N", "channels": ...}`.
pub fn json(stats: &[SlotStat]) -> String {
    let slots: Vec<serde_json::Value> = stats
        .iter()
        .map(|stat| {
            let mut object = serde_json::Map::new();
            object.insert("slot".into(), stat.minor.into());
            object.insert(
                "device".into(),
                format!("/dev/{}/{}", CLASS_NAME.to_string_lossy(), stat.minor).into(),
            );
            for (field, value) in statistic_names().iter().zip(stat.values) {
                object.insert((*field).into(), value.into());
            }
            object.into()
        })
        .collect();
    serde_json::Value::from(slots).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_class(dir: &Path, minor: u32, values: [u64; 6]) {
        let device = dir.join(format!("message_slot{minor}"));
        fs::create_dir_all(&device).unwrap();
        for (field, value) in statistic_names().iter().zip(values) {
            fs::write(device.join(field), format!("{value}\n")).unwrap();
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("msstat-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_sorted_by_minor_and_ignores_others() {
        let dir = temp_dir("read");
        fake_class(&dir, 10, [1, 2, 3, 4, 5, 6]);
        fake_class(&dir, 2, [7, 8, 9, 10, 11, 1048576]);
        fs::create_dir_all(dir.join("unrelated")).unwrap();
        let stats = read_all(&dir).unwrap();
        assert_eq!(
            stats,
            vec![
                SlotStat {
                    minor: 2,
                    values: [7, 8, 9, 10, 11, 1048576]
                },
                SlotStat {
                    minor: 10,
                    values: [1, 2, 3, 4, 5, 6]
                },
            ]
        );
        fs::write(dir.join("message_slot2/bytes"), "x\n").unwrap();
        assert_eq!(
            read_all(&dir).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read_all(&dir).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn formats_table_and_json() {
        let stats = [SlotStat {
            minor: 0,
            values: [3, 42, 7, 12, 2, 1048576],
        }];
        assert_eq!(
            human(&stats),
            "slot  channels  bytes  writes  reads  open_files  max_channels\n\
             0            3     42       7     12           2       1048576\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json(&stats)).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([{"slot": 0, "device": "/dev/message_slot/0", "channels": 3,
                "bytes": 42, "writes": 7, "reads": 12, "open_files": 2, "max_channels": 1048576}])
        );
        assert_eq!(json(&[]), "[]");
    }
}
