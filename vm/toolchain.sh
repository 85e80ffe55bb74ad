# SPDX-License-Identifier: GPL-2.0
#
# Toolchain for building the guest kernel and out-of-tree Rust modules against it.
# Sourced by the vm/ scripts and the Makefile's helpers.

export PATH="$HOME/.cargo/bin:$PATH"
RUSTC=/usr/bin/rustc
RUSTDOC=/usr/bin/rustdoc
# bindgen must load the libclang of the LLVM that compiles the kernel (clang-14 on bookworm).
llvm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v clang)")")")
export LIBCLANG_PATH=${LIBCLANG_PATH:-$llvm_dir/lib}
# CLIPPY_DRIVER is used by `make ... CLIPPY=1` (the kernel's clippy lints); rust-web-clippy is
# the clippy of rustc-web.
KBUILD_TOOLCHAIN=(LLVM=1 RUSTC="$RUSTC" RUSTDOC="$RUSTDOC" BINDGEN=bindgen CLIPPY_DRIVER=/usr/bin/clippy-driver)
