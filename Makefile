# SPDX-License-Identifier: GPL-2.0
#
#   make                   the module (message_slot.ko) and the tools (message_sender, message_reader,
#                          message_slot_stat)
#   make KDIR=...          the module against another Rust-enabled kernel build tree
#   make KERNEL=stock-7.3  the module against Debian's stock 7.3.4 kernel (in the trixie toolchain)
#   make demo              set up the VM rig and run the example session in the guest
#   make test              set up the VM rig and run every test (host and guest) on KERNEL
#                          (default base, the rig's 6.12 kernel; stock-7.3: Debian's unmodified
#                          7.3.4 kernel; debug: as test-debug)
#   make test-debug        the same on the debug kernel (KASAN, lockdep, kmemleak, failslab),
#                          plus the fuzzer and a kmemleak scan
#   make test-all          test on base, stock-7.3 and debug
#   make bench             benchmarks against the kernel's own IPC, in the guest (on KERNEL)
#   make bench-trace       kernel code per exchange of each benchmark case, counted from TCG's
#                          execution log (repeatable, unlike timings)
#   make lint              rustfmt, clippy, and the module's W=1 build with the kernel's clippy
#                          lints (CLIPPY=1) against KERNEL, warning-free
#
# KERNEL names a kernel of the rig: base and debug are 6.12 kernels vm/build-kernel builds
# (LLVM, rustc-web); stock-7.3 is Debian's 7.3.4+deb13-amd64, whose module build tree
# vm/prepare-stock-kernel prepares and whose toolchain (gcc-14, rustc 1.85.1) runs in the trixie
# tree of vm/setup-trixie. A fresh machine needs `make setup` first (`make demo` and `make test`
# do it). KDIR=DIR builds against any other tree with the toolchain on PATH (LLVM=1 when the
# tree was built with clang); pass RUSTC=, BINDGEN=, CC= as that tree needs.

SHELL := /bin/bash
CARGO_TARGET := x86_64-unknown-linux-gnu
CARGO_OUT := target/$(CARGO_TARGET)/release
KERNEL ?= base
BUILD_VARIANT ?= $(KERNEL)
# CLIPPY=1 builds the module with clippy-driver (rust-web-clippy for base and debug, trixie's
# rust-clippy for stock-7.3): the kernel's clippy lints on top of rustc's (in a build directory
# of its own, so that the lints run even when the module is up to date).
CLIPPY ?=
MODULE_BUILD := build/$(BUILD_VARIANT)$(if $(CLIPPY),-clippy)
ifeq ($(origin KDIR),command line)
# Somebody else's tree: its own toolchain, LLVM=1 if it was built with clang.
MODULE_BUILD := build/kdir$(if $(CLIPPY),-clippy)
TOOLCHAIN = $(MAKE) -C $(KDIR) $(if $(shell grep -s '^CONFIG_CC_IS_CLANG=y' $(KDIR)/.config),LLVM=1) $(if $(CLIPPY),CLIPPY=$(CLIPPY))
else ifeq ($(BUILD_VARIANT),stock-7.3)
KDIR = $(shell vm/prepare-stock-kernel)
TOOLCHAIN = vm/trixie-run -- $(MAKE) -C $(KDIR) $$(vm/prepare-stock-kernel --make-vars) $(if $(CLIPPY),CLIPPY=$(CLIPPY))
else
KDIR = $(shell vm/build-kernel $(BUILD_VARIANT))
TOOLCHAIN = . vm/toolchain.sh && $(MAKE) -C $(KDIR) "$${KBUILD_TOOLCHAIN[@]}" $(if $(CLIPPY),CLIPPY=$(CLIPPY))
endif

.PHONY: all module tools setup test test-debug test-all demo lint clean bench bench-trace
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
	@tests/run --kernel $(KERNEL)

test-debug: setup
	@tests/run --kernel debug

test-all: setup
	@status=0; for k in base stock-7.3 debug; do tests/run --kernel $$k || status=1; done; exit $$status

demo: setup
	@vm/run --bare --add vm/demo-session.sh -- sh /demo-session.sh | sed -n '/^rig: ready/,$$p' | grep -v '^rig: \|^reboot:' || true

bench: setup
	@bench/run --kernel $(KERNEL)

bench-trace: setup
	@bench/run --trace --kernel $(KERNEL)

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --target $(CARGO_TARGET) --locked -- -D warnings
	rustfmt --check --edition 2021 kernel/message_slot_main.rs
	@echo "module (W=1 CLIPPY=1) against $(if $(filter command line,$(origin KDIR)),$(KDIR),$(BUILD_VARIANT))"
	@out=$$($(MAKE) -s module CLIPPY=1 2>&1); status=$$?; printf '%s\n' "$$out"; \
	 [ $$status = 0 ] && ! grep -qi warning <<<"$$out"

clean:
	rm -rf build target message_slot.ko message_sender message_reader message_slot_stat
