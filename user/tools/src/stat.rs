// SPDX-License-Identifier: GPL-2.0

//! `message_slot_stat`: the statistics of every slot that has a class device, read from
//! sysfs (`/sys/class/message_slot/message_slotN/STATISTIC`, one file per
//! `message_slot::Statistic`: mode 0440, readable by root and, through the udev rule, the
//! device nodes' group).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::Parser;
use message_slot::{Statistic, Statistics, CLASS_NAME};

/// Print the statistics of every message slot.
///
/// Prints, for every message slot with a class device, each of its statistics: the files of
/// its sysfs directory, see message_slot(4) (exit 0; 1 on error, e.g. the module is not
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
    /// Its statistics.
    pub values: Statistics,
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
        let values = Statistics::try_from_fn(|statistic| {
            let path: PathBuf = entry.path().join(statistic.as_str());
            let text = fs::read_to_string(&path)?;
            text.trim().parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a number: {text:?}", path.display()),
                )
            })
        })?;
        stats.push(SlotStat { minor, values });
    }
    stats.sort_by_key(|s| s.minor);
    Ok(stats)
}

/// A table with a header line, one line per slot, columns aligned.
pub fn human(stats: &[SlotStat]) -> String {
    let mut rows = vec![std::iter::once("slot".to_string())
        .chain(Statistic::ALL.map(|statistic| statistic.as_str().to_string()))
        .collect::<Vec<_>>()];
    for stat in stats {
        rows.push(
            std::iter::once(stat.minor.to_string())
                .chain(stat.values.iter().map(|(_, value)| value.to_string()))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..rows[0].len())
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
            for (statistic, value) in stat.values.iter() {
                object.insert(statistic.as_str().into(), value.into());
            }
            object.into()
        })
        .collect();
    serde_json::Value::from(slots).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statistics with distinct values, each `base` plus a different number of digits.
    fn sample(base: u64) -> Statistics {
        let mut next = base;
        Statistics::try_from_fn(|_| -> Result<u64, ()> {
            next = next * 10 + 7;
            Ok(next)
        })
        .unwrap()
    }

    fn fake_class(dir: &Path, minor: u32, values: &Statistics) {
        let device = dir.join(format!("message_slot{minor}"));
        fs::create_dir_all(&device).unwrap();
        for (statistic, value) in values.iter() {
            fs::write(device.join(statistic.as_str()), format!("{value}\n")).unwrap();
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
        let (ten, two) = (sample(1), sample(2));
        fake_class(&dir, 10, &ten);
        fake_class(&dir, 2, &two);
        fs::create_dir_all(dir.join("unrelated")).unwrap();
        let stats = read_all(&dir).unwrap();
        assert_eq!(
            stats,
            vec![
                SlotStat {
                    minor: 2,
                    values: two
                },
                SlotStat {
                    minor: 10,
                    values: ten
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
            values: sample(3),
        }];
        // A header line (slot, then the statistics' names) and a line per slot, each value
        // right-aligned under its name, the minor left-aligned under "slot".
        let table = human(&stats);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        // The cells of a line, each with the column it ends at.
        let cells = |line: &str| -> Vec<(String, usize)> {
            let mut cells = Vec::new();
            let mut start = None;
            for (column, c) in line.char_indices().chain([(line.len(), ' ')]) {
                match (c == ' ', start) {
                    (false, None) => start = Some(column),
                    (true, Some(from)) => {
                        cells.push((line[from..column].to_string(), column));
                        start = None;
                    }
                    _ => {}
                }
            }
            cells
        };
        let (header, row) = (cells(lines[0]), cells(lines[1]));
        let names = std::iter::once("slot").chain(Statistic::ALL.map(Statistic::as_str));
        assert!(
            header.iter().map(|(cell, _)| cell.as_str()).eq(names),
            "{table}"
        );
        let values = stats[0].values.iter().map(|(_, value)| value.to_string());
        let values: Vec<String> = std::iter::once("0".to_string()).chain(values).collect();
        assert!(row.iter().map(|(cell, _)| cell).eq(&values), "{table}");
        assert!(lines[1].starts_with("0 "), "{table}");
        for ((name, name_end), (value, value_end)) in header.iter().zip(&row).skip(1) {
            assert_eq!(name_end, value_end, "{name} {value} not aligned:\n{table}");
        }
        let parsed: serde_json::Value = serde_json::from_str(&json(&stats)).unwrap();
        let mut object = serde_json::json!({"slot": 0, "device": "/dev/message_slot/0"});
        for (statistic, value) in stats[0].values.iter() {
            object[statistic.as_str()] = value.into();
        }
        assert_eq!(parsed, serde_json::json!([object]));
        assert_eq!(json(&[]), "[]");
    }
}
