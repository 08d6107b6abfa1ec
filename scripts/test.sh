#!/usr/bin/env bash
# Installs what the tests need and runs them all: formatting, lints, unit, property and
# integration tests, the Cortex-M builds and on-target tests of the firmware under QEMU, and a
# short fuzz run of every decoder. This is what CI runs (.ci/run) and what the README's test command is.
#
# Run it as root or with sudo available on Debian/Ubuntu: it installs system packages with apt.
# FUZZ_RUNS sets the fuzz executions per decoder (default 100000).

set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages"
# mosquitto and mosquitto-clients: the MQTT bridge tests run a real broker and check with mosquitto_sub.
# chromium and chromium-driver: the web page's journey and accessibility tests drive a real browser.
packages=(pkg-config build-essential binutils qemu-system-arm dbus mosquitto mosquitto-clients
    chromium chromium-driver)
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
cargo fmt --manifest-path firmware/qemu/Cargo.toml --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --doc --locked

step "firmware: no_std builds for Cortex-M0 and M4F, on-target tests under QEMU, footprint"
scripts/firmware.sh

step "fuzz smoke run"
scripts/fuzz.sh "${FUZZ_RUNS:-100000}"

step "all checks passed"
