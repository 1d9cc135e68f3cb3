#!/usr/bin/env bash
# Fuzz the request parser for N seconds (default 60) with cargo-fuzz, seeded with the corpus.
# cargo-fuzz's default AddressSanitizer needs a nightly compiler; on stable the target runs with
# `--sanitizer none`: libFuzzer's coverage guidance still works, and safe Rust needs no ASan.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
seeds=fuzz/corpus/parse_request
if [ ! -d "$seeds" ]; then
    mkdir -p "$seeds"
    split -l 1 -d -a 4 tests/fixtures/openrtb/requests.jsonl "$seeds/seed-"
fi
cd fuzz
cargo fuzz run --sanitizer none parse_request -- -max_total_time="$seconds" -max_len=65536
