// SPDX-License-Identifier: GPL-2.0

//! One fuzzing worker (a thread, or a forked child of one): random operations on its own
//! descriptors, each checked against a model of the expected outcome.
//!
//! The model per descriptor is its minor, access mode and binding (descriptors are private
//! to a worker; a forked child may read and write inherited ones but never re-binds them, so
//! the parent's model stays exact). Message contents are checked with the shared codec
//! ([`message_codec`]); which channels certainly hold a message of this run comes from
//! [`Shared::written`].
//!
//! A mapped read maps the descriptor's channel the first time (`EINVAL` unbound, `EACCES`
//! write-only, else success) and then reads through that mapping as
//! [`message_slot_test_support::mapped`] does (bounded attempts, then `read(2)`): it must
//! answer what the model says `read(2)` of the mapping's channel would. A mapping keeps the
//! channel it was made for: after a re-bind of its descriptor it still shows that channel
//! (then without the `read(2)` fall-back, which would read the new one), and after the
//! descriptor is closed it may live on (read the same way), else it is unmapped.

use std::collections::HashMap;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};

use message_slot::{Slot, MAJOR_NUM};
use message_slot_test_support::mapped::MappedRecord;
use message_slot_test_support::message_codec::{self, Decoded, Meta, MAX_MESSAGE_LEN};
use message_slot_test_support::requests;
use message_slot_test_support::sys::{
    close, errno_name, last_errno, raw_ioctl, raw_read, raw_write, GuardPages,
    MSG_SLOT_CHANNEL as CMD,
};

use message_slot_test_support::minors::MINORS_RIG;

use crate::rng::Rng;
use crate::shared::{Shared, CLOSE, FORK, IOCTL, MAPPED, MINORS, OPEN, POOL, READ, WRITE};
/// Minors from this index on are the fuzzer's own nodes, where the extreme ids are used too.
const DEDICATED: usize = MINORS_RIG.len();
/// Pool entries usable on every minor (the rest are the extreme ids 1 and `u32::MAX`).
const RUN_IDS: usize = 4;
/// Descriptors a worker holds at most.
const MAX_FDS: usize = 8;
/// Mappings whose descriptor is closed that a worker keeps at most.
const MAX_ORPHANS: usize = 4;
/// A non-canonical / kernel address (`access_ok` rejects it before the driver runs).
const KERNEL_PTR: usize = 0xFFFF_8880_0000_0000;
/// A low address below any mapping of a static non-PIE binary.
const LOW_PTR: usize = 0x2000;

/// Run-wide read-only configuration.
pub struct Config {
    /// The `--seed`.
    pub seed: u64,
    /// This run's nonce (in every message).
    pub nonce: u32,
    /// Channel ids: `RUN_IDS` run-specific ones, then 1 and `u32::MAX`.
    pub pool: [u32; POOL],
    /// Device paths, one per entry of [`MINORS`].
    pub paths: Vec<PathBuf>,
    /// The shared counters.
    pub shared: &'static Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Both,
}

impl Access {
    fn open(self, path: &Path) -> message_slot::Result<Slot> {
        match self {
            Access::Read => Slot::open_read_only(path),
            Access::Write => Slot::open_write_only(path),
            Access::Both => Slot::open(path),
        }
    }
    fn can_read(self) -> bool {
        self != Access::Write
    }
    fn can_write(self) -> bool {
        self != Access::Read
    }
}

#[derive(Clone, Copy, Debug)]
struct OpenFd {
    fd: RawFd,
    minor: usize,
    access: Access,
    binding: Option<usize>,
    inherited: bool,
}

/// A mapping a worker made: of channel `channel` (pool index) of `minor` (index), through
/// the descriptor `fd`, or `None` once that is closed (the mapping outlives it).
struct Mapped {
    record: MappedRecord,
    fd: Option<RawFd>,
    minor: usize,
    channel: usize,
}

/// Where a read or write buffer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ptr {
    Valid,
    Null,
    Low,
    Guard,
    Straddle(usize),
    ReadOnly,
    Kernel,
}

/// Errno bit set (every errno the model uses is below 128).
fn bit(e: i32) -> u128 {
    1u128 << e
}

/// The error a read or write gets before the driver looks at its size or buffer: a
/// descriptor not open for it (`EBADF`, from the VFS), a kernel pointer (`EFAULT`, from
/// `access_ok`), no channel (`EINVAL`).
fn early_error(f: &OpenFd, access_allowed: bool, ptr: Ptr) -> Option<i32> {
    if !access_allowed {
        Some(libc::EBADF)
    } else if ptr == Ptr::Kernel {
        Some(libc::EFAULT)
    } else if f.binding.is_none() {
        Some(libc::EINVAL)
    } else {
        None
    }
}

fn allowed_names(errs: u128, ok: &str) -> String {
    let mut v: Vec<String> = (0..128)
        .filter(|&e| errs & (1u128 << e) != 0)
        .map(errno_name)
        .collect();
    if !ok.is_empty() {
        v.insert(0, ok.to_string());
    }
    v.join(" or ")
}

/// A worker's state.
pub struct Worker {
    cfg: &'static Config,
    rng: Rng,
    /// Writer id: `proc << 24 | thread << 16 | fork number`.
    id: u32,
    label: String,
    fds: Vec<OpenFd>,
    seq: u32,
    forks: u32,
    child: bool,
    op: u64,
    last_seen: HashMap<(u8, u8, u32), u32>,
    mappings: Vec<Mapped>,
    pages: GuardPages,
    buf: Vec<u8>,
    /// The requests the device does not have (`requests::unknown_requests`).
    unknown_requests: Vec<(String, u32)>,
}

impl Worker {
    /// A worker for process `proc` thread `thread`.
    pub fn new(cfg: &'static Config, proc: u32, thread: u32) -> Worker {
        Worker {
            cfg,
            rng: Rng::new(cfg.seed, u64::from(proc) << 32 | u64::from(thread)),
            id: proc << 24 | thread << 16,
            label: format!("proc {proc} thread {thread}"),
            fds: Vec::new(),
            seq: 0,
            forks: 0,
            child: false,
            op: 0,
            last_seen: HashMap::new(),
            mappings: Vec::new(),
            pages: GuardPages::new().expect("guard pages"),
            buf: vec![0u8; 512],
            unknown_requests: requests::unknown_requests(),
        }
    }

    /// Runs `ops` operations, then closes every descriptor.
    pub fn run(&mut self, ops: u64) {
        for _ in 0..ops {
            self.step();
        }
        for f in std::mem::take(&mut self.fds) {
            let _ = close(f.fd);
        }
    }

    fn fail(&self, what: &str, expected: &str, got: &str) {
        self.cfg.shared.fail(&format!(
            "{} op #{}: {what}: expected {expected}, got {got} (seed {})",
            self.label, self.op, self.cfg.seed
        ));
    }

    fn step(&mut self) {
        self.op += 1;
        let r = self.rng.below(1000);
        if self.fds.is_empty() || (r < 70 && self.fds.len() < MAX_FDS) {
            self.open();
        } else if r < 140 {
            self.close();
        } else if r < 340 {
            self.ioctl();
        } else if r < 660 {
            self.write();
        } else if r < 870 {
            self.read();
        } else if r < 999 || self.child {
            self.mapped_read();
        } else {
            self.fork();
        }
    }

    fn describe(&self, f: &OpenFd) -> String {
        format!(
            "fd {} (minor {}, {:?}, channel {})",
            f.fd,
            MINORS[f.minor],
            f.access,
            f.binding
                .map(|c| format!("{:#x}", self.cfg.pool[c]))
                .unwrap_or_else(|| "unbound".into())
        )
    }

    fn open(&mut self) {
        if self.fds.len() >= MAX_FDS {
            return self.close();
        }
        let minor = self.rng.below(MINORS.len() as u64) as usize;
        let access =
            [Access::Read, Access::Write, Access::Both, Access::Both][self.rng.below(4) as usize];
        let path = &self.cfg.paths[minor];
        let opened = access.open(path);
        self.cfg
            .shared
            .count(OPEN, opened.as_ref().map_or_else(|e| e.errno(), |_| 0));
        let slot = match opened {
            Ok(slot) => slot,
            Err(e) => {
                return self.fail(
                    &format!("open {} {access:?}", path.display()),
                    "success",
                    &errno_name(e.errno()),
                )
            }
        };
        self.fds.push(OpenFd {
            fd: slot.into_fd().into_raw_fd(),
            minor,
            access,
            binding: None,
            inherited: false,
        });
    }

    fn close(&mut self) {
        if self.fds.is_empty() {
            return self.open();
        }
        let i = self.rng.below(self.fds.len() as u64) as usize;
        let f = self.fds.swap_remove(i);
        // Its mapping is unmapped, or kept (without its descriptor) a while longer.
        if let Some(m) = self.mappings.iter().position(|m| m.fd == Some(f.fd)) {
            if self.rng.below(2) == 0 {
                self.mappings.swap_remove(m);
            } else {
                self.mappings[m].fd = None;
                let orphans: Vec<usize> = (0..self.mappings.len())
                    .filter(|&m| self.mappings[m].fd.is_none())
                    .collect();
                if orphans.len() > MAX_ORPHANS {
                    self.mappings.swap_remove(orphans[0]);
                }
            }
        }
        let closed = close(f.fd);
        self.cfg.shared.count(CLOSE, closed.err().unwrap_or(0));
        if let Err(e) = closed {
            self.fail(
                &format!("close {}", self.describe(&f)),
                "success",
                &errno_name(e),
            );
        }
    }

    fn pick_fd(&mut self) -> usize {
        self.rng.below(self.fds.len() as u64) as usize
    }

    fn ioctl(&mut self) {
        // Forked children never re-bind inherited descriptors (the binding belongs to the
        // open file, shared with the parent, whose model would go stale).
        let own: Vec<usize> = (0..self.fds.len())
            .filter(|&i| !self.fds[i].inherited)
            .collect();
        if own.is_empty() {
            return self.open();
        }
        let i = own[self.rng.below(own.len() as u64) as usize];
        let f = self.fds[i];
        let r = self.rng.below(100);
        // (cmd, arg, new binding if it succeeds)
        let (cmd, arg, target): (u32, u64, Option<usize>) = if r < 70 {
            let n = if f.minor >= DEDICATED { POOL } else { RUN_IDS };
            let c = self.rng.below(n as u64) as usize;
            (CMD, u64::from(self.cfg.pool[c]), Some(c))
        } else if r < 78 {
            (CMD, 0, None)
        } else if r < 88 {
            let low = u64::from(self.cfg.pool[self.rng.below(RUN_IDS as u64) as usize]);
            let high =
                [1u64 << 32, 0xFF << 32, 1 << 63, u64::MAX << 32][self.rng.below(4) as usize];
            (CMD, high | low, None)
        } else {
            // A request the device does not have: one of the neighbours of its ioctls
            // (requests::unknown_requests), or a random one of this device's type.
            let unknown = &self.unknown_requests;
            let pick = self.rng.below(unknown.len() as u64 + 1) as usize;
            let cmd = match unknown.get(pick) {
                Some(&(_, cmd)) => cmd,
                None => loop {
                    // Random commands of type 235 (never one of the VFS's generic ioctls).
                    let cmd = (self.rng.next_u64() as u32 & 0xFFFF_00FF) | (MAJOR_NUM << 8);
                    if !requests::is_known(cmd) {
                        break cmd;
                    }
                },
            };
            let arg = u64::from(self.cfg.pool[self.rng.below(RUN_IDS as u64) as usize]);
            (cmd, arg, None)
        };
        let rc = raw_ioctl(f.fd, cmd, arg);
        self.cfg.shared.count(IOCTL, rc.err().unwrap_or(0));
        let what = || format!("ioctl({}, {cmd:#010x}, {arg:#x})", self.describe(&f));
        match (target, rc) {
            (Some(c), Ok(0)) => self.fds[i].binding = Some(c),
            (Some(_), Ok(rc)) => self.fail(&what(), "success", &format!("success ({rc})")),
            (Some(_), Err(e)) => self.fail(&what(), "success", &errno_name(e)),
            (None, Err(libc::EINVAL)) => {}
            (None, Err(e)) => self.fail(&what(), "EINVAL (binding unchanged)", &errno_name(e)),
            (None, Ok(rc)) => self.fail(
                &what(),
                "EINVAL (binding unchanged)",
                &format!("success ({rc})"),
            ),
        }
    }

    fn pick_ptr(&mut self) -> Ptr {
        match self.rng.below(100) {
            0..=69 => Ptr::Valid,
            70..=77 => Ptr::ReadOnly,
            78..=85 => Ptr::Straddle(self.rng.range(1, 200)),
            86..=89 => Ptr::Null,
            90..=93 => Ptr::Low,
            94..=96 => Ptr::Guard,
            _ => Ptr::Kernel,
        }
    }

    fn address(&mut self, ptr: Ptr) -> *mut u8 {
        match ptr {
            Ptr::Valid => self.buf.as_mut_ptr(),
            Ptr::Null => std::ptr::null_mut(),
            Ptr::Low => LOW_PTR as *mut u8,
            Ptr::Guard => self.pages.inaccessible(),
            Ptr::Straddle(a) => self.pages.inaccessible().wrapping_sub(a),
            Ptr::ReadOnly => self.pages.read_only(),
            Ptr::Kernel => KERNEL_PTR as *mut u8,
        }
    }

    fn write(&mut self) {
        let i = self.pick_fd();
        let f = self.fds[i];
        let len = match self.rng.below(100) {
            0..=5 => 0,
            6..=13 => self.rng.range(MAX_MESSAGE_LEN + 1, 300),
            14..=21 => MAX_MESSAGE_LEN,
            22..=29 => self.rng.range(1, message_codec::MIN_FULL),
            _ => self.rng.range(1, MAX_MESSAGE_LEN),
        };
        let ptr = self.pick_ptr();
        self.seq += 1;
        // The bytes: a message for the bound channel (garbage past MAX_MESSAGE_LEN).
        let mut src = [0x5Au8; 300];
        if let Some(c) = f.binding {
            let meta = Meta {
                minor: MINORS[f.minor],
                channel: self.cfg.pool[c],
                nonce: self.cfg.nonce,
                writer: self.id,
                seq: self.seq,
            };
            message_codec::encode(&meta, len.clamp(1, MAX_MESSAGE_LEN), &mut src);
        }
        let addr = self.address(ptr);
        match ptr {
            Ptr::Valid => self.buf[..len].copy_from_slice(&src[..len]),
            Ptr::ReadOnly => {
                if let Err(e) = self.pages.fill_read_only(&src[..len]) {
                    return self.fail("prepare the read-only page", "success", &e);
                }
            }
            Ptr::Straddle(a) => {
                self.pages.before_guard(a, &src[..a.min(len)]);
            }
            _ => {}
        }
        let (ok, errs): (bool, u128) = if let Some(e) = early_error(&f, f.access.can_write(), ptr) {
            (false, bit(e))
        } else if len == 0 || len > MAX_MESSAGE_LEN {
            (false, bit(libc::EMSGSIZE))
        } else {
            match ptr {
                Ptr::Valid | Ptr::ReadOnly => (true, 0),
                Ptr::Straddle(a) if len <= a => (true, 0),
                _ => (false, bit(libc::EFAULT)),
            }
        };
        let n = raw_write(f.fd, addr, len);
        self.cfg.shared.count(WRITE, n.err().unwrap_or(0));
        let what = || {
            format!(
                "write({}, {ptr:?}, {len}) seq {}",
                self.describe(&f),
                self.seq
            )
        };
        match n {
            Ok(n) if !ok || n != len => self.fail(
                &what(),
                &allowed_names(errs, if ok { "success" } else { "" }),
                &format!("success ({n})"),
            ),
            Ok(_) => {
                if let Some(c) = f.binding {
                    self.cfg.shared.set_written(f.minor, c);
                }
            }
            Err(e) if e >= 128 || errs & bit(e) == 0 => self.fail(
                &what(),
                &allowed_names(errs, if ok { "success" } else { "" }),
                &errno_name(e),
            ),
            Err(_) => {}
        }
    }

    fn read(&mut self) {
        let i = self.pick_fd();
        let f = self.fds[i];
        let size = match self.rng.below(100) {
            0..=4 => 0,
            5..=24 => self.rng.range(1, MAX_MESSAGE_LEN - 1),
            25..=39 => MAX_MESSAGE_LEN,
            _ => self.rng.range(MAX_MESSAGE_LEN + 1, 300),
        };
        let ptr = self.pick_ptr();
        let addr = self.address(ptr);
        let written_before = f
            .binding
            .is_some_and(|c| self.cfg.shared.written(f.minor, c));
        // Bytes the kernel can store at `addr`.
        let cap = match ptr {
            Ptr::Valid => size,
            Ptr::Straddle(a) => a.min(size),
            _ => 0,
        };
        let (may_succeed, errs): (bool, u128) =
            if let Some(e) = early_error(&f, f.access.can_read(), ptr) {
                (false, bit(e))
            } else {
                let mut errs = 0;
                if !written_before {
                    errs |= bit(libc::EAGAIN);
                }
                if size < MAX_MESSAGE_LEN {
                    errs |= bit(libc::ENOSPC);
                }
                if cap < size && cap < MAX_MESSAGE_LEN {
                    errs |= bit(libc::EFAULT);
                }
                (cap >= 1, errs)
            };
        // The target is `self.buf`, the guard pages (ours) or memory the kernel cannot write.
        let n = raw_read(f.fd, addr, size);
        self.cfg.shared.count(READ, n.err().unwrap_or(0));
        let what = || format!("read({}, {ptr:?}, {size})", self.describe(&f));
        let expected = || allowed_names(errs, if may_succeed { "success" } else { "" });
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                if e >= 128 || errs & bit(e) == 0 {
                    self.fail(&what(), &expected(), &errno_name(e));
                }
                return;
            }
        };
        if !may_succeed || n > cap || n == 0 {
            return self.fail(&what(), &expected(), &format!("success ({n} bytes)"));
        }
        let got = match ptr {
            Ptr::Valid => self.buf[..n].to_vec(),
            // SAFETY: `n <= a`: these bytes are in our writable page before the guard.
            _ => unsafe { std::slice::from_raw_parts(addr, n) }.to_vec(),
        };
        let c = f.binding.unwrap_or(0);
        if let Err(why) = self.check_message(&got, f.minor, c, written_before) {
            let what = format!("read({}, {ptr:?}, {size})", self.describe(&f));
            self.fail(&what, "a whole message of this channel", &why);
        }
    }

    /// A mapped read: through a mapping whose descriptor is closed now and then, else through
    /// the picked descriptor's mapping, made first if it has none (`EINVAL` unbound, `EACCES`
    /// write-only; the mapping's channel is the descriptor's binding then).
    fn mapped_read(&mut self) {
        let orphans: Vec<usize> = (0..self.mappings.len())
            .filter(|&m| self.mappings[m].fd.is_none())
            .collect();
        if !orphans.is_empty() && self.rng.below(4) == 0 {
            let m = orphans[self.rng.below(orphans.len() as u64) as usize];
            return self.read_mapping(m);
        }
        let i = self.pick_fd();
        let f = self.fds[i];
        if let Some(m) = self.mappings.iter().position(|m| m.fd == Some(f.fd)) {
            return self.read_mapping(m);
        }
        let expected = if !f.access.can_read() {
            Err(libc::EACCES)
        } else if f.binding.is_none() {
            Err(libc::EINVAL)
        } else {
            Ok(())
        };
        let mapped = MappedRecord::map(f.fd);
        let what = || format!("mmap and MSG_SLOT_RECORD_OFFSET of {}", self.describe(&f));
        let show = |r: Result<(), i32>| r.map_or_else(errno_name, |()| "success".into());
        match (mapped, f.binding) {
            (Ok(record), Some(channel)) if expected.is_ok() => {
                self.mappings.push(Mapped {
                    record,
                    fd: Some(f.fd),
                    minor: f.minor,
                    channel,
                });
                self.read_mapping(self.mappings.len() - 1);
            }
            (Ok(_), _) => {
                self.cfg.shared.count(MAPPED, 0);
                self.fail(&what(), &show(expected), "success");
            }
            (Err(e), _) => {
                self.cfg.shared.count(MAPPED, e);
                if expected != Err(e) {
                    self.fail(&what(), &show(expected), &errno_name(e));
                }
            }
        }
    }

    /// Reads through mapping `m` into the valid buffer with a random size, and checks the
    /// result against the model of a `read(2)` of its channel.
    fn read_mapping(&mut self, m: usize) {
        let size = match self.rng.below(100) {
            0..=4 => 0,
            5..=24 => self.rng.range(1, MAX_MESSAGE_LEN - 1),
            25..=39 => MAX_MESSAGE_LEN,
            _ => self.rng.range(MAX_MESSAGE_LEN + 1, 300),
        };
        let (minor, channel, fd) = {
            let m = &self.mappings[m];
            (m.minor, m.channel, m.fd)
        };
        // The fall-back read(2) needs a file bound to the mapping's channel: its own, unless
        // closed or re-bound since.
        let bound_fd = fd.filter(|&fd| {
            self.fds
                .iter()
                .any(|f| f.fd == fd && f.binding == Some(channel))
        });
        let written_before = self.cfg.shared.written(minor, channel);
        let record = &self.mappings[m].record;
        let buf = &mut self.buf[..size];
        let result = match bound_fd {
            Some(fd) => record.read(fd, buf).result,
            None => match record.try_read(buf) {
                Some(result) => result,
                // Every attempt overlapped a write, and there is no file to fall back on.
                None => return,
            },
        };
        self.cfg.shared.count(MAPPED, result.err().unwrap_or(0));
        let mut errs = 0;
        if !written_before {
            errs |= bit(libc::EAGAIN);
        }
        if size < MAX_MESSAGE_LEN {
            errs |= bit(libc::ENOSPC);
        }
        let what = || {
            format!(
                "mapped read of minor {} channel {:#x} ({}), size {size}",
                MINORS[minor],
                self.cfg.pool[channel],
                match (fd, bound_fd) {
                    (None, _) => "its file closed".to_string(),
                    (Some(fd), None) => format!("fd {fd} re-bound since"),
                    (Some(fd), Some(_)) => format!("fd {fd}"),
                }
            )
        };
        let expected = allowed_names(errs, if size >= 1 { "success" } else { "" });
        match result {
            Err(e) if e >= 128 || errs & bit(e) == 0 => {
                self.fail(&what(), &expected, &errno_name(e))
            }
            Err(_) => {}
            Ok(n) if n == 0 || n > size => {
                self.fail(&what(), &expected, &format!("success ({n} bytes)"))
            }
            Ok(n) => {
                let got = self.buf[..n].to_vec();
                if let Err(why) = self.check_message(&got, minor, channel, written_before) {
                    self.fail(&what(), "a whole message of this channel", &why);
                }
            }
        }
    }

    /// Checks a message read from (minor index, pool index).
    fn check_message(
        &mut self,
        got: &[u8],
        minor: usize,
        c: usize,
        written_before: bool,
    ) -> Result<(), String> {
        let channel = self.cfg.pool[c];
        match message_codec::decode(got, MINORS[minor], channel, self.cfg.nonce)? {
            Decoded::Short => Ok(()),
            Decoded::ShortForeign if !written_before => Ok(()),
            Decoded::ShortForeign => Err(format!(
                "short message not of this run after this run wrote the channel: {}",
                message_codec::show(got)
            )),
            Decoded::Full(m) if m.nonce != self.cfg.nonce => {
                if written_before {
                    Err(format!(
                        "message of another run (nonce {:#x}) after this run wrote the channel",
                        m.nonce
                    ))
                } else {
                    Ok(())
                }
            }
            Decoded::Full(m) => {
                if m.writer == self.id && m.seq > self.seq {
                    return Err(format!(
                        "own message seq {} but only {} written so far",
                        m.seq, self.seq
                    ));
                }
                let prev = self
                    .last_seen
                    .entry((minor as u8, c as u8, m.writer))
                    .or_insert(0);
                if m.seq < *prev {
                    return Err(format!(
                        "writer {:#x} went back from seq {} to {}",
                        m.writer, *prev, m.seq
                    ));
                }
                *prev = m.seq;
                Ok(())
            }
        }
    }

    fn fork(&mut self) {
        self.forks += 1;
        let child_seed = self.rng.next_u64();
        let ops = self.rng.range(8, 40) as u64;
        // SAFETY: the child only runs this worker's loop (malloc is fork-safe in glibc) and
        // leaves with `_exit`, never returning into the parent's code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = last_errno();
            self.cfg.shared.count(FORK, e);
            return self.fail("fork", "success", &errno_name(e));
        }
        if pid == 0 {
            self.child = true;
            self.id |= self.forks & 0xFFFF;
            self.label = format!("{} fork {}", self.label, self.forks);
            self.rng = Rng::new(child_seed, 1);
            self.seq = 0;
            self.op = 0;
            for f in &mut self.fds {
                f.inherited = true;
            }
            self.run(ops);
            // SAFETY: ends the child without running the parent's destructors or atexit.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        let fine = rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        self.cfg
            .shared
            .count(FORK, if fine { 0 } else { libc::ECHILD });
        if !fine {
            self.fail(
                &format!("fork child {pid}"),
                "exit status 0",
                &format!("wait status {status:#x}"),
            );
        }
    }

    /// The final check from the main process: every pool channel of every minor holds a
    /// message of this run if one was written, and a valid (or earlier run's) one otherwise.
    pub fn sweep(cfg: &'static Config) {
        let mut w = Worker::new(cfg, 255, 255);
        w.label = "final sweep".into();
        w.seq = u32::MAX;
        for (m, path) in cfg.paths.iter().enumerate() {
            let slot = match Slot::open(path) {
                Ok(slot) => slot,
                Err(e) => {
                    w.fail(
                        &format!("open {}", path.display()),
                        "success",
                        &e.to_string(),
                    );
                    continue;
                }
            };
            let n_ids = if m >= DEDICATED { POOL } else { RUN_IDS };
            for c in 0..n_ids {
                let id = cfg.pool[c];
                let written = cfg.shared.written(m, c);
                let what = format!("sweep minor {} channel {id:#x}", MINORS[m]);
                if let Err(e) = slot.set_channel(id) {
                    w.fail(&what, "bind", &errno_name(e.errno()));
                    continue;
                }
                match slot.receive(&mut w.buf[..MAX_MESSAGE_LEN]) {
                    Err(e) if e.errno() != libc::EAGAIN || written => {
                        w.fail(&what, "a message", &errno_name(e.errno()));
                    }
                    Err(_) => {}
                    Ok(n) => {
                        let got = w.buf[..n].to_vec();
                        if let Err(why) = w.check_message(&got, m, c, written) {
                            w.fail(&what, "a whole message of this channel", &why);
                        }
                    }
                }
            }
        }
    }
}
