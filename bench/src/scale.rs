// SPDX-License-Identifier: GPL-2.0

//! Scaling with the number of live channels, and kernel memory per channel.
//!
//! Each size gets its own fresh minor, filled with that many channels holding a 128-byte
//! message. Channel ids are *sparse*, `scramble(1..=N)` (a bijection of `u32` that spreads
//! them over the whole id space, so a structure indexed by dense ids gets no free ride), and
//! for 2^20 channels also *dense*, `1..=N`. Then:
//!
//! All sizes are filled first; then the `rebind` samples of every size take turns with each
//! other and with a floor sample, and so do the `bound_fds` samples, so that their ratios are
//! paired per turn.
//!
//! * `rebind`: every exchange binds one fd to a channel picked in random order (a shuffled
//!   list of all N ids, walked cyclically), writes and reads: `ioctl + write + read`;
//! * `bound_fds`: 1024 descriptors, each bound once to a random live channel, are used in a
//!   random order (a fixed random sequence of 65536 picks): `write + read` on a bound fd.
//!
//! The 2^20-channel fills are also the memory measurements: `/proc/meminfo` is read just
//! before and just after each, with every user-space buffer already allocated.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use message_slot_test_support::minors::MINORS_BENCH_SCALE;

use crate::breakdown::{cold_page, getppid, COLD_BYTES};
use crate::measure::{paired_difference, paired_ratio, round, Body, Sample, Setup, Timer};
use crate::sys::{
    bind, channel_is_empty, open_bound, open_slot, raise_fd_limit, read_exact, write_all,
    MAX_MESSAGE_LEN, PAYLOAD,
};

/// How the channel ids of a fill are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// `scramble(1..=N)`: spread over the whole `u32` space.
    Sparse,
    /// `1..=N`.
    Dense,
}

impl Ids {
    /// The id of the `i`-th channel (`i >= 1`).
    pub fn id(self, i: u32) -> u32 {
        match self {
            Ids::Sparse => scramble(i),
            Ids::Dense => i,
        }
    }

    /// Lower-case name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Ids::Sparse => "sparse",
            Ids::Dense => "dense",
        }
    }
}

/// Channel counts measured, with their ids and the minor each is filled on.
pub const SIZES: [(u32, Ids, u32); 4] = [
    (1, Ids::Sparse, MINORS_BENCH_SCALE[0]),
    (1 << 10, Ids::Sparse, MINORS_BENCH_SCALE[1]),
    (1 << 20, Ids::Sparse, MINORS_BENCH_SCALE[2]),
    (1 << 20, Ids::Dense, MINORS_BENCH_SCALE[3]),
];
/// Fills at least this large are also memory measurements.
const MEMORY_FILL: u32 = 1 << 20;
/// Descriptors of the `bound_fds` variant.
const BOUND_FDS: usize = 1024;
/// Length of the random fd visiting sequence of the `bound_fds` variant.
const FD_PICKS: usize = 1 << 16;

/// A bijection of `u32` with `scramble(0) == 0` (so non-zero ids stay non-zero).
pub fn scramble(i: u32) -> u32 {
    let mut x = i;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// One channel count's results.
pub struct Point {
    /// Live channels in the slot.
    pub channels: u32,
    /// How their ids were chosen.
    pub ids: Ids,
    /// `ioctl + write + read` with channels in random order.
    pub rebind: Sample,
    /// `write + read` on 1024 randomly bound fds used in random order.
    pub bound_fds: Sample,
    /// Nanoseconds per channel of the fill (`ioctl + write`, ids in increasing `i`).
    pub fill_ns_per_channel: f64,
}

/// The scaling results: every size's `rebind` samples were taken interleaved with each other
/// and with a floor sample, and likewise the `bound_fds` samples.
pub struct Scale {
    /// One point per entry of [`SIZES`].
    pub points: Vec<Point>,
    /// The floor, interleaved with the `rebind` samples.
    pub rebind_floor: Sample,
    /// The floor, interleaved with the `bound_fds` samples.
    pub bound_fds_floor: Sample,
    /// `getppid`, interleaved with the `rebind` samples.
    pub getppid: Sample,
    /// `getppid` plus a load from a random page of 256 MiB, interleaved likewise.
    pub cold_page: Sample,
}

impl Scale {
    /// `(rebind, bound_fds)` of `p` relative to the first point (1 channel), paired per turn.
    pub fn vs_one_channel(&self, p: &Point) -> (f64, f64) {
        let base = &self.points[0];
        (
            paired_ratio(&p.rebind, &base.rebind),
            paired_ratio(&p.bound_fds, &base.bound_fds),
        )
    }

    /// What `p`'s rebind costs over the 1-channel rebind, in cold pages (both differences
    /// paired per turn).
    pub fn rebind_extra_cold_pages(&self, p: &Point) -> f64 {
        paired_difference(&p.rebind, &self.points[0].rebind) / self.cold_page_ns()
    }

    /// One cold page in nanoseconds (paired per turn).
    pub fn cold_page_ns(&self) -> f64 {
        paired_difference(&self.cold_page, &self.getppid)
    }

    /// `(rebind, bound_fds)` of `p` relative to the floor of the same turns.
    pub fn vs_floor(&self, p: &Point) -> (f64, f64) {
        (
            paired_ratio(&p.rebind, &self.rebind_floor),
            paired_ratio(&p.bound_fds, &self.bound_fds_floor),
        )
    }
}

/// `/proc/meminfo` values in kB.
pub type MemInfo = BTreeMap<String, i64>;

/// Reads `/proc/meminfo` after folding the per-CPU counters and dropping clean caches.
pub fn meminfo() -> Result<MemInfo, String> {
    // Best effort: both only make the numbers steadier.
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
    let _ = fs::write("/proc/sys/vm/stat_refresh", "1");
    let text = fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    let mut info = MemInfo::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
            info.insert(key.to_string(), v);
        }
    }
    Ok(info)
}

/// Kernel memory per channel derived from two `/proc/meminfo` samples around a fill.
pub struct Memory {
    /// Channels added between the samples.
    pub channels: u32,
    /// How their ids were chosen.
    pub ids: Ids,
    /// Sample before the fill.
    pub before: MemInfo,
    /// Sample after the fill.
    pub after: MemInfo,
}

impl Memory {
    /// Bytes per channel of the growth of `key` (for `MemFree`/`MemAvailable`: of the drop).
    pub fn per_channel(&self, key: &str) -> f64 {
        let (b, a) = (
            self.before.get(key).copied().unwrap_or(0),
            self.after.get(key).copied().unwrap_or(0),
        );
        let delta = if key.starts_with("Mem") { b - a } else { a - b };
        delta as f64 * 1024.0 / f64::from(self.channels)
    }

    /// The keys reported, with what they mean.
    pub const KEYS: [(&'static str, &'static str); 6] = [
        ("Slab", "Slab growth"),
        ("SUnreclaim", "SUnreclaim growth"),
        ("MemFree", "MemFree drop"),
        ("MemAvailable", "MemAvailable drop"),
        ("VmallocUsed", "VmallocUsed growth"),
        ("PageTables", "PageTables growth"),
    ];

    /// The JSON object `memory_bytes_per_channel`.
    pub fn json(&self) -> Value {
        let mut per = serde_json::Map::new();
        let mut before = serde_json::Map::new();
        let mut after = serde_json::Map::new();
        for (key, _) in Self::KEYS {
            per.insert(key.to_string(), json!(round(self.per_channel(key))));
            before.insert(key.to_string(), json!(self.before.get(key)));
            after.insert(key.to_string(), json!(self.after.get(key)));
        }
        json!({
            "channels": self.channels,
            "ids": self.ids.name(),
            "message_bytes": MAX_MESSAGE_LEN,
            "method": "/proc/meminfo before and after filling a fresh minor; \
                       growth (Slab, ...) or drop (MemFree, MemAvailable) / channels",
            "bytes_per_channel": per,
            "before_kb": before,
            "after_kb": after,
        })
    }
}

/// Fills `minor` with channels `ids.id(1..=n)`, each holding [`PAYLOAD`]; returns
/// nanoseconds per channel.
fn fill(minor: u32, n: u32, ids: Ids) -> Result<f64, String> {
    if !channel_is_empty(minor, ids.id(1))? {
        return Err(format!(
            "minor {minor} already holds messages (the benchmark needs a freshly loaded module)"
        ));
    }
    let fd = open_slot(minor)?;
    let fd = fd.as_raw_fd();
    let t = Instant::now();
    for i in 1..=n {
        bind(fd, ids.id(i))?;
        write_all(fd, &PAYLOAD, "fill write")?;
    }
    Ok(t.elapsed().as_nanos() as f64 / f64::from(n))
}

/// A filled minor and the random orders its measurements use.
struct Filled {
    channels: u32,
    ids: Ids,
    minor: u32,
    /// All its channel ids, shuffled.
    order: Vec<u32>,
    /// Indices into 1024 bound fds.
    picks: Vec<usize>,
    fill_ns_per_channel: f64,
}

/// Fills every size, then measures them side by side; returns the results and the memory
/// measurements of the 2^20 fills.
pub fn run(timer: &Timer) -> Result<(Scale, Vec<Memory>), String> {
    // Every repetition's descriptors are kept until its section ends (`Timer::run_fresh`).
    raise_fd_limit((BOUND_FDS * SIZES.len() * (timer.reps + 1)) as u64 + 256)?;
    let mut rng = fastrand::Rng::with_seed(0x6d65_7373_6167_6531);
    let mut filled = Vec::new();
    let mut memory = Vec::new();
    for (n, ids, minor) in SIZES {
        // Every user-space buffer is allocated (and touched) before the fill.
        let mut order: Vec<u32> = (1..=n).map(|i| ids.id(i)).collect();
        rng.shuffle(&mut order);
        let picks: Vec<usize> = (0..FD_PICKS).map(|_| rng.usize(..BOUND_FDS)).collect();

        let before = if n >= MEMORY_FILL {
            Some(meminfo()?)
        } else {
            None
        };
        let fill_ns = fill(minor, n, ids).map_err(|e| format!("fill {n} channels: {e}"))?;
        if let Some(before) = before {
            memory.push(Memory {
                channels: n,
                ids,
                before,
                after: meminfo()?,
            });
        }
        filled.push(Filled {
            channels: n,
            ids,
            minor,
            order,
            picks,
            fill_ns_per_channel: fill_ns,
        });
    }

    // Each repetition on fresh descriptors and buffers (see `Timer::run_fresh`); the walk
    // through a size's channels goes on where the previous repetition stopped.
    // The cold-page probe takes turns with the rebinds, to price what they add.
    let cold = Arc::new(vec![1u8; COLD_BYTES]);
    let mut setups: Vec<(&str, Setup)> = vec![
        ("floor", Box::new(floor)),
        ("getppid", Box::new(|| Ok(getppid()))),
        (
            "cold page",
            Box::new(move || Ok(cold_page(Arc::clone(&cold)))),
        ),
    ];
    for f in &filled {
        let next = Rc::new(Cell::new(0));
        setups.push(("rebind", Box::new(move || rebind(f, Rc::clone(&next)))));
    }
    let mut rebind = timer
        .run_fresh(&setups)
        .map_err(|e| format!("scale rebind: {e}"))?;
    drop(setups);
    // `run_fresh` returns one sample per setup, in order.
    let rebind_floor = rebind.remove(0);
    let getppid = rebind.remove(0);
    let cold_page = rebind.remove(0);

    let mut setups: Vec<(&str, Setup)> = vec![("floor", Box::new(floor))];
    for f in &filled {
        let next = Rc::new(Cell::new(0));
        setups.push((
            "bound fds",
            Box::new(move || bound_fds(f, Rc::clone(&next))),
        ));
    }
    let mut bound = timer
        .run_fresh(&setups)
        .map_err(|e| format!("scale bound fds: {e}"))?;
    drop(setups);
    let bound_fds_floor = bound.remove(0);

    let points = filled
        .into_iter()
        .zip(rebind.into_iter().zip(bound))
        .map(|(f, (rebind, bound_fds))| Point {
            channels: f.channels,
            ids: f.ids,
            rebind,
            bound_fds,
            fill_ns_per_channel: f.fill_ns_per_channel,
        })
        .collect();
    let scale = Scale {
        points,
        rebind_floor,
        bound_fds_floor,
        getppid,
        cold_page,
    };
    Ok((scale, memory))
}

/// The floor (`crate::ipc::floor`), as a body that may borrow a fill.
fn floor<'a>() -> Result<Body<'a>, String> {
    crate::ipc::floor().map(|body| body as Body<'a>)
}

/// `ioctl + write + read` on one fd, rebinding it to the channels of `f` in shuffled order
/// from position `next`, which it advances.
fn rebind(f: &Filled, next: Rc<Cell<usize>>) -> Result<Body<'_>, String> {
    let owner = open_slot(f.minor)?;
    let fd = owner.as_raw_fd();
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    Ok(Box::new(move |iters| {
        let _owner = &owner;
        let mut at = next.get();
        for _ in 0..iters {
            bind(fd, f.order[at])?;
            at = if at + 1 == f.order.len() { 0 } else { at + 1 };
            write_all(fd, &out, "write")?;
            read_exact(fd, &mut buf, MAX_MESSAGE_LEN, "read")?;
        }
        next.set(at);
        Ok(())
    }))
}

/// `write + read` on 1024 fds bound to random channels of `f` (all of them when there are at
/// most 1024), visited in a fixed random order from position `next`, which it advances.
fn bound_fds(f: &Filled, next: Rc<Cell<usize>>) -> Result<Body<'_>, String> {
    let fds: Vec<OwnedFd> = (0..BOUND_FDS)
        .map(|k| open_bound(f.minor, f.order[k % f.order.len()]))
        .collect::<Result<_, _>>()?;
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    Ok(Box::new(move |iters| {
        let _owners = &fds;
        let mut at = next.get();
        for _ in 0..iters {
            let fd = raw[f.picks[at]];
            at = if at + 1 == f.picks.len() { 0 } else { at + 1 };
            write_all(fd, &out, "write")?;
            read_exact(fd, &mut buf, MAX_MESSAGE_LEN, "read")?;
        }
        next.set(at);
        Ok(())
    }))
}

/// The JSON object `scale`.
pub fn json(scale: &Scale) -> Value {
    let entry = |p: &Point, s: &Sample, vs_one: f64, vs_floor: f64| {
        let mut v = s.json();
        v["channels"] = json!(p.channels);
        v["ids"] = json!(p.ids.name());
        v["ratio_to_1_channel"] = json!(vs_one);
        v["ratio_to_floor"] = json!(vs_floor);
        v
    };
    let points = &scale.points;
    json!({
        "channel_ids": "sparse: scramble(1..=N), a bijection of u32 spreading ids over the id space; dense: 1..=N",
        "ratios": "median over the repetitions of the ratio within one turn (all sizes and a floor run interleaved)",
        "rebind": {
            "exchange": "ioctl + write + read, channels in random order",
            "floor": scale.rebind_floor.json(),
            "points": points.iter().map(|p| entry(p, &p.rebind, scale.vs_one_channel(p).0, scale.vs_floor(p).0)).collect::<Vec<_>>(),
        },
        "bound_fds": {
            "exchange": "write + read on one of 1024 fds bound to random live channels, fds in random order",
            "floor": scale.bound_fds_floor.json(),
            "points": points.iter().map(|p| entry(p, &p.bound_fds, scale.vs_one_channel(p).1, scale.vs_floor(p).1)).collect::<Vec<_>>(),
        },
        "fill_ns_per_channel": points.iter().map(|p| json!({
            "channels": p.channels,
            "ids": p.ids.name(),
            "ns": round(p.fill_ns_per_channel),
        })).collect::<Vec<_>>(),
    })
}
