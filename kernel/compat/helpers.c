// SPDX-License-Identifier: GPL-2.0
/*
 * C functions for kernel APIs that are static inline functions or macros (which Rust cannot
 * call), on kernels whose Rust helpers (rust/helpers/) lack them. Upstream's
 * rust/helpers/rcu.c has the same two RCU functions for upstream's own RCU guard, and
 * rust/helpers/poll.c (with rust/helpers/wait.c) the poll ones for kernel::sync::poll.
 */

#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/wait.h>

void message_slot_rcu_read_lock(void);
void message_slot_rcu_read_unlock(void);
void message_slot_init_waitqueue_head(struct wait_queue_head *head);
void message_slot_poll_wait(struct file *file, struct wait_queue_head *head,
			    struct poll_table_struct *table);
void message_slot_wake_up_poll(struct wait_queue_head *head, __poll_t events);

void message_slot_rcu_read_lock(void)
{
	rcu_read_lock();
}

void message_slot_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

/* One lockdep class for every head initialised here: their locks never nest. */
void message_slot_init_waitqueue_head(struct wait_queue_head *head)
{
	init_waitqueue_head(head);
}

/* poll_wait() ends with smp_mb(), which pairs with the one in wq_has_sleeper() below. */
void message_slot_poll_wait(struct file *file, struct wait_queue_head *head,
			    struct poll_table_struct *table)
{
	poll_wait(file, head, table);
}

/*
 * Wakes the interruptible waiters of head with events as the key, if there are any: without
 * waiters this costs a full barrier (ordering the caller's earlier stores before the check,
 * paired with poll_wait()'s) and a load.
 */
void message_slot_wake_up_poll(struct wait_queue_head *head, __poll_t events)
{
	if (wq_has_sleeper(head))
		wake_up_interruptible_poll(head, events);
}
