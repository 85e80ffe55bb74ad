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
 *
 *   struct message_slot_mapping mapping;   // or read it from memory, without a system call:
 *   message_slot_map(fd, &mapping);        // channel 1's record, mapped read-only
 *   n = message_slot_read_mapped(mapping.record, fd, buf, sizeof(buf)); // what read() gives
 *   message_slot_unmap(&mapping);
 *
 * message_slot(4) is the contract: the calls, their errors, the mapping.
 */
#ifndef MESSAGE_SLOT_H
#define MESSAGE_SLOT_H

#include <linux/ioctl.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

/* Character-device major number; each minor (0..255) is an independent slot. */
#define MAJOR_NUM 235

/* Binds the open file to the channel id given by value (any non-zero unsigned int). */
#define MSG_SLOT_CHANNEL _IOW(MAJOR_NUM, 0, unsigned int)

/* No argument; returns (as the ioctl's value, >= 0) the byte offset of the bound channel's
 * record within a mapping of the file, creating the channel (without a message) if needed.
 * Fails with EINVAL (file not bound), ENOSPC (slot at max_channels) or ENOMEM. */
#define MSG_SLOT_RECORD_OFFSET _IO(MAJOR_NUM, 1)

/* Largest message in bytes. */
#define MSG_SLOT_MAX_MESSAGE 128

/* The default of the module parameter max_channels: the channels per slot the device
 * supports unless loaded with another limit. */
#define MSG_SLOT_DEFAULT_MAX_CHANNELS (1u << 20)
/* Its former name, kept for programs written against it. */
#define MSG_SLOT_CHANNELS_PER_SLOT MSG_SLOT_DEFAULT_MAX_CHANNELS

/* Attempts message_slot_read_mapped makes before it gives up on the mapping for one read(2)
 * (the kernel's read waits for a writer instead of spinning). */
#define MSG_SLOT_MAPPED_READ_ATTEMPTS 4

/*
 * A channel's record, as a file bound to the channel maps it read-only: mmap(NULL, page size,
 * PROT_READ, MAP_SHARED, fd, 0), the record at the offset MSG_SLOT_RECORD_OFFSET returns.
 * The kernel is its only writer: it makes sequence odd, stores message (the message's bytes
 * in memory order, then zeros) and length, then makes sequence even again (every write adds
 * 2). length 0: the channel holds no message yet. Load every field with an atomic load
 * (__atomic_load_n), as message_slot_read_mapped does: the kernel changes them under you.
 */
struct message_slot_record {
	uint32_t sequence; /* even when stable, odd while the kernel writes */
	uint32_t length;   /* of the message in bytes; 0: no message yet */
	uint64_t message[MSG_SLOT_MAX_MESSAGE / sizeof(uint64_t)]; /* its bytes, then zeros */
};

#ifdef __cplusplus
static_assert(sizeof(struct message_slot_record) == 136, "a record is 136 bytes");
static_assert(offsetof(struct message_slot_record, sequence) == 0, "sequence at 0");
static_assert(offsetof(struct message_slot_record, length) == 4, "length at 4");
static_assert(offsetof(struct message_slot_record, message) == 8, "message at 8");
#else
_Static_assert(sizeof(struct message_slot_record) == 136, "a record is 136 bytes");
_Static_assert(offsetof(struct message_slot_record, sequence) == 0, "sequence at 0");
_Static_assert(offsetof(struct message_slot_record, length) == 4, "length at 4");
_Static_assert(offsetof(struct message_slot_record, message) == 8, "message at 8");
#endif

/* A page mapped by message_slot_map: the page, its size, and the bound channel's record in
 * it. The mapping keeps showing that channel if the file is re-bound or closed. */
struct message_slot_mapping {
	void *page;
	size_t page_size;
	const struct message_slot_record *record;
};

/*
 * Maps the record of the channel fd is bound to (read-only, one page) into *mapping.
 * Returns 0, or -1 with errno set (nothing left mapped): mmap's errors (EINVAL: fd is bound
 * to no channel; EACCES: fd was opened O_WRONLY; ENOSPC: a new channel in a slot at
 * max_channels; ENOMEM), MSG_SLOT_RECORD_OFFSET's, or EPROTO if the offset it returns is not
 * that of a record within the page. Do not re-bind fd from another thread meanwhile.
 */
static inline int message_slot_map(int fd, struct message_slot_mapping *mapping)
{
	long page_size = sysconf(_SC_PAGESIZE);
	void *page;
	int offset;
	int saved;

	if (page_size <= 0) {
		errno = EINVAL;
		return -1;
	}
	page = mmap(NULL, (size_t)page_size, PROT_READ, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED)
		return -1;
	offset = ioctl(fd, MSG_SLOT_RECORD_OFFSET);
	if (offset < 0 || (size_t)offset % sizeof(uint64_t) != 0 ||
	    (size_t)offset + sizeof(struct message_slot_record) > (size_t)page_size) {
		saved = offset < 0 ? errno : EPROTO;
		munmap(page, (size_t)page_size);
		errno = saved;
		return -1;
	}
	mapping->page = page;
	mapping->page_size = (size_t)page_size;
	mapping->record = (const struct message_slot_record *)((const char *)page + offset);
	return 0;
}

/* Unmaps what message_slot_map mapped: munmap's result (0, or -1 with errno). */
static inline int message_slot_unmap(struct message_slot_mapping *mapping)
{
	int result = munmap(mapping->page, mapping->page_size);

	mapping->page = NULL;
	mapping->page_size = 0;
	mapping->record = NULL;
	return result;
}

/*
 * Returns what read(fd, buffer, capacity) would, from the mapped record: the message's length
 * (its bytes copied to buffer), or -1 with errno EWOULDBLOCK (no message yet) or ENOSPC
 * (capacity is less than the message's length; nothing copied). record is the record of the
 * channel fd is bound to. Makes at most MSG_SLOT_MAPPED_READ_ATTEMPTS attempts; if a write
 * overlaps every one of them, calls read(2) on fd instead (and returns what it returns).
 */
static inline ssize_t message_slot_read_mapped(const struct message_slot_record *record, int fd,
					       void *buffer, size_t capacity)
{
	uint64_t words[MSG_SLOT_MAX_MESSAGE / sizeof(uint64_t)];
	unsigned int attempt;

	for (attempt = 0; attempt < MSG_SLOT_MAPPED_READ_ATTEMPTS; attempt++) {
		uint32_t before = __atomic_load_n(&record->sequence, __ATOMIC_ACQUIRE);
		uint32_t after;
		uint32_t length;
		size_t word;

		if (before & 1)
			continue; /* a write in progress */
		length = __atomic_load_n(&record->length, __ATOMIC_RELAXED);
		if (length > MSG_SLOT_MAX_MESSAGE)
			length = MSG_SLOT_MAX_MESSAGE; /* only ever seen torn, then retried */
		for (word = 0; word < (length + sizeof(uint64_t) - 1) / sizeof(uint64_t); word++)
			words[word] = __atomic_load_n(&record->message[word], __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		after = __atomic_load_n(&record->sequence, __ATOMIC_RELAXED);
		if (after != before)
			continue; /* a write overlapped: what was loaded may be torn */
		if (length == 0) {
			errno = EWOULDBLOCK;
			return -1;
		}
		if (length > capacity) {
			errno = ENOSPC;
			return -1;
		}
		memcpy(buffer, words, length);
		return (ssize_t)length;
	}
	return read(fd, buffer, capacity);
}

#endif /* MESSAGE_SLOT_H */
