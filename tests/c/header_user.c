/* SPDX-License-Identifier: GPL-2.0 */
/*
 * header_user.c - checks that a plain C program can use the device through
 * uapi/message_slot.h alone (MSG_SLOT_CHANNEL and MSG_SLOT_MAX_MESSAGE).
 *
 * Opens /dev/slot1, binds channel 7, writes a 128-byte message with a NUL
 * inside, reads it back and compares it, and checks that channel 0 is
 * rejected with EINVAL. Prints "header_user: ok" and exits 0 on success;
 * otherwise prints the failure (with perror where errno applies) and exits 1.
 *
 * Built by the test rig as:
 *   gcc -O3 -Wall -std=c11 -static -I uapi tests/c/header_user.c
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

	if (close(fd) != 0)
		return fail("header_user: close");

	printf("header_user: ok\n");
	return 0;
}
