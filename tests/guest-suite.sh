#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest (tests/run adds it): the in-guest suite and, on the debug kernel, the
# model-based fuzzer and a kmemleak scan after the module is unloaded; in smoke mode only the
# install session (below) and rmmod. Prints PASS/FAIL/SKIP lines; the suite's own ends with its
# summary line `N passed, M failed, K skipped`, and this script ends with the summary line of
# its own checks (tests/run adds the two up: it expects one in smoke mode, two otherwise).
#
#   sh /guest-suite.sh VARIANT|smoke [SUITE_FILTER...]      (VARIANT: debug, or any other kernel)
mode=$1
shift
passed=0
failed=0
verdict() { # NAME STATUS
	if [ "$2" = 0 ]; then
		passed=$((passed + 1)); echo "PASS $1"
	else
		failed=$((failed + 1)); echo "FAIL $1"
	fi
}

# The kernel the guest booted, for tests/run's check against the table (preempt_rt: 1 when the
# kernel's version string says PREEMPT_RT, as a PREEMPT_RT build's does: "#1 SMP PREEMPT_RT ...").
case $(uname -v) in *PREEMPT_RT*) preempt_rt=1 ;; *) preempt_rt=0 ;; esac
echo "guest: kernel $(uname -r) preempt_rt $preempt_rt ($(uname -v))"

if [ "$mode" = debug ]; then
	export MSG_SLOT_DEBUG_KERNEL=1
	# Sanitizers make every call tens of times slower; hang timeouts stretch accordingly.
	export MSG_SLOT_TIMEOUT_SCALE=10
	# 100,000 files (the least the churn test must show) keep KASAN's run to a few minutes.
	export MSG_SLOT_CHURN_FILES=100000
	# The scale tests' code paths at a scale KASAN, lockdep and kmemleak judge in minutes:
	# 300,000 channels per slot, more than 2^18, so the buckets' XArray grows to the fourth
	# level as at 2^20 and over 10,000 record pages are given out and freed. The full 2^20, and
	# the memory per channel, are checked on base and rt, where they take seconds.
	export MSG_SLOT_SCALE_CHANNELS=300000
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	# Only what the tests leak counts, not boot-time objects.
	echo clear >/sys/kernel/debug/kmemleak
fi

if [ "$mode" != smoke ]; then
	/message-slot-guest-tests "$@"
fi

# The files `make install` staged on the host, and the example session through them.
if [ -f /install-session.sh ]; then
	sh /install-session.sh | tee /tmp/install.log
	passed=$((passed + $(grep -c '^PASS ' /tmp/install.log)))
	failed=$((failed + $(grep -c '^FAIL ' /tmp/install.log)))
fi

if [ "$mode" = smoke ]; then
	rmmod message_slot && [ ! -d /sys/module/message_slot ]
	verdict "smoke: the installed module unloads (rmmod)" $?
fi

if [ "$mode" = debug ]; then
	/message-slot-fuzz --ops "${MSG_SLOT_FUZZ_OPS:-1000000}"
	verdict "fuzzer: every result matches the model" $?

	rmmod message_slot
	verdict "module unloads after the suite and the fuzzer" $?
	# kmemleak reports objects older than ~5 s; scan twice, as its documentation advises.
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >/tmp/leaks
	cat /tmp/leaks
	verdict "kmemleak finds no leaks" "$([ -s /tmp/leaks ] && echo 1 || echo 0)"
fi

echo "$passed passed, $failed failed, 0 skipped"
