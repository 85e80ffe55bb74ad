# SPDX-License-Identifier: GPL-2.0
#
#   make              the module (message_slot.ko) and the tools (message_sender, message_reader,
#                     message_slot_stat)
#   make KDIR=...     the module against another Rust-enabled kernel build tree
#   make demo         set up the VM rig and run the example session in the guest
#   make test         set up the VM rig and run every test (host and guest)
#   make test-debug   the same on the debug kernel (KASAN, lockdep, kmemleak, failslab), plus
#                     the fuzzer and a kmemleak scan
#   make bench        benchmarks against the kernel's own IPC, in the guest
#   make bench-trace  kernel code per exchange of each benchmark case, counted from TCG's
#                     execution log (repeatable, unlike timings)
#   make lint         rustfmt, clippy, and the module's W=1 build with the kernel's clippy
#                     lints (CLIPPY=1), warning-free
#
# Without KDIR the module is built against the rig's guest kernel (vm/build-kernel builds or
# reuses it; a fresh machine needs `make setup` first, which `make demo` and `make test` do).

SHELL := /bin/bash
CARGO_TARGET := x86_64-unknown-linux-gnu
CARGO_OUT := target/$(CARGO_TARGET)/release
BUILD_VARIANT ?= base
KDIR ?= $(shell vm/build-kernel $(BUILD_VARIANT))
# CLIPPY=1 builds the module with clippy-driver: the kernel's clippy lints on top of rustc's
# (in a build directory of its own, so that the lints run even when the module is up to date).
CLIPPY ?=
MODULE_BUILD := build/$(BUILD_VARIANT)$(if $(CLIPPY),-clippy)
TOOLCHAIN = . vm/toolchain.sh && $(MAKE) -C $(KDIR) "$${KBUILD_TOOLCHAIN[@]}" $(if $(CLIPPY),CLIPPY=$(CLIPPY))

.PHONY: all module tools setup test test-debug demo lint clean bench bench-trace
all: module tools
	cp $(MODULE_BUILD)/message_slot.ko $(CARGO_OUT)/message_sender $(CARGO_OUT)/message_reader $(CARGO_OUT)/message_slot_stat .

# The module is built from a copy of kernel/ and uapi/ so that builds against different
# kernels do not share object files and the source tree stays clean.
module:
	@$(if $(CLIPPY),rm -rf $(MODULE_BUILD))
	@mkdir -p $(MODULE_BUILD)/kernel $(MODULE_BUILD)/uapi
	@cp -ru kernel/. $(MODULE_BUILD)/kernel/ && cp -ru uapi/. $(MODULE_BUILD)/uapi/
	@bash -c '$(TOOLCHAIN) M=$(CURDIR)/$(MODULE_BUILD)/kernel W=1 modules'
	@cp $(MODULE_BUILD)/kernel/message_slot.ko $(MODULE_BUILD)/message_slot.ko

tools:
	@cargo build --quiet --release --locked --target $(CARGO_TARGET) -p message-slot-tools
	@mkdir -p build/tools
	@cp $(CARGO_OUT)/message_sender $(CARGO_OUT)/message_reader $(CARGO_OUT)/message_slot_stat build/tools/

setup:
	@vm/setup-host

test: setup
	@tests/run

test-debug: setup
	@tests/run --kernel debug

demo: setup
	@vm/run --bare --add vm/demo-session.sh -- sh /demo-session.sh | sed -n '/^rig: ready/,$$p' | grep -v '^rig: \|^reboot:' || true

bench: setup
	@bench/run

bench-trace: setup
	@bench/run --trace

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --target $(CARGO_TARGET) --locked -- -D warnings
	rustfmt --check --edition 2021 kernel/message_slot_main.rs
	@out=$$($(MAKE) -s module CLIPPY=1 2>&1); status=$$?; printf '%s\n' "$$out"; \
	 [ $$status = 0 ] && ! grep -qi warning <<<"$$out"

clean:
	rm -rf build target message_slot.ko message_sender message_reader message_slot_stat
