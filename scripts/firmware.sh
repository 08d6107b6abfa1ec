#!/usr/bin/env bash
# Builds the reference firmware for Cortex-M and runs its on-target tests under QEMU.
#
#   scripts/firmware.sh
#
# 1. Cross-builds relais-protocol, relais-firmware and relais-board-sim for thumbv7em-none-eabihf
#    (Cortex-M4F, nRF52840 class) and thumbv6m-none-eabi (Cortex-M0), with `core` only.
# 2. Builds the on-target test binary and runs it on QEMU's mps2-an386 (Cortex-M4) with
#    semihosting: the record log and the three personalities on the target instruction set.
# 3. Builds the footprint image (all three personalities, GATT core, record log, no radio stack)
#    and prints its flash and static RAM use.
#
# Needs qemu-system-arm and binutils (apt), and apt access for scripts/cross-env.sh.

set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# shellcheck source=scripts/cross-env.sh
source scripts/cross-env.sh
export CARGO_TARGET_DIR="$root/target/cross"

for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    echo "firmware: building the crates for $target"
    cargo build --locked -Zbuild-std=core --target "$target" --release \
        -p relais-protocol -p relais-firmware -p relais-board-sim
done

cd firmware/qemu
# Two builds: the test image prints panic messages, the product image must not carry core::fmt.
cargo build --locked -Zbuild-std=core --target thumbv7em-none-eabihf --release \
    --features print-panics --bin firmware-tests
cargo build --locked -Zbuild-std=core --target thumbv7em-none-eabihf --release --bin footprint
bin="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release"

echo "firmware: running the on-target tests on QEMU mps2-an386 (Cortex-M4)"
timeout 600 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none \
    -semihosting-config enable=on,target=native -kernel "$bin/firmware-tests"

# Flash: what the image stores (vectors, code, constants, initial data). Static RAM: data, bss.
section() { size -A "$1" | awk -v s="$2" '$1 == s { print $2 }'; }
image="$bin/footprint"
flash=$(( $(section "$image" .vector_table) + $(section "$image" .text) + $(section "$image" .rodata) + $(section "$image" .data) ))
ram=$(( $(section "$image" .data) + $(section "$image" .bss) + $(section "$image" .uninit) ))
echo "firmware: footprint on thumbv7em-none-eabihf (scale, cuff, glucose meter, GATT core, record log; no radio stack):"
echo "firmware:   flash $flash bytes ($((flash * 10 / 1024 / 10)).$((flash * 10 / 1024 % 10)) KiB, budget 48 KiB), static RAM $ram bytes ($((ram * 10 / 1024 / 10)).$((ram * 10 / 1024 % 10)) KiB, budget 12 KiB)"
if [ "$flash" -gt $((48 * 1024)) ] || [ "$ram" -gt $((12 * 1024)) ]; then
    echo "firmware: over budget" >&2
    exit 1
fi
