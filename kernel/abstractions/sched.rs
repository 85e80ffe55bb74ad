// SPDX-License-Identifier: GPL-2.0

//! `cond_resched()`, which the `kernel` crate does not wrap (6.12 and 7.3 alike).

extern "C" {
    // `abstractions/helpers.c`.
    fn message_slot_cond_resched();
}

/// Yields the CPU if a reschedule is due (C's `cond_resched()`, called through `helpers.c`:
/// it is a macro, and with `CONFIG_PREEMPT_DYNAMIC` a static call that the kernel switches
/// with the preemption model chosen at boot, so only the kernel's own expansion of it is
/// right).
///
/// Only for process context with no spinlock held and outside RCU read-side critical
/// sections, as the C function requires; the kernel's `might_sleep` checks (on debug kernels)
/// catch a caller that breaks this.
pub(crate) fn cond_resched() {
    // SAFETY: `cond_resched()` may be called from any context that may sleep; calling it from
    // one that may not is a bug the kernel reports, not undefined behaviour.
    unsafe { message_slot_cond_resched() };
}
