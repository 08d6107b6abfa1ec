#!/usr/bin/env bash
# The decode benchmark, with another decoder measured on the same payloads in the same run.
#
# 1. criterion times relais-protocol on a mixed corpus (Blood Pressure, Weight, Glucose
#    Measurements) and on Xiaomi scale advertisements, after checking that decoding allocates
#    nothing; it writes the corpus to target/relais-bench-corpus.tsv.
# 2. Python times bluetooth-sig and bleparser on exactly those bytes.
# 3. A table compares the two.
#
# Needs python3 with venv (a virtual environment is made under target/). Run on an idle machine.

set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

cargo bench -p relais-protocol --bench decode -- --noplot "$@"

venv="$target/bench-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q bluetooth-sig==0.6.0 bleparser==3.7.3
fi
python_results=$("$venv/bin/python" protocol/benches/compare/python_decoders.py "$target/relais-bench-corpus.tsv")

# criterion's mean time per iteration (one pass over the set), in ns.
mean_ns() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mean"]["point_estimate"])' \
    "$target/criterion/decode/$1/new/estimates.json"; }
count() { awk -F'\t' -v s="$1" '$1 == s' "$target/relais-bench-corpus.tsv" | wc -l; }

echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(rustc --version)"
printf '%-28s %12s %16s\n' "set (relais-protocol)" "ns/payload" "payloads/s"
for set in mixed blood_pressure_measurement weight_measurement glucose_measurement xiaomi_advertisement; do
    n=$(count "$( [ "$set" = xiaomi_advertisement ] && echo xiaomi || echo mixed)")
    case "$set" in
        blood_pressure_measurement|weight_measurement|glucose_measurement) n=$((n / 3)) ;;
    esac
    ns=$(python3 -c "print($(mean_ns "$set") / $n)")
    printf '%-28s %12.2f %16.0f\n' "$set" "$ns" "$(python3 -c "print(1e9 / $ns)")"
done
echo
printf '%-28s %12s %16s %10s\n' "set (Python, same bytes)" "ns/payload" "payloads/s" "ratio"
while IFS=$'\t' read -r set items decoded ns rate; do
    ours=$(python3 -c "print($(mean_ns "$( [ "$set" = xiaomi ] && echo xiaomi_advertisement || echo mixed)") / $items)")
    printf '%-28s %12.1f %16.0f %9.0fx   (%s of %s decoded)\n' \
        "$set" "$ns" "$rate" "$(python3 -c "print($ns / $ours)")" "$decoded" "$items"
done <<<"$python_results"
