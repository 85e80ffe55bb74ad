// SPDX-License-Identifier: GPL-2.0

//! Single-threaded exchanges: one 128-byte message written and read back by the same
//! thread, on the message slot and on the IPC mechanisms it is compared with, plus the
//! floor (the cheapest possible write + read system-call pair); and mapped reads of a
//! stable message (no write, no system call), from the device and from a memfd page.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use message_slot_test_support::minors::MINOR_BENCH_IPC;

use crate::measure::{Body, Sample, Setup, Timer};
use crate::sys::{
    bind, char_driver_major, device_node, open, open_bound, os_err, read_exact, write_all,
    MAX_MESSAGE_LEN, PAYLOAD,
};

/// One measured single-threaded case.
pub struct Case {
    /// Short stable key (JSON `name`).
    pub name: &'static str,
    /// What one exchange is, for the table.
    pub what: &'static str,
    /// The timings.
    pub sample: Sample,
}

/// Minor used by the slot cases.
const MINOR: u32 = MINOR_BENCH_IPC;

/// A case's setup function.
type SetupFn = fn() -> Result<Body<'static>, String>;

/// Every single-threaded case that makes system calls as `(name, what, setup)`, the floor
/// first; the C reference drivers only if `reference_slot.ko` is loaded. These are the cases
/// `make bench-trace` traces.
pub fn cases() -> Vec<(&'static str, &'static str, SetupFn)> {
    let mut cases: Vec<(&'static str, &'static str, SetupFn)> = vec![
        ("floor", "write /dev/null + read /dev/zero", floor),
        ("slot", "slot write + read (bound fd)", slot_hot),
        ("slot_cold", "slot ioctl + write + read", slot_cold),
        ("pipe", "pipe write + read", pipe),
        ("mqueue", "POSIX mq_send + mq_receive", mqueue),
        (
            "unix_dgram",
            "UNIX dgram socketpair send + recv",
            unix_dgram,
        ),
        ("sysv_msgq", "SysV msgsnd + msgrcv", sysv_msgq),
    ];
    if char_driver_major(REFERENCE_DRIVER).is_some() {
        cases.push(("c_copies", "C driver: plain copies, not atomic", c_copies));
        cases.push(("c_seqlock", "C driver: the slot's design", c_seqlock));
    } else {
        eprintln!("bench: {REFERENCE_DRIVER}.ko not loaded; skipping the C reference drivers");
    }
    cases
}

/// The mapped reads: no system call per read (so not traced), timed with [`cases`].
fn mapped_cases() -> [(&'static str, &'static str, SetupFn); 2] {
    [
        ("mapped", "mapped read of the record (no syscall)", mapped),
        ("shm_reference", "same read of a memfd page", shm_reference),
    ]
}

/// Runs every case of [`cases`] and [`mapped_cases`], interleaved, each repetition on a
/// fresh setup (see [`Timer::run_fresh`]).
pub fn run_all(timer: &Timer, log: &mut dyn FnMut(&Case)) -> Result<Vec<Case>, String> {
    let mut benches = cases();
    benches.extend(mapped_cases());
    let setups: Vec<(&str, Setup)> = benches
        .iter()
        .map(|&(name, _, setup)| (name, Box::new(setup) as Setup))
        .collect();
    let samples = timer.run_fresh(&setups)?;
    let mut cases = Vec::new();
    for ((name, what, _), sample) in benches.into_iter().zip(samples) {
        let case = Case { name, what, sample };
        log(&case);
        cases.push(case);
    }
    Ok(cases)
}

/// The floor: `write(/dev/null)` + `read(/dev/zero)` of 128 bytes.
pub fn floor() -> Result<Body<'static>, String> {
    let owners = (
        open("/dev/null", libc::O_WRONLY)?,
        open("/dev/zero", libc::O_RDONLY)?,
    );
    let (w, r) = (owners.0.as_raw_fd(), owners.1.as_raw_fd());
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    Ok(Box::new(move |n| {
        let _owners = &owners;
        for _ in 0..n {
            write_all(w, &out, "write /dev/null")?;
            read_exact(r, &mut buf, MAX_MESSAGE_LEN, "read /dev/zero")?;
        }
        Ok(())
    }))
}

/// The channel the `mapped` case maps (holding the payload, never written while timed).
const MAPPED_CHANNEL: u32 = 20;

/// Mapped reads of a stable 128-byte message: no system call (see [`crate::mapped`]).
fn mapped() -> Result<Body<'static>, String> {
    crate::mapped::mapped(MINOR, MAPPED_CHANNEL)
}

/// The mapped reader on a memfd page a forked process published the message in: what the
/// sequence protocol costs without the device (the goal: `mapped` within 1.3x of it).
fn shm_reference() -> Result<Body<'static>, String> {
    crate::mapped::shm_reference()
}

fn slot_hot() -> Result<Body<'static>, String> {
    write_read(open_bound(MINOR, 1)?, "slot")
}

/// Write + read of one message on `fd`, checked once before timing.
fn write_read(fd: OwnedFd, device: &str) -> Result<Body<'static>, String> {
    let (write, read) = (format!("{device} write"), format!("{device} read"));
    let raw = fd.as_raw_fd();
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    write_all(raw, &out, &write)?;
    read_exact(raw, &mut buf, MAX_MESSAGE_LEN, &read)?;
    if buf != out {
        return Err(format!("{device} read back a different message"));
    }
    Ok(Box::new(move |n| {
        let _fd = &fd;
        for _ in 0..n {
            write_all(raw, &out, &write)?;
            read_exact(raw, &mut buf, MAX_MESSAGE_LEN, &read)?;
        }
        Ok(())
    }))
}

/// The name the C reference drivers (bench/reference/reference_slot.c) register under.
pub const REFERENCE_DRIVER: &str = "reference_slot";

/// Write + read of one message on minor `minor` of the C reference driver.
fn c_reference(minor: u32) -> Result<Body<'static>, String> {
    let major = char_driver_major(REFERENCE_DRIVER)
        .ok_or_else(|| format!("{REFERENCE_DRIVER} is not registered"))?;
    let path = device_node(REFERENCE_DRIVER, major, minor)?;
    write_read(open(&path, libc::O_RDWR)?, REFERENCE_DRIVER)
}

/// The cheapest driver that copies a message in and out: no atomicity, no locking.
fn c_copies() -> Result<Body<'static>, String> {
    c_reference(0)
}

/// The slot's channel design (spinlock + seqcount, stack copies) in C.
fn c_seqlock() -> Result<Body<'static>, String> {
    c_reference(1)
}

/// Re-binds before every exchange, alternating between two channels so that every ioctl
/// really switches channel.
fn slot_cold() -> Result<Body<'static>, String> {
    let owners = open_bound(MINOR, 2)?;
    let fd = owners.as_raw_fd();
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    let mut channel = 2u32;
    Ok(Box::new(move |n| {
        let _owners = &owners;
        for _ in 0..n {
            channel ^= 1;
            bind(fd, channel)?;
            write_all(fd, &out, "slot write")?;
            read_exact(fd, &mut buf, MAX_MESSAGE_LEN, "slot read")?;
        }
        Ok(())
    }))
}

fn pipe() -> Result<Body<'static>, String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("pipe2"));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let owners = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let (r, w) = (owners.0.as_raw_fd(), owners.1.as_raw_fd());
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    Ok(Box::new(move |n| {
        let _owners = &owners;
        for _ in 0..n {
            write_all(w, &out, "pipe write")?;
            read_exact(r, &mut buf, MAX_MESSAGE_LEN, "pipe read")?;
        }
        Ok(())
    }))
}

/// A POSIX message queue that is unlinked and closed when dropped.
struct MessageQueue {
    name: CString,
    mqd: libc::mqd_t,
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // SAFETY: `mqd` is an open queue descriptor and `name` a valid string.
        unsafe {
            libc::mq_close(self.mqd);
            libc::mq_unlink(self.name.as_ptr());
        }
    }
}

fn mqueue() -> Result<Body<'static>, String> {
    // Every setup makes its own queue (they are all kept until the section ends).
    static QUEUES: AtomicU32 = AtomicU32::new(0);
    let queue = QUEUES.fetch_add(1, Ordering::Relaxed);
    let name = CString::new(format!(
        "/message-slot-bench-{}-{queue}",
        std::process::id()
    ))
    .map_err(|e| e.to_string())?;
    // SAFETY: mq_attr is plain data; all-zero is valid and the used fields are set below.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 8;
    attr.mq_msgsize = MAX_MESSAGE_LEN as libc::c_long;
    // SAFETY: `name` is a valid string and `attr` a valid attribute block for O_CREAT.
    let mqd = unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
            &attr as *const libc::mq_attr,
        )
    };
    if mqd < 0 {
        return Err(os_err("mq_open"));
    }
    let owners = MessageQueue { name, mqd };
    let q = owners.mqd;
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    Ok(Box::new(move |n| {
        let _owners = &owners;
        for _ in 0..n {
            // SAFETY: `out` is valid for `MAX_MESSAGE_LEN` bytes and `q` is open.
            if unsafe { libc::mq_send(q, out.as_ptr().cast(), MAX_MESSAGE_LEN, 0) } != 0 {
                return Err(os_err("mq_send"));
            }
            let mut prio = 0;
            // SAFETY: `buf` is valid for writes of `MAX_MESSAGE_LEN` bytes (the queue's message
            // size).
            let got =
                unsafe { libc::mq_receive(q, buf.as_mut_ptr().cast(), MAX_MESSAGE_LEN, &mut prio) };
            if got != MAX_MESSAGE_LEN as isize {
                return Err(os_err(&format!("mq_receive returned {got}")));
            }
        }
        Ok(())
    }))
}

fn unix_dgram() -> Result<Body<'static>, String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(os_err("socketpair(AF_UNIX, SOCK_DGRAM)"));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let owners = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let (a, b) = (owners.0.as_raw_fd(), owners.1.as_raw_fd());
    let (out, mut buf) = (PAYLOAD, [0u8; MAX_MESSAGE_LEN]);
    Ok(Box::new(move |n| {
        let _owners = &owners;
        for _ in 0..n {
            // SAFETY: `out` is valid for reads of `MAX_MESSAGE_LEN` bytes.
            let sent = unsafe { libc::send(a, out.as_ptr().cast(), MAX_MESSAGE_LEN, 0) };
            if sent != MAX_MESSAGE_LEN as isize {
                return Err(os_err(&format!("send returned {sent}")));
            }
            // SAFETY: `buf` is valid for writes of `MAX_MESSAGE_LEN` bytes.
            let got = unsafe { libc::recv(b, buf.as_mut_ptr().cast(), MAX_MESSAGE_LEN, 0) };
            if got != MAX_MESSAGE_LEN as isize {
                return Err(os_err(&format!("recv returned {got}")));
            }
        }
        Ok(())
    }))
}

/// The `struct msgbuf` of a 128-byte SysV message.
#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; MAX_MESSAGE_LEN],
}

/// A SysV message queue that is removed when dropped.
struct SysvQueue(libc::c_int);

impl Drop for SysvQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

fn sysv_msgq() -> Result<Body<'static>, String> {
    // SAFETY: msgget has no memory arguments.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    if id < 0 {
        return Err(os_err("msgget"));
    }
    let owners = SysvQueue(id);
    let q = owners.0;
    let out = MsgBuf {
        mtype: 1,
        mtext: PAYLOAD,
    };
    let mut inb = MsgBuf {
        mtype: 0,
        mtext: [0; MAX_MESSAGE_LEN],
    };
    Ok(Box::new(move |n| {
        let _owners = &owners;
        for _ in 0..n {
            // SAFETY: `out` is a msgbuf with `MAX_MESSAGE_LEN` bytes of text.
            if unsafe { libc::msgsnd(q, (&out as *const MsgBuf).cast(), MAX_MESSAGE_LEN, 0) } != 0 {
                return Err(os_err("msgsnd"));
            }
            // SAFETY: `inb` is a writable msgbuf with room for `MAX_MESSAGE_LEN` bytes of text.
            let got =
                unsafe { libc::msgrcv(q, (&mut inb as *mut MsgBuf).cast(), MAX_MESSAGE_LEN, 0, 0) };
            if got != MAX_MESSAGE_LEN as isize {
                return Err(os_err(&format!("msgrcv returned {got}")));
            }
        }
        Ok(())
    }))
}
