// SPDX-License-Identifier: GPL-2.0
/*
 * C functions for kernel APIs that are static inline functions (which Rust cannot call), on
 * kernels whose Rust helpers (rust/helpers/) lack them. Upstream's rust/helpers/rcu.c has
 * the same two functions for upstream's own RCU guard.
 */

#include <linux/rcupdate.h>

void message_slot_rcu_read_lock(void);
void message_slot_rcu_read_unlock(void);

void message_slot_rcu_read_lock(void)
{
	rcu_read_lock();
}

void message_slot_rcu_read_unlock(void)
{
	rcu_read_unlock();
}
