/* SPDX-License-Identifier: GPL-2.0 */
/*
 * header_user.c - checks that a plain C program can use the device through
 * uapi/message_slot.h alone (MSG_SLOT_CHANNEL, MSG_SLOT_MAX_MESSAGE and the
 * mapped reader: message_slot_map, message_slot_read_mapped, message_slot_unmap).
 *
 * Opens /dev/slot1, binds channel 7, writes a 128-byte message with a NUL
 * inside, reads it back and compares it, and checks that channel 0 is
 * rejected with EINVAL. Then maps channel 7's record and reads the message
 * through it; maps a channel no one has used (a new id) and checks that it has
 * no message (EWOULDBLOCK) and sequence 0, that every write adds 2 to the
 * sequence and that the mapped reader returns what read(2) does, ENOSPC with a
 * short buffer included; and that an unbound file cannot be mapped (EINVAL).
 * Prints "header_user: ok" and exits 0 on success; otherwise prints the
 * failure (with perror where errno applies) and exits 1.
 *
 * Built by the test rig as:
 *   gcc -O3 -Wall -Wextra -Werror -std=c11 -static -I uapi -o build/header_user tests/c/header_user.c
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "message_slot.h"

#define DEVICE "/dev/slot1"
/*
 * The id is passed by value; pass it as unsigned long so that no garbage can
 * reach the upper bits of the variadic argument (the device rejects ids that
 * do not fit in 32 bits).
 */
#define CHANNEL 7ul

static int fail(const char *what)
{
	perror(what);
	return 1;
}

/* The record's sequence, loaded as the header's reader loads it. */
static uint32_t sequence(const struct message_slot_record *record)
{
	return __atomic_load_n(&record->sequence, __ATOMIC_ACQUIRE);
}

/*
 * Checks that message_slot_read_mapped and read(2) return the same: the same
 * length and bytes, or both -1 with the same errno. Returns 0 if they do.
 */
static int same_as_read(const struct message_slot_record *record, int fd,
			size_t capacity, const char *what)
{
	unsigned char mapped[MSG_SLOT_MAX_MESSAGE];
	unsigned char plain[MSG_SLOT_MAX_MESSAGE];
	ssize_t from_map, from_read;
	int map_errno, read_errno;

	memset(mapped, 0xEE, sizeof(mapped));
	memset(plain, 0xEE, sizeof(plain));
	errno = 0;
	from_map = message_slot_read_mapped(record, fd, mapped, capacity);
	map_errno = errno;
	errno = 0;
	from_read = read(fd, plain, capacity);
	read_errno = errno;
	if (from_map != from_read || (from_map < 0 && map_errno != read_errno) ||
	    memcmp(mapped, plain, sizeof(mapped)) != 0) {
		fprintf(stderr,
			"header_user: %s: message_slot_read_mapped returned %zd (errno %d), read(2) %zd (errno %d)%s\n",
			what, from_map, map_errno, from_read, read_errno,
			from_map == from_read ? ", different bytes" : "");
		return 1;
	}
	return 0;
}

/*
 * The mapped reader on fd (bound to CHANNEL, which holds msg) and on a new
 * channel of the same slot. Returns 0 if every check passes.
 */
static int mapped_reader(int fd, const unsigned char msg[MSG_SLOT_MAX_MESSAGE])
{
	/* Above the guest suite's fresh channels (0x10000000 to 0xD000FFFF). */
	unsigned long fresh = 0xE0000000ul + ((unsigned long)getpid() & 0xFFFFFFul);
	struct message_slot_mapping mapping, fresh_mapping;
	const struct message_slot_record *record;
	unsigned char got[MSG_SLOT_MAX_MESSAGE];
	static const char *const messages[] = { "first", "a second, longer message", "3" };
	uint32_t before;
	ssize_t n;
	size_t i;
	int other;

	/* Channel 7's message, from memory. */
	if (message_slot_map(fd, &mapping) != 0)
		return fail("header_user: message_slot_map (channel 7)");
	memset(got, 0xEE, sizeof(got));
	n = message_slot_read_mapped(mapping.record, fd, got, sizeof(got));
	if (n < 0)
		return fail("header_user: message_slot_read_mapped (channel 7)");
	if ((size_t)n != MSG_SLOT_MAX_MESSAGE || memcmp(got, msg, MSG_SLOT_MAX_MESSAGE) != 0) {
		fprintf(stderr, "header_user: mapped read of channel 7 returned %zd bytes that differ from the %d written\n",
			n, MSG_SLOT_MAX_MESSAGE);
		return 1;
	}
	if (same_as_read(mapping.record, fd, sizeof(got), "channel 7") != 0)
		return 1;

	/* A channel no one has used: mapping it creates it without a message. */
	other = open(DEVICE, O_RDWR);
	if (other < 0)
		return fail("header_user: open " DEVICE);
	errno = 0;
	if (message_slot_map(other, &fresh_mapping) != -1 || errno != EINVAL) {
		fprintf(stderr, "header_user: message_slot_map of an unbound file: errno %d, expected EINVAL\n",
			errno);
		return 1;
	}
	if (ioctl(other, MSG_SLOT_CHANNEL, fresh) != 0)
		return fail("header_user: ioctl(MSG_SLOT_CHANNEL, fresh id)");
	if (message_slot_map(other, &fresh_mapping) != 0)
		return fail("header_user: message_slot_map (fresh channel)");
	record = fresh_mapping.record;
	errno = 0;
	if (message_slot_read_mapped(record, other, got, sizeof(got)) != -1 || errno != EWOULDBLOCK) {
		fprintf(stderr, "header_user: mapped read of a new channel: errno %d, expected EWOULDBLOCK\n",
			errno);
		return 1;
	}
	if (sequence(record) != 0) {
		fprintf(stderr, "header_user: a new channel's sequence is %u, expected 0\n",
			(unsigned int)sequence(record));
		return 1;
	}
	if (same_as_read(record, other, sizeof(got), "new channel") != 0)
		return 1;

	/* Every write adds 2; the mapping shows each message as read(2) returns it. */
	for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		size_t len = strlen(messages[i]);

		before = sequence(record);
		if (write(other, messages[i], len) != (ssize_t)len)
			return fail("header_user: write (fresh channel)");
		if (sequence(record) != before + 2) {
			fprintf(stderr, "header_user: a write took the sequence from %u to %u, expected +2\n",
				(unsigned int)before, (unsigned int)sequence(record));
			return 1;
		}
		memset(got, 0xEE, sizeof(got));
		n = message_slot_read_mapped(record, other, got, sizeof(got));
		if (n != (ssize_t)len || memcmp(got, messages[i], len) != 0 || got[len] != 0xEE) {
			fprintf(stderr, "header_user: mapped read returned %zd, expected the %zu bytes \"%s\"\n",
				n, len, messages[i]);
			return 1;
		}
		if (same_as_read(record, other, sizeof(got), messages[i]) != 0 ||
		    same_as_read(record, other, len, "an exact buffer") != 0)
			return 1;
	}
	/* ENOSPC into a buffer shorter than the message ("3" is one byte: write a longer one). */
	if (write(other, messages[1], strlen(messages[1])) < 0)
		return fail("header_user: write (fresh channel)");
	memset(got, 0xEE, sizeof(got));
	errno = 0;
	if (message_slot_read_mapped(record, other, got, 4) != -1 || errno != ENOSPC || got[0] != 0xEE) {
		fprintf(stderr, "header_user: mapped read into 4 bytes: errno %d, expected ENOSPC and nothing copied\n",
			errno);
		return 1;
	}
	if (same_as_read(record, other, 4, "a 4-byte buffer") != 0)
		return 1;

	if (message_slot_unmap(&fresh_mapping) != 0 || message_slot_unmap(&mapping) != 0)
		return fail("header_user: message_slot_unmap");
	if (close(other) != 0)
		return fail("header_user: close");
	return 0;
}

int main(void)
{
	unsigned char msg[MSG_SLOT_MAX_MESSAGE];
	unsigned char got[MSG_SLOT_MAX_MESSAGE];
	ssize_t n;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)('A' + i % 26);
	msg[MSG_SLOT_MAX_MESSAGE / 2] = '\0';

	fd = open(DEVICE, O_RDWR);
	if (fd < 0)
		return fail("header_user: open " DEVICE);

	if (ioctl(fd, MSG_SLOT_CHANNEL, CHANNEL) != 0)
		return fail("header_user: ioctl(MSG_SLOT_CHANNEL, 7)");

	n = write(fd, msg, sizeof(msg));
	if (n < 0)
		return fail("header_user: write");
	if ((size_t)n != sizeof(msg)) {
		fprintf(stderr, "header_user: write returned %zd, expected %zu\n",
			n, sizeof(msg));
		return 1;
	}

	memset(got, 0xEE, sizeof(got));
	n = read(fd, got, sizeof(got));
	if (n < 0)
		return fail("header_user: read");
	if ((size_t)n != sizeof(msg) || memcmp(got, msg, sizeof(msg)) != 0) {
		fprintf(stderr,
			"header_user: read returned %zd bytes that differ from the %zu written\n",
			n, sizeof(msg));
		return 1;
	}

	errno = 0;
	if (ioctl(fd, MSG_SLOT_CHANNEL, 0ul) != -1 || errno != EINVAL) {
		if (errno == 0)
			fprintf(stderr, "header_user: ioctl(MSG_SLOT_CHANNEL, 0) succeeded, expected EINVAL\n");
		else
			perror("header_user: ioctl(MSG_SLOT_CHANNEL, 0): expected EINVAL, got");
		return 1;
	}

	if (mapped_reader(fd, msg) != 0)
		return 1;

	if (close(fd) != 0)
		return fail("header_user: close");

	printf("header_user: ok\n");
	return 0;
}
