# SPDX-License-Identifier: GPL-2.0
#
#   make                   the module (message_slot.ko) and the tools (message_sender, message_reader,
#                          message_slot_stat) with their manual pages (build/man: the tools' pages
#                          generated from their clap definitions, and message_slot.4)
#   make KDIR=...          the module against another Rust-enabled kernel build tree
#   make KERNEL=VARIANT    the module against another kernel of the rig's table (vm/kernels):
#                          stock-* are Debian's (built in the trixie toolchain;
#                          `vm/lib.sh table` lists them)
#   make demo              set up the VM rig and run the example session in the guest
#   make test              set up the VM rig and run every test (host and guest) on KERNEL
#                          (default: the table's first row; on stock-* the module built by
#                          DKMS; debug: as test-debug; the smoke run on the kernels the
#                          table's `test` column says)
#   make test SMOKE=1      the smoke run on KERNEL (host checks, DKMS build; in the guest: load,
#                          example session through the installed tools, unload)
#   make test-debug        the same on the debug kernel (KASAN, lockdep, kmemleak, failslab),
#                          plus the fuzzer and a kmemleak scan
#   make test-all          test on every kernel of the table, in its order
#   make bench             benchmarks against the kernel's own IPC, in the guest (on KERNEL)
#   make bench-trace       kernel code per exchange of each benchmark case, counted from TCG's
#                          execution log (repeatable, unlike timings)
#   make lint              rustfmt, clippy, and the module's W=1 build with the kernel's clippy
#                          lints (CLIPPY=1) against KERNEL, warning-free
#   make install           install what `make` built (as root; same KDIR=/KERNEL= as the build):
#                          the module to /lib/modules/KVER/updates/ (then depmod), the tools to
#                          PREFIX/bin, their pages, message_slot(4) and
#                          message-slot-prepare-kernel(8) to PREFIX/share/man,
#                          message_slot.h to PREFIX/include/linux/, the udev rule, the
#                          tmpfiles.d line of the static node /dev/message_slot/0 and
#                          message-slot-static-nodes (PREFIX/lib/message-slot),
#                          message-slot-prepare-kernel to PREFIX/sbin; on this system (no
#                          DESTDIR) also the group message-slot and the static node (the module
#                          then loads on first use: docs/autoload.md); INSTALL_MODULES_LOAD=1
#                          adds /etc/modules-load.d/message-slot.conf. DESTDIR stages it all
#                          (depmod -b DESTDIR). PREFIX defaults to /usr/local.
#   make install-dkms      the same without the module: its source and dkms.conf go to
#                          /usr/src/message-slot-VERSION for `dkms install message-slot/VERSION`,
#                          plus kernel hooks (/etc/kernel/header_postinst.d, postrm.d) that
#                          prepare a new kernel's Rust metadata before DKMS builds for it
#   make uninstall         removes what either installed (the module from every kernel)
#   make dkms-source       only the DKMS source tree (DESTDIR, DKMS_SOURCE_DIR)
#   make deb               the Debian packages message-slot-dkms and message-slot-tools (debian/),
#                          built with dpkg-buildpackage in the trixie tree from the tools `make
#                          tools` built here, then checked with lintian: build/deb/*.deb
#                          (packaging/build-deb)
#
# KERNEL names a kernel of the rig (the table in vm/kernels): the rig's own (base, debug)
# vm/build-kernel builds (LLVM, rustc-web); stock-* are Debian's unmodified kernels, whose
# module build trees vm/prepare-stock-kernel prepares and whose toolchain (trixie's gcc-14 and
# rustc) runs in the trixie tree of vm/setup-trixie. A fresh machine
# needs `make setup` first (`make demo` and `make test` do it). KDIR=DIR builds against any
# other tree with the toolchain on PATH (LLVM=1 when the tree was built with clang); pass
# RUSTC=, BINDGEN=, CC= as that tree needs.

SHELL := /bin/bash
# The package's name and version, for DKMS and `make install`: the version is the workspace's.
PACKAGE_NAME := message-slot
PACKAGE_VERSION := $(shell vm/lib.sh package-version)
# The kernel series the module is tested on (vm/kernels), for Kbuild's message on any other.
TESTED_SERIES := $(shell vm/lib.sh series | sort -V | paste -sd,)
# The installed tools (each a binary of user/tools, built into build/tools).
TOOLS := message_sender message_reader message_slot_stat
CARGO_TARGET := x86_64-unknown-linux-gnu
CARGO_OUT := target/$(CARGO_TARGET)/release
# The default kernel is the first row of vm/kernels.
KERNEL ?= $(shell vm/lib.sh default-variant)
BUILD_VARIANT ?= $(KERNEL)
# CLIPPY=1 builds the module with clippy-driver (rust-web-clippy for base and debug, trixie's
# rust-clippy for stock-*): the kernel's clippy lints on top of rustc's (in a build directory
# of its own, so that the lints run even when the module is up to date).
CLIPPY ?=
MODULE_BUILD := build/$(BUILD_VARIANT)$(if $(CLIPPY),-clippy)
ifeq ($(origin KDIR),command line)
# Somebody else's tree: its own toolchain, LLVM=1 if it was built with clang.
MODULE_BUILD := build/kdir$(if $(CLIPPY),-clippy)
TOOLCHAIN = $(MAKE) -C $(KDIR) $(if $(shell grep -s '^CONFIG_CC_IS_CLANG=y' $(KDIR)/.config),LLVM=1) $(if $(CLIPPY),CLIPPY=$(CLIPPY))
else
# A kernel of the rig (vm/lib.sh: its build tree, made if missing, and its toolchain).
TOOLCHAIN = vm/lib.sh kmake $(BUILD_VARIANT) $(if $(CLIPPY),CLIPPY=$(CLIPPY))
endif

.PHONY: all module tools setup test test-debug test-all demo lint clean bench bench-trace \
	install install-dkms install-common uninstall dkms-source deb
all: module tools
	cp $(MODULE_BUILD)/message_slot.ko $(addprefix $(CARGO_OUT)/,$(TOOLS)) .

# The module is built from a copy of kernel/ and uapi/ so that builds against different
# kernels do not share object files and the source tree stays clean.
module:
	@$(if $(CLIPPY),rm -rf $(MODULE_BUILD))
	@mkdir -p $(MODULE_BUILD)/kernel $(MODULE_BUILD)/uapi
	@cp -ru kernel/. $(MODULE_BUILD)/kernel/ && cp -ru uapi/. $(MODULE_BUILD)/uapi/
	@bash -c '$(TOOLCHAIN) M=$(CURDIR)/$(MODULE_BUILD)/kernel MESSAGE_SLOT_VERSION=$(PACKAGE_VERSION) MESSAGE_SLOT_TESTED=$(TESTED_SERIES) W=1 modules'
	@cp $(MODULE_BUILD)/kernel/message_slot.ko $(MODULE_BUILD)/message_slot.ko

# The tools, and their manual pages written by message-slot-man (user/man) from the same clap
# definitions as their --help, next to the device's page.
tools:
	@cargo build --quiet --release --locked --target $(CARGO_TARGET) -p message-slot-tools -p message-slot-man
	@mkdir -p build/tools build/man
	@cp $(addprefix $(CARGO_OUT)/,$(TOOLS)) build/tools/
	@$(CARGO_OUT)/message-slot-man build/man
	@for page in message_slot.4 message-slot-prepare-kernel.8; do \
		sed 's/@PACKAGE_VERSION@/$(PACKAGE_VERSION)/' packaging/man/$$page.in >build/man/$$page; done

deb: tools
	@packaging/build-deb

setup:
	@vm/setup-host

test: setup
	@tests/run --kernel $(KERNEL) $(if $(SMOKE),--smoke)

test-debug: setup
	@tests/run --kernel debug

test-all: setup
	@status=0; for k in $$(vm/lib.sh variants); do tests/run --kernel $$k || status=1; done; exit $$status

demo: setup
	@vm/run --bare --add vm/demo-session.sh -- sh /demo-session.sh | sed -n '/^rig: ready/,$$p' | grep -v '^rig: \|^reboot:' || true

bench: setup
	@bench/run --kernel $(KERNEL)

bench-trace: setup
	@bench/run --trace --kernel $(KERNEL)

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --target $(CARGO_TARGET) --locked -- -D warnings
	@# Intra-doc links, the kernel files' too: the host-test crate compiles channel.rs,
	@# channel_index.rs, record.rs, record_pages.rs and abstractions/uaccess.rs (cfg(test), as
	@# `cargo test` builds it).
	cargo rustdoc --quiet -p message-slot-kernel-host-tests --lib --target $(CARGO_TARGET) --locked -- \
	  --cfg test --document-private-items -D rustdoc::broken_intra_doc_links \
	  -A rustdoc::private_intra_doc_links
	rustfmt --check --edition 2021 kernel/message_slot_main.rs
	@echo "module (W=1 CLIPPY=1) against $(if $(filter command line,$(origin KDIR)),$(KDIR),$(BUILD_VARIANT))"
	@out=$$($(MAKE) -s module CLIPPY=1 2>&1); status=$$?; printf '%s\n' "$$out"; \
	 [ $$status = 0 ] && ! grep -qi warning <<<"$$out"

# Installation. Nothing is built here (`sudo make install` need not find cargo): build first.
DESTDIR ?=
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/lib/message-slot
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
UDEV_RULES_DIR ?= /etc/udev/rules.d
TMPFILES_DIR ?= /etc/tmpfiles.d
MODULES_LOAD_DIR ?= /etc/modules-load.d
DKMS_SOURCE_DIR ?= /usr/src/$(PACKAGE_NAME)-$(PACKAGE_VERSION)
KERNEL_HOOKS_DIR ?= /etc/kernel
INSTALL_MODULES_LOAD ?=
MODULE_KO ?= $(MODULE_BUILD)/message_slot.ko
MAN_PAGES := $(addprefix build/man/,$(addsuffix .1,$(TOOLS)) message_slot.4 message-slot-prepare-kernel.8)
# depmod for kernel $(1); in DESTDIR when staging, where the kernel's own modules.order and
# modules.builtin* are usually absent (depmod's warnings about those are not shown).
depmod = if [ -z "$(DESTDIR)" ]; then depmod -a $(1); else \
	depmod -b "$(DESTDIR)" $(1) 2>&1 | { grep -v 'could not open modules\.\(order\|builtin\)' >&2 || true; }; \
	[ $${PIPESTATUS[0]} = 0 ]; fi
# On this system (no DESTDIR): the static node /dev/message_slot/0 now rather than at the next
# boot, after an install (add) or a removal (remove), as the package's postinst and prerm do.
static_nodes = if [ -z "$(DESTDIR)" ]; then packaging/message-slot-static-nodes $(1); fi

install: install-common
	@[ -f $(MODULE_KO) ] || { echo "make install: no $(MODULE_KO): run make first (with the same KDIR=/KERNEL=)" >&2; exit 1; }
	@set -e; kver=$$(modinfo -F vermagic $(MODULE_KO) | cut -d' ' -f1); \
	 install -D -m 0644 $(MODULE_KO) "$(DESTDIR)/lib/modules/$$kver/updates/message_slot.ko"; \
	 $(call depmod,$$kver); \
	 echo "installed message_slot.ko for $$kver in $(DESTDIR)/lib/modules/$$kver/updates/"; \
	 $(call static_nodes,add)

install-dkms: install-common dkms-source
	sed 's|@SBINDIR@|$(SBINDIR)|; s|@DKMS_SOURCE_DIR@|$(DKMS_SOURCE_DIR)|' packaging/kernel/header_postinst.d-message-slot >"$(DESTDIR)$(DKMS_SOURCE_DIR)/.hook"
	install -D -m 0755 "$(DESTDIR)$(DKMS_SOURCE_DIR)/.hook" "$(DESTDIR)$(KERNEL_HOOKS_DIR)/header_postinst.d/50message-slot"
	rm "$(DESTDIR)$(DKMS_SOURCE_DIR)/.hook"
	install -D -m 0755 packaging/kernel/postrm.d-message-slot "$(DESTDIR)$(KERNEL_HOOKS_DIR)/postrm.d/50message-slot"
	@echo "installed the DKMS source in $(DESTDIR)$(DKMS_SOURCE_DIR); build and install the module with:"
	@echo "  dkms install $(PACKAGE_NAME)/$(PACKAGE_VERSION) -k KVER"

install-common:
	@for f in $(addprefix build/tools/,$(TOOLS)) $(MAN_PAGES); do [ -f $$f ] || { echo "make install: no $$f: run make first" >&2; exit 1; }; done
	install -D -m 0755 -t "$(DESTDIR)$(BINDIR)" $(addprefix build/tools/,$(TOOLS))
	install -D -m 0644 -t "$(DESTDIR)$(MANDIR)/man1" $(filter %.1,$(MAN_PAGES))
	install -D -m 0644 -t "$(DESTDIR)$(MANDIR)/man4" $(filter %.4,$(MAN_PAGES))
	install -D -m 0644 -t "$(DESTDIR)$(MANDIR)/man8" $(filter %.8,$(MAN_PAGES))
	install -D -m 0755 packaging/message-slot-prepare-kernel "$(DESTDIR)$(SBINDIR)/message-slot-prepare-kernel"
	install -D -m 0644 uapi/message_slot.h "$(DESTDIR)$(INCLUDEDIR)/linux/message_slot.h"
	install -D -m 0644 packaging/udev/60-message-slot.rules "$(DESTDIR)$(UDEV_RULES_DIR)/60-message-slot.rules"
	install -D -m 0644 packaging/tmpfiles.d/message-slot.conf "$(DESTDIR)$(TMPFILES_DIR)/message-slot.conf"
	install -D -m 0755 packaging/message-slot-static-nodes "$(DESTDIR)$(LIBEXECDIR)/message-slot-static-nodes"
	@if [ -z "$(DESTDIR)" ]; then getent group message-slot >/dev/null || groupadd --system message-slot; fi
	$(if $(INSTALL_MODULES_LOAD),install -D -m 0644 packaging/modules-load.d/message-slot.conf "$(DESTDIR)$(MODULES_LOAD_DIR)/message-slot.conf")

# The module's source as DKMS wants it: kernel/, uapi/, dkms-build, dkms.conf, and
# verified-kernels (the Debian kernel releases of vm/lib.sh's table, for dkms-build's warning on
# any other).
dkms-source:
	@rm -rf "$(DESTDIR)$(DKMS_SOURCE_DIR)"
	install -d "$(DESTDIR)$(DKMS_SOURCE_DIR)"
	cp -r --no-preserve=ownership kernel uapi "$(DESTDIR)$(DKMS_SOURCE_DIR)/"
	install -m 0644 packaging/dkms/dkms-build "$(DESTDIR)$(DKMS_SOURCE_DIR)/dkms-build"
	vm/lib.sh verified-releases >"$(DESTDIR)$(DKMS_SOURCE_DIR)/verified-kernels"
	sed 's/@PACKAGE_NAME@/$(PACKAGE_NAME)/; s/@PACKAGE_VERSION@/$(PACKAGE_VERSION)/' \
		packaging/dkms/dkms.conf.in >"$(DESTDIR)$(DKMS_SOURCE_DIR)/dkms.conf"

uninstall:
	@if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null && \
	    dkms status -m $(PACKAGE_NAME) -v $(PACKAGE_VERSION) 2>/dev/null | grep -q .; then \
		dkms remove $(PACKAGE_NAME)/$(PACKAGE_VERSION) --all; fi
	rm -f $(addprefix "$(DESTDIR)$(BINDIR)"/,$(TOOLS)) "$(DESTDIR)$(SBINDIR)/message-slot-prepare-kernel" \
		$(addprefix "$(DESTDIR)$(MANDIR)"/man1/,$(addsuffix .1,$(TOOLS))) "$(DESTDIR)$(MANDIR)/man4/message_slot.4" \
		"$(DESTDIR)$(MANDIR)/man8/message-slot-prepare-kernel.8" \
		"$(DESTDIR)$(INCLUDEDIR)/linux/message_slot.h" "$(DESTDIR)$(UDEV_RULES_DIR)/60-message-slot.rules" \
		"$(DESTDIR)$(TMPFILES_DIR)/message-slot.conf" "$(DESTDIR)$(LIBEXECDIR)/message-slot-static-nodes" \
		"$(DESTDIR)$(MODULES_LOAD_DIR)/message-slot.conf" \
		"$(DESTDIR)$(KERNEL_HOOKS_DIR)/header_postinst.d/50message-slot" "$(DESTDIR)$(KERNEL_HOOKS_DIR)/postrm.d/50message-slot"
	rm -rf "$(DESTDIR)$(DKMS_SOURCE_DIR)"
	rmdir "$(DESTDIR)$(LIBEXECDIR)" 2>/dev/null || true
	@set -e; for ko in "$(DESTDIR)"/lib/modules/*/updates/message_slot.ko; do \
		[ -f "$$ko" ] || continue; kver=$${ko#"$(DESTDIR)"/lib/modules/}; kver=$${kver%%/*}; \
		rm -f "$$ko"; $(call depmod,$$kver); echo "removed $$ko"; done; \
	 $(call static_nodes,remove)

clean:
	rm -rf build target message_slot.ko $(TOOLS)
