// SPDX-License-Identifier: GPL-2.0

//! Slab accounting: `Slab` and `SUnreclaim` of `/proc/meminfo` (after asking SLUB to release
//! empty slabs), waiting for freed memory to show, and which caches of `/proc/slabinfo` grew,
//! for the tests that check that memory comes back.

use std::path::Path;
use std::time::Duration;

use crate::util::read_file;

/// How far `/proc/meminfo`'s `Slab` may end above its starting value.
pub const SLAB_TOLERANCE_KIB: u64 = 256;

/// [`slab_kib`] once it is back within tolerance of `start` KiB, or after 5 s of waiting
/// (freed slabs and RCU-deferred frees take a moment to show).
pub fn slab_kib_settled(start: u64) -> Result<(u64, u64), String> {
    let mut now = slab_kib()?;
    for _ in 0..10 {
        if now.0 <= start + SLAB_TOLERANCE_KIB {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        now = slab_kib()?;
    }
    Ok(now)
}

/// Asks SLUB to release every cache's empty slabs to the page allocator (where
/// `/sys/kernel/slab/*/shrink` exists).
pub fn shrink_slabs() {
    if let Ok(dir) = std::fs::read_dir("/sys/kernel/slab") {
        for entry in dir.flatten() {
            let _ = std::fs::write(entry.path().join("shrink"), "1");
        }
    }
}

/// `Slab` and `SUnreclaim` of `/proc/meminfo`, in KiB, after [`shrink_slabs`].
pub fn slab_kib() -> Result<(u64, u64), String> {
    shrink_slabs();
    let info = read_file(Path::new("/proc/meminfo"))?;
    Ok((
        meminfo_field(&info, "Slab")?,
        meminfo_field(&info, "SUnreclaim")?,
    ))
}

/// `/proc/meminfo`'s `key`, in KiB.
pub fn meminfo_kib(key: &str) -> Result<u64, String> {
    meminfo_field(&read_file(Path::new("/proc/meminfo"))?, key)
}

fn meminfo_field(info: &str, key: &str) -> Result<u64, String> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {key} in /proc/meminfo"))
}

/// `MemFree` in KiB once memory freed a moment ago shows there: the slab caches shrunk
/// ([`shrink_slabs`]), then read again each second, for up to 8 s, until it rises by less
/// than 1 MiB in a second. Freed VMAs and maple-tree nodes come back through RCU, and
/// `kfree_rcu` batches its frees for up to 5 s, so a reading right after a burst of
/// `mmap`/`munmap` counts memory that is already freed.
pub fn memfree_kib_settled() -> Result<u64, String> {
    shrink_slabs();
    let mut free = meminfo_kib("MemFree")?;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_secs(1));
        shrink_slabs();
        let now = meminfo_kib("MemFree")?;
        let rose = now.saturating_sub(free);
        free = now;
        if rose < 1024 {
            break;
        }
    }
    Ok(free)
}

/// `/proc/slabinfo`: cache name -> active bytes (empty if unavailable).
pub fn slabinfo() -> Vec<(String, i64)> {
    let Ok(text) = std::fs::read_to_string("/proc/slabinfo") else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let active: i64 = f.get(1)?.parse().ok()?;
            let size: i64 = f.get(3)?.parse().ok()?;
            Some((f[0].to_string(), active * size))
        })
        .collect()
}

/// The caches that grew most between two [`slabinfo`] snapshots.
pub fn slab_growth(before: &[(String, i64)], after: &[(String, i64)]) -> String {
    let mut grew: Vec<(i64, &str)> = after
        .iter()
        .map(|(name, bytes)| {
            let old = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, b)| *b);
            (bytes - old, name.as_str())
        })
        .filter(|(d, _)| *d > 0)
        .collect();
    grew.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<String> = grew
        .iter()
        .take(6)
        .map(|(d, n)| format!("{n} +{} KiB", d / 1024))
        .collect();
    if top.is_empty() {
        "no /proc/slabinfo growth".into()
    } else {
        format!("slabinfo growth: {}", top.join(", "))
    }
}
