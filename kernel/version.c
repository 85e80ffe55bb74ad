// SPDX-License-Identifier: GPL-2.0
/*
 * The module's version in its modinfo (`modinfo -F version message_slot.ko`): the package
 * version, which the caller passes as MESSAGE_SLOT_VERSION (the top Makefile and DKMS's
 * dkms-build pass the workspace version of Cargo.toml, the one place it is written). Rust's
 * module! macro has no version field, hence this C object.
 */

#include <linux/module.h>

MODULE_VERSION(MESSAGE_SLOT_VERSION);
