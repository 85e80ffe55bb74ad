// SPDX-License-Identifier: GPL-2.0

//! `cond_resched()`, which the `kernel` crate does not wrap.

/// Yields the CPU if a reschedule is due (C's `cond_resched()`).
///
/// Only for process context with no spinlock held and outside RCU read-side critical
/// sections, as the C function requires; the kernel's `might_sleep` checks (on debug kernels)
/// catch a caller that breaks this.
pub(crate) fn cond_resched() {
    // Fully preemptible kernels without dynamic preemption have no `__cond_resched` (and need
    // none).
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    // SAFETY: `__cond_resched` may be called from any context that may sleep; calling it from
    // one that may not is a bug the kernel reports, not undefined behaviour.
    unsafe {
        kernel::bindings::__cond_resched();
    }
}
