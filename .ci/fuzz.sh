#!/usr/bin/env bash
# Fuzz bidcore's parsers with cargo-fuzz: `.ci/fuzz.sh [SECONDS] [TARGET...]` (default 60 s
# each, every target: parse_request, read_model, extract_features, engine_bid), seeded from the fixtures.
# cargo-fuzz's default AddressSanitizer needs a nightly compiler; on stable the targets run with
# `--sanitizer none`: libFuzzer's coverage guidance still works, and safe Rust needs no ASan.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse_request read_model extract_features engine_bid)
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

seed_requests() {
    mkdir -p "$1"
    split -l 1 -d -a 4 tests/fixtures/openrtb/requests.jsonl "$1/seed-"
}

seed_models() {
    # Small LightGBM model texts and their Treelite JSON, made by the project's own generator.
    mkdir -p "$1"
    .venv/bin/python - "$1" <<'PY'
import sys
from pathlib import Path

import treelite

from bidcore.testing.models import ModelSpec, Size, ctr_data, train_model

out = Path(sys.argv[1])
specs = [
    ModelSpec(size=Size(3, 4)),
    ModelSpec(size=Size(2, 6), zero_as_missing=True),
    ModelSpec(task="multiclass", size=Size(2, 3)),
    ModelSpec(categorical=False, task="regression", size=Size(3, 5)),
]
for spec in specs:
    booster = train_model(spec, ctr_data(300))
    (out / f"{spec.name}.txt").write_text(booster.model_to_string())
    model = treelite.frontend.from_lightgbm(booster)
    (out / f"{spec.name}.json").write_text(model.dump_as_json(pretty_print=False))
PY
}

for target in "${targets[@]}"; do
    seeds=fuzz/corpus/$target
    if [ ! -d "$seeds" ]; then
        case $target in
            read_model) seed_models "$seeds" ;;
            *) seed_requests "$seeds" ;;
        esac
    fi
    (cd fuzz && cargo fuzz run --sanitizer none "$target" -- -max_total_time="$seconds" -max_len=65536)
done
