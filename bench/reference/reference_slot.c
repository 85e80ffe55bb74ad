// SPDX-License-Identifier: GPL-2.0
/*
 * Reference drivers for the benchmark, in C: what a write + read of one message costs
 * without the message slot's Rust code, measured side by side with it.
 *
 * Char major 240 (local/experimental range), one message per minor:
 *   minor 0 ("plain copies"): copy_from_user straight into the message and copy_to_user
 *     straight out of it, no locking. Not atomic (a failed or concurrent write tears the
 *     message): the cheapest any driver doing a write copy and a read copy can be.
 *   minor 1 ("seqlock"): the message slot's channel design in C. The write copies to the
 *     stack, then stores under a spinlock + seqcount; the read copies out under the
 *     seqcount to the stack, then to user space.
 */
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#define REFERENCE_MAJOR 240
#define REFERENCE_MAX_LEN 128

struct reference_message {
	spinlock_t writer;
	seqcount_spinlock_t sequence;
	size_t len;
	u8 bytes[REFERENCE_MAX_LEN];
};

static struct reference_message messages[2];

static struct reference_message *file_message(struct file *file)
{
	return &messages[iminor(file_inode(file)) & 1];
}

static ssize_t reference_write(struct file *file, const char __user *buf, size_t len,
			       loff_t *pos)
{
	struct reference_message *message = file_message(file);
	u8 copy[REFERENCE_MAX_LEN];

	if (len == 0 || len > REFERENCE_MAX_LEN)
		return -EMSGSIZE;
	if (message == &messages[0]) {
		if (copy_from_user(message->bytes, buf, len))
			return -EFAULT;
		message->len = len;
		return len;
	}
	if (copy_from_user(copy, buf, len))
		return -EFAULT;
	spin_lock(&message->writer);
	write_seqcount_begin(&message->sequence);
	memcpy(message->bytes, copy, len);
	message->len = len;
	write_seqcount_end(&message->sequence);
	spin_unlock(&message->writer);
	return len;
}

static ssize_t reference_read(struct file *file, char __user *buf, size_t len, loff_t *pos)
{
	struct reference_message *message = file_message(file);
	u8 copy[REFERENCE_MAX_LEN];
	unsigned int sequence;
	size_t message_len;

	if (message == &messages[0]) {
		message_len = message->len;
		if (!message_len)
			return -EWOULDBLOCK;
		if (len < message_len)
			return -ENOSPC;
		return copy_to_user(buf, message->bytes, message_len) ? -EFAULT : message_len;
	}
	do {
		sequence = read_seqcount_begin(&message->sequence);
		message_len = message->len;
		memcpy(copy, message->bytes, message_len);
	} while (read_seqcount_retry(&message->sequence, sequence));
	if (!message_len)
		return -EWOULDBLOCK;
	if (len < message_len)
		return -ENOSPC;
	return copy_to_user(buf, copy, message_len) ? -EFAULT : message_len;
}

static const struct file_operations reference_fops = {
	.owner = THIS_MODULE,
	.read = reference_read,
	.write = reference_write,
};

static int __init reference_init(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(messages); i++) {
		spin_lock_init(&messages[i].writer);
		seqcount_spinlock_init(&messages[i].sequence, &messages[i].writer);
	}
	return register_chrdev(REFERENCE_MAJOR, "reference_slot", &reference_fops);
}

static void __exit reference_exit(void)
{
	unregister_chrdev(REFERENCE_MAJOR, "reference_slot");
}

module_init(reference_init);
module_exit(reference_exit);
MODULE_DESCRIPTION("Benchmark reference: one message per minor, plain copies or seqlock");
MODULE_LICENSE("GPL");
