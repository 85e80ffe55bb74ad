// SPDX-License-Identifier: GPL-2.0
/*
 * C functions for kernel APIs that are static inline functions or macros (which Rust cannot
 * call) and that the target kernel's Rust helpers (rust/helpers/) lack: a spinlock's unlock
 * with a poll wake-up, page_address() and virt_to_page(), poll wait queues (upstream's
 * rust/helpers/poll.c and wait.c have the same for kernel::sync::poll), per-CPU counters,
 * xa_reserve()/xa_release() and cond_resched().
 */

#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>

void message_slot_init_waitqueue_head(struct wait_queue_head *head);
void message_slot_poll_wait(struct file *file, struct wait_queue_head *head,
			    struct poll_table_struct *table);
bool message_slot_poll_does_not_wait(const struct poll_table_struct *table);
int message_slot_xa_reserve(struct xarray *xa, unsigned long index, gfp_t gfp);
void message_slot_xa_release(struct xarray *xa, unsigned long index);
void *message_slot_xa_fill_reserved(struct xarray *xa, unsigned long index, void *entry);
void message_slot_spin_lock_init(spinlock_t *lock);
void message_slot_spin_unlock_wake_up_poll(spinlock_t *lock, struct wait_queue_head *const *queue,
					   __poll_t events);
void *message_slot_page_address(const struct page *page);
struct page *message_slot_virt_to_page(const void *address);
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

/* One lockdep class for every lock initialised here: they never nest. */
void message_slot_spin_lock_init(spinlock_t *lock)
{
	spin_lock_init(lock);
}

/*
 * spin_unlock(), then a wake-up of the pollers of what was written under the lock, in one
 * call (the write path's only call after its stores): a full barrier (ordering the write's
 * stores before the loads below; paired with the one after poll_wait() in
 * message_slot_poll_wait()), the wait queue head *queue points to, if any (published with a
 * release by the caller), and, if it has waiters, wake_up_interruptible_poll() with events
 * as the key. That is wq_has_sleeper() on a head loaded after its barrier: without waiters,
 * one barrier and two loads.
 */
void message_slot_spin_unlock_wake_up_poll(spinlock_t *lock, struct wait_queue_head *const *queue,
					   __poll_t events)
{
	struct wait_queue_head *head;

	spin_unlock(lock);
	smp_mb();
	head = smp_load_acquire(queue);
	if (head && waitqueue_active(head))
		wake_up_interruptible_poll(head, events);
}

/* The kernel address of a page of the direct map (page_address() is a macro without HIGHMEM). */
void *message_slot_page_address(const struct page *page)
{
	return page_address(page);
}

/* The page of a kernel address of the direct map (virt_to_page() is a macro). */
struct page *message_slot_virt_to_page(const void *address)
{
	return virt_to_page(address);
}

/* One lockdep class for every head initialised here: their locks never nest. */
void message_slot_init_waitqueue_head(struct wait_queue_head *head)
{
	init_waitqueue_head(head);
}

/*
 * poll_wait(), then a full barrier that pairs with the one in
 * message_slot_spin_unlock_wake_up_poll() above: the
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
