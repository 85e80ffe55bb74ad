/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * message_slot.h - user-space API of the message-slot character device.
 *
 * Mirrors uapi/uapi.rs, the single source of truth; a test checks that they agree.
 *
 *   int fd = open("/dev/slot0", O_RDWR);
 *   ioctl(fd, MSG_SLOT_CHANNEL, 1);        // bind this fd to channel 1 (id != 0)
 *   write(fd, "hi", 2);                    // replace channel 1's message (1..128 bytes)
 *   char buf[MSG_SLOT_MAX_MESSAGE];
 *   ssize_t n = read(fd, buf, sizeof(buf)); // the last message, left in place
 */
#ifndef MESSAGE_SLOT_H
#define MESSAGE_SLOT_H

#include <linux/ioctl.h>

/* Character-device major number; each minor (0..255) is an independent slot. */
#define MAJOR_NUM 235

/* Binds the open file to the channel id given by value (any non-zero unsigned int). */
#define MSG_SLOT_CHANNEL _IOW(MAJOR_NUM, 0, unsigned int)

/* Largest message in bytes. */
#define MSG_SLOT_MAX_MESSAGE 128

/* The default of the module parameter max_channels: the channels per slot the device
 * supports unless loaded with another limit. */
#define MSG_SLOT_DEFAULT_MAX_CHANNELS (1u << 20)
/* Its former name, kept for programs written against it. */
#define MSG_SLOT_CHANNELS_PER_SLOT MSG_SLOT_DEFAULT_MAX_CHANNELS

#endif /* MESSAGE_SLOT_H */
