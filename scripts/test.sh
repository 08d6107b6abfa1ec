#!/usr/bin/env bash
# Installs what the tests need and runs them all: formatting, lints, unit, property and
# integration tests, the no_std build of relais-protocol for Cortex-M, and a short fuzz run of
# every decoder. This is what CI runs (.ci/run) and what the README's test command is.
#
# Run it as root or with sudo available on Debian/Ubuntu: it installs system packages with apt.
# FUZZ_RUNS sets the fuzz executions per decoder (default 100000).

set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages"
packages=(pkg-config build-essential)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

step "cargo tools"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

step "format"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --doc --locked

step "relais-protocol without std or alloc (Cortex-M)"
(
    # shellcheck source=scripts/cross-env.sh
    source scripts/cross-env.sh
    for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
        cargo build --locked -Zbuild-std=core --target "$target" -p relais-protocol --release
    done
)

step "fuzz smoke run"
scripts/fuzz.sh "${FUZZ_RUNS:-100000}"

step "all checks passed"
