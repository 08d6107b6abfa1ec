"""Times two Python decoders on the corpus the Rust decode benchmark wrote, for a side-by-side
comparison in the same run:

- bluetooth-sig (BluetoothSIGTranslator.parse_characteristic) on the mixed Blood Pressure,
  Weight and Glucose Measurement corpus;
- bleparser's Xiaomi scale parser (the one behind Home Assistant's ble_monitor) on the Xiaomi
  advertisements.

Usage: python_decoders.py CORPUS.tsv
Prints one line per set: name, payloads, decoded, best ns per payload, payloads per second.
"""

import sys
import time


def load(path):
    sets = {}
    with open(path) as f:
        for line in f:
            name, uuid, hexdata = line.rstrip("\n").split("\t")
            sets.setdefault(name, []).append((uuid.upper(), bytes.fromhex(hexdata)))
    return sets


def best_ns_per_item(fn, items, repeats=5, min_seconds=0.5):
    """Best of `repeats` timings, each looping over the items until min_seconds have passed."""
    best = None
    for _ in range(repeats):
        loops = 0
        start = time.perf_counter_ns()
        while True:
            for item in items:
                fn(item)
            loops += 1
            elapsed = time.perf_counter_ns() - start
            if elapsed >= min_seconds * 1e9:
                break
        per = elapsed / (loops * len(items))
        best = per if best is None else min(best, per)
    return best


def sig_decoder():
    from bluetooth_sig import BluetoothSIGTranslator

    translator = BluetoothSIGTranslator()

    def decode(item):
        uuid, data = item
        return translator.parse_characteristic(uuid, data)

    return decode


def miscale_decoder():
    from bleparser import BleParser
    from bleparser.miscale import parse_miscale

    parser = BleParser(discovery=True, filter_duplicates=False)
    mac = bytes.fromhex("C80F10AABBCC")

    def decode(item):
        uuid, data = item
        # bleparser wants the AD structure: length, type 0x16, the UUID, the service data.
        u = int(uuid, 16)
        ad = bytes([len(data) + 3, 0x16, u & 0xFF, u >> 8]) + data
        return parse_miscale(parser, ad, mac, -60)

    return decode


def main():
    sets = load(sys.argv[1])
    for name, make in (("mixed", sig_decoder), ("xiaomi", miscale_decoder)):
        items = sets[name]
        decode = make()
        decoded = sum(1 for item in items if decode(item) is not None)
        ns = best_ns_per_item(decode, items)
        print(f"{name}\t{len(items)}\t{decoded}\t{ns:.1f}\t{1e9 / ns:.0f}")


if __name__ == "__main__":
    main()
