// SPDX-License-Identifier: GPL-2.0
/*
 * C functions for kernel APIs that are static inline functions or macros (which Rust cannot
 * call) and that the target kernel's Rust helpers (rust/helpers/) lack: seqlocks (no Rust
 * abstraction upstream yet), poll wait queues (upstream's rust/helpers/poll.c and wait.c have
 * the same for kernel::sync::poll), per-CPU counters, xa_reserve()/xa_release() and
 * cond_resched().
 */

#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/seqlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>

void message_slot_init_waitqueue_head(struct wait_queue_head *head);
void message_slot_poll_wait(struct file *file, struct wait_queue_head *head,
			    struct poll_table_struct *table);
bool message_slot_poll_does_not_wait(const struct poll_table_struct *table);
int message_slot_xa_reserve(struct xarray *xa, unsigned long index, gfp_t gfp);
void message_slot_xa_release(struct xarray *xa, unsigned long index);
void *message_slot_xa_fill_reserved(struct xarray *xa, unsigned long index, void *entry);
void message_slot_seqlock_init(seqlock_t *lock);
unsigned int message_slot_read_seqbegin(const seqlock_t *lock);
bool message_slot_read_seqretry(const seqlock_t *lock, unsigned int start);
void message_slot_write_seqlock(seqlock_t *lock);
void message_slot_write_sequnlock(seqlock_t *lock);
void message_slot_write_sequnlock_wake_up_poll(seqlock_t *lock,
					       struct wait_queue_head *const *queue,
					       __poll_t events);
void message_slot_read_seqlock_excl(seqlock_t *lock);
void message_slot_read_sequnlock_excl(seqlock_t *lock);
u64 __percpu *message_slot_percpu_alloc(unsigned int count, gfp_t gfp);
void message_slot_percpu_add(u64 __percpu *counters, unsigned int index, u64 delta);
void message_slot_percpu_add2(u64 __percpu *counters, unsigned int first, u64 delta,
			      unsigned int second, u64 delta2);
u64 message_slot_percpu_sum(u64 __percpu *counters, unsigned int index);
void message_slot_percpu_free(u64 __percpu *counters);
void message_slot_cond_resched(void);


int message_slot_xa_reserve(struct xarray *xa, unsigned long index, gfp_t gfp)
{
	return xa_reserve(xa, index, gfp);
}

/* Gives back a reservation that was not filled (a no-op if index holds a real entry). */
void message_slot_xa_release(struct xarray *xa, unsigned long index)
{
	xa_release(xa, index);
}

/*
 * Stores entry at index, which xa_reserve() reserved, unless a (real) entry is there; returns
 * the entry at index afterwards, or NULL if index was not reserved or the store failed
 * (replacing a reserved entry allocates nothing, so neither happens to a reservation).
 */
void *message_slot_xa_fill_reserved(struct xarray *xa, unsigned long index, void *entry)
{
	XA_STATE(xas, xa, index);
	void *curr;

	xas_lock(&xas);
	curr = xas_load(&xas);
	if (xa_is_zero(curr)) {
		xas_store(&xas, entry);
		curr = xas_error(&xas) ? NULL : entry;
	}
	xas_unlock(&xas);
	return curr;
}

/* One lockdep class for every seqlock initialised here: their locks never nest. */
void message_slot_seqlock_init(seqlock_t *lock)
{
	seqlock_init(lock);
}

unsigned int message_slot_read_seqbegin(const seqlock_t *lock)
{
	return read_seqbegin(lock);
}

bool message_slot_read_seqretry(const seqlock_t *lock, unsigned int start)
{
	return read_seqretry(lock, start);
}

void message_slot_write_seqlock(seqlock_t *lock)
{
	write_seqlock(lock);
}

void message_slot_write_sequnlock(seqlock_t *lock)
{
	write_sequnlock(lock);
}

/*
 * write_sequnlock(), then a wake-up of the pollers of what was written, in one call (the
 * write path's only call after its stores): a full barrier (ordering the write's stores
 * before the loads below; paired with the one after poll_wait() in message_slot_poll_wait()),
 * the wait queue head *queue points to, if any (published with a release by the caller),
 * and, if it has waiters, wake_up_interruptible_poll() with events as the key. That is
 * wq_has_sleeper() on a head loaded after its barrier: without waiters, one barrier and two
 * loads.
 */
void message_slot_write_sequnlock_wake_up_poll(seqlock_t *lock,
					       struct wait_queue_head *const *queue,
					       __poll_t events)
{
	struct wait_queue_head *head;

	write_sequnlock(lock);
	smp_mb();
	head = smp_load_acquire(queue);
	if (head && waitqueue_active(head))
		wake_up_interruptible_poll(head, events);
}

void message_slot_read_seqlock_excl(seqlock_t *lock)
{
	read_seqlock_excl(lock);
}

void message_slot_read_sequnlock_excl(seqlock_t *lock)
{
	read_sequnlock_excl(lock);
}

/* One lockdep class for every head initialised here: their locks never nest. */
void message_slot_init_waitqueue_head(struct wait_queue_head *head)
{
	init_waitqueue_head(head);
}

/*
 * poll_wait(), then a full barrier that pairs with the one in
 * message_slot_write_sequnlock_wake_up_poll() above: the
 * caller checks its condition after it, so a waker either sees the new entry or the poller
 * sees the waker's change. poll_wait() itself ends with that barrier only since "poll_wait:
 * add mb() to fix theoretical race between waitqueue_active() and .poll()" (early 2025;
 * backported to 6.12.y at some release), and Kbuild accepts any 6.12.y: the barrier is ours.
 */
void message_slot_poll_wait(struct file *file, struct wait_queue_head *head,
			    struct poll_table_struct *table)
{
	poll_wait(file, head, table);
	smp_mb();
}

/*
 * Whether poll_wait() with table registers nothing: 6.12's poll_does_not_wait(), which 7.x
 * dropped (poll_wait() makes the same test); 6.12's bindings see poll_table_struct as opaque.
 */
bool message_slot_poll_does_not_wait(const struct poll_table_struct *table)
{
	return !table || !table->_qproc;
}

/* count zeroed per-CPU u64s (alloc_percpu() is a macro). */
u64 __percpu *message_slot_percpu_alloc(unsigned int count, gfp_t gfp)
{
	return __alloc_percpu_gfp(sizeof(u64) * count, __alignof__(u64), gfp);
}

/* Adds to this CPU's copy of counters[index] (one instruction on x86, preemption-safe). */
void message_slot_percpu_add(u64 __percpu *counters, unsigned int index, u64 delta)
{
	this_cpu_add(counters[index], delta);
}

void message_slot_percpu_add2(u64 __percpu *counters, unsigned int first, u64 delta,
			      unsigned int second, u64 delta2)
{
	this_cpu_add(counters[first], delta);
	this_cpu_add(counters[second], delta2);
}

/* The sum of counters[index] over every possible CPU. */
u64 message_slot_percpu_sum(u64 __percpu *counters, unsigned int index)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*per_cpu_ptr(&counters[index], cpu));
	return sum;
}

void message_slot_percpu_free(u64 __percpu *counters)
{
	free_percpu(counters);
}

/* cond_resched() is a macro (a static call under PREEMPT_DYNAMIC, nothing on PREEMPT_RT). */
void message_slot_cond_resched(void)
{
	cond_resched();
}
