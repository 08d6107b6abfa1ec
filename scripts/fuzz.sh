#!/usr/bin/env bash
# Runs every decoder's fuzz target for RUNS executions each (default 1000000) and prints a
# summary line per target. Each target checks that decoding never panics and that whatever
# decodes survives encode -> decode unchanged.
#
#   scripts/fuzz.sh            # a million executions per decoder
#   scripts/fuzz.sh 100000     # the CI smoke run
#
# cargo-fuzz normally wants a nightly toolchain; RUSTC_BOOTSTRAP lets the stable one accept the
# instrumentation flags. No sanitizer: relais-protocol has no unsafe code.

set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1000000}"
export RUSTC_BOOTSTRAP=1

cargo fuzz build --sanitizer none --release
targets=$(cargo fuzz list)
total=0
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    log=$(mktemp)
    if ! cargo fuzz run --sanitizer none --release "$t" -- -runs="$runs" -seed=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $t FAILED" >&2
        exit 1
    fi
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
    echo "fuzz: $t: $done_line"
    total=$((total + $(echo "$done_line" | awk '{print $2}')))
    rm -f "$log"
done
echo "fuzz: $(echo "$targets" | wc -w) targets, $total executions, no crash"
