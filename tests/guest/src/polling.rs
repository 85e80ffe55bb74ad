// SPDX-License-Identifier: GPL-2.0

//! The harness of the `poll` and epoll tests (`cases/poll.rs`, `cases/epoll.rs`): `poll(2)`
//! on one file, epoll instances and eventfds closed on drop, threads blocked in
//! `EPOLLEXCLUSIVE` waits that read and report what woke them, and a thread's count of
//! sleeps.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use message_slot::Slot;

use crate::util::{last_errno, raw_fd, Context, TestResult, MAX_MESSAGE_LEN};

/// The events of a file with a message to read.
pub(crate) const READABLE: i16 = libc::POLLIN | libc::POLLRDNORM;
/// The events of a bound file (always writable).
pub(crate) const WRITABLE: i16 = libc::POLLOUT | libc::POLLWRNORM;

/// `poll(2)` on one descriptor for `POLLIN | POLLOUT`: the returned events (0 on timeout).
pub(crate) fn poll_fd(fd: RawFd, timeout_ms: i32) -> Result<i16, String> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    ensure!(n >= 0, "poll: errno {}", last_errno());
    Ok(if n == 0 { 0 } else { pfd.revents })
}

/// Waits (at most `timeout`) until `fd` is readable: `poll` for `POLLIN` only.
pub(crate) fn wait_readable(fd: RawFd, timeout: Duration) -> Result<bool, String> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `pfd` is one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    ensure!(n >= 0, "poll: errno {}", last_errno());
    ensure!(
        n == 0 || pfd.revents & libc::POLLIN != 0,
        "poll returned {n} with revents {:#x}, not POLLIN",
        pfd.revents
    );
    Ok(n == 1)
}

/// Checks the events `poll` reports right now.
pub(crate) fn expect_events(slot: &Slot, want: i16, what: &str) -> TestResult {
    let got = poll_fd(raw_fd(slot), 0)?;
    ensure!(
        got == want,
        "{what}: poll reported {got:#x}, expected {want:#x}"
    );
    Ok(())
}

/// An epoll instance, closed on drop.
pub(crate) struct Epoll(pub(crate) RawFd);

impl Epoll {
    pub(crate) fn new() -> Result<Self, String> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        ensure!(fd >= 0, "epoll_create1: errno {}", last_errno());
        Ok(Self(fd))
    }

    pub(crate) fn ctl(&self, op: i32, fd: RawFd, events: u32) -> TestResult {
        let mut event = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: `event` is valid for the call.
        let r = unsafe { libc::epoll_ctl(self.0, op, fd, &mut event) };
        ensure!(r == 0, "epoll_ctl({op}, {fd}): errno {}", last_errno());
        Ok(())
    }

    /// The descriptors reported ready within `timeout_ms`, sorted.
    pub(crate) fn wait(&self, timeout_ms: i32) -> Result<Vec<RawFd>, String> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        let n = self.wait_into(&mut events, timeout_ms)?;
        let mut fds: Vec<RawFd> = events[..n].iter().map(|e| e.u64 as RawFd).collect();
        fds.sort();
        Ok(fds)
    }

    /// Waits at most `timeout_ms` for ready descriptors, filling `events` (each event's
    /// `u64` is its descriptor, as [`Epoll::ctl`] registers it); returns how many. Allocates
    /// nothing in user space.
    pub(crate) fn wait_into(
        &self,
        events: &mut [libc::epoll_event],
        timeout_ms: i32,
    ) -> Result<usize, String> {
        let room = i32::try_from(events.len()).unwrap_or(i32::MAX);
        // SAFETY: `events` has room for `room` events.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), room, timeout_ms) };
        ensure!(n >= 0, "epoll_wait: errno {}", last_errno());
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// An eventfd, closed on drop: once signalled it stays readable, which ends every waiter
/// that has it in its epoll set or `poll` array.
pub(crate) struct EventFd(pub(crate) RawFd);

impl EventFd {
    pub(crate) fn new() -> Result<Self, String> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        ensure!(fd >= 0, "eventfd: errno {}", last_errno());
        Ok(Self(fd))
    }

    pub(crate) fn signal(&self) -> TestResult {
        let one = 1u64;
        // SAFETY: `one` is valid for 8 bytes.
        let n = unsafe { libc::write(self.0, std::ptr::from_ref(&one).cast(), 8) };
        ensure!(n == 8, "eventfd write: errno {}", last_errno());
        Ok(())
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// `timeout` in milliseconds for `poll`/`epoll_wait`.
pub(crate) fn millis(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
}

/// The voluntary context switches of the calling thread so far: each time it went to sleep.
pub(crate) fn thread_sleeps() -> Result<i64, String> {
    // SAFETY: `rusage` is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for the call.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    ensure!(r == 0, "getrusage: errno {}", last_errno());
    Ok(usage.ru_nvcsw)
}

/// Waits (at most `timeout`) until `count` reaches `want`: the waiter threads have started.
pub(crate) fn wait_started(count: &AtomicUsize, want: usize, timeout: Duration) -> TestResult {
    let deadline = Instant::now() + timeout;
    while count.load(Ordering::SeqCst) < want {
        ensure!(
            Instant::now() < deadline,
            "only {} of {want} waiter threads started",
            count.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(10));
    }
    // Let them reach their blocking call.
    thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// A thread blocked in `epoll_wait` on its own epoll instance, which holds its own file with
/// `EPOLLIN | EPOLLEXCLUSIVE` (registered by [`ExclusiveWaiter::new`], so before the thread
/// starts) and the shared stop eventfd with plain `EPOLLIN`.
pub(crate) struct ExclusiveWaiter {
    slot: Slot,
    ep: Epoll,
}

/// What an exclusive waiter reports each time it reads a message: its index and the bytes.
pub(crate) type Report = (usize, Vec<u8>);

impl ExclusiveWaiter {
    pub(crate) fn new(slot: Slot, stop: &EventFd) -> Result<Self, String> {
        let ep = Epoll::new()?;
        ep.ctl(
            libc::EPOLL_CTL_ADD,
            raw_fd(&slot),
            (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
        )?;
        ep.ctl(libc::EPOLL_CTL_ADD, stop.0, libc::EPOLLIN as u32)?;
        Ok(Self { slot, ep })
    }

    /// Starts the thread: each time epoll reports the file it reads the message and reports
    /// it; it ends (with its number of reads) when `stop` is reported, or fails if neither
    /// comes within `limit` (a hang detector: longer than the test's writes can take).
    pub(crate) fn spawn(
        self,
        index: usize,
        stop: RawFd,
        limit: Duration,
        report: mpsc::Sender<Report>,
        started: Arc<AtomicUsize>,
    ) -> Result<thread::JoinHandle<Result<usize, String>>, String> {
        thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let fd = raw_fd(&self.slot);
                let mut reads = 0;
                started.fetch_add(1, Ordering::SeqCst);
                loop {
                    let ready = self.ep.wait(millis(limit))?;
                    ensure!(
                        !ready.is_empty(),
                        "waiter {index}: nothing reported within {limit:?}"
                    );
                    if ready.contains(&stop) {
                        return Ok(reads);
                    }
                    ensure!(ready == [fd], "waiter {index}: epoll reported {ready:?}");
                    let mut buf = [0u8; MAX_MESSAGE_LEN];
                    let n = self
                        .slot
                        .receive(&mut buf)
                        .ctx(&format!("waiter {index}: read after epoll reported it"))?;
                    reads += 1;
                    let _ = report.send((index, buf[..n].to_vec()));
                }
            })
            .ctx("spawn a waiter thread")
    }
}

/// Starts a thread per waiter (numbered in order), all reporting to one receiver; returns the
/// threads, the receiver, the count of threads that have started, and the first spawn error
/// (the threads started before it still run: end them with [`stop_waiters`]).
#[allow(clippy::type_complexity)]
pub(crate) fn spawn_waiters(
    waiters: Vec<ExclusiveWaiter>,
    stop: &EventFd,
    limit: Duration,
) -> (
    Vec<thread::JoinHandle<Result<usize, String>>>,
    mpsc::Receiver<Report>,
    Arc<AtomicUsize>,
    TestResult,
) {
    let (tx, rx) = mpsc::channel::<Report>();
    let started = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    let mut result = Ok(());
    for (i, waiter) in waiters.into_iter().enumerate() {
        match waiter.spawn(i, stop.0, limit, tx.clone(), started.clone()) {
            Ok(t) => threads.push(t),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    (threads, rx, started, result)
}

/// Ends the waiters (signals `stop`) and collects their results (their numbers of reads).
pub(crate) fn stop_waiters(
    stop: &EventFd,
    threads: Vec<thread::JoinHandle<Result<usize, String>>>,
) -> Result<Vec<usize>, String> {
    stop.signal()?;
    let mut reads = Vec::new();
    let mut first_error = None;
    for t in threads {
        match t.join().map_err(|_| "a waiter panicked".to_string()) {
            Ok(Ok(n)) => reads.push(n),
            Ok(Err(e)) | Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(reads), Err)
}
