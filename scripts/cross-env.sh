#!/usr/bin/env bash
# Source this file to cross-build for Cortex-M without a rustup target: it unpacks Debian's
# rustc-web (whose rust-web-src lets cargo build `core` for thumb targets) into a cache folder,
# once, and exports what cargo needs to use it.
#
#   source scripts/cross-env.sh
#   cargo build -Zbuild-std=core --target thumbv7em-none-eabihf -p relais-protocol
#
# Needs apt (Debian 12 or later with the bookworm-updates / security sources that carry
# rustc-web). The cache folder is RELAIS_CROSS_CACHE, default ~/.cache/relais/cross-rustc.

# Sourced: no `set -e` here, it would stay on in the caller's shell.

cache="${RELAIS_CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/relais/cross-rustc}"
packages=(rustc-web rust-web-src libstd-rust-web-1.96 libstd-rust-web-dev libllvm22)

if [ ! -x "$cache/usr/bin/rustc" ]; then
    echo "cross-env: unpacking Debian rustc-web into $cache" >&2
    mkdir -p "$cache/debs"
    if ! (
        set -e
        cd "$cache/debs"
        if ! apt-get download "${packages[@]}" >/dev/null 2>&1; then
            apt-get update -qq
            apt-get download "${packages[@]}" >/dev/null
        fi
        for deb in ./*.deb; do dpkg -x "$deb" "$cache"; done
    ); then
        echo "cross-env: could not fetch rustc-web with apt" >&2
        return 1 2>/dev/null || exit 1
    fi
fi

host_rustc_sysroot="$(rustc --print sysroot)"
lld="$host_rustc_sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
[ -x "$lld" ] || { echo "cross-env: rust-lld not found at $lld" >&2; return 1 2>/dev/null || exit 1; }

export RUSTC="$cache/usr/bin/rustc"
export LD_LIBRARY_PATH="$cache/usr/lib/x86_64-linux-gnu:$cache/usr/lib/llvm-22/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_THUMBV7EM_NONE_EABIHF_LINKER="$lld"
export CARGO_TARGET_THUMBV6M_NONE_EABI_LINKER="$lld"
# Cross builds get their own target folder: the host toolchain's artefacts are not compatible.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cross}"
