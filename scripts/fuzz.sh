#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer, address sanitizer) of the canonicaliser, the
# payload parser, the policy loader and Verifier::verify: builds the targets in fuzz/ and runs
# each for SECONDS (default 25), starting from the committed corpus in fuzz/corpus/<target>/.
# Exits non-zero if any target crashes or fails a property; the input that did it is saved in
# fuzz/artifacts/<target>/ (replay: cd fuzz && cargo fuzz run -O <target> <file>).
#
#   scripts/fuzz.sh [SECONDS]      time-boxed run of every target (CI uses the default)
#   scripts/fuzz.sh --minimise     rebuild fuzz/corpus from fuzz/seeds (fuzz/seed-corpus.sh)
#                                  plus what earlier runs found in fuzz/found/
#
# The machine has stable Rust only: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz
# passes (sanitizer, coverage instrumentation).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
targets=(canonical payload policy verify)

if ! command -v cargo-fuzz >/dev/null; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2
fi
cargo fuzz build -O

if [[ ${1:-} == --minimise ]]; then
    # Kept small on purpose (a few hundred KB in git): short inputs, one per coverage feature.
    declare -A max_len=([canonical]=384 [payload]=512 [policy]=384 [verify]=700)
    for t in "${targets[@]}"; do
        fresh=$(mktemp -d) && mkdir -p "found/$t" "seeds/$t"
        cargo fuzz run -O "$t" "$fresh" "corpus/$t" "found/$t" "seeds/$t" -- \
            -set_cover_merge=1 -max_len="${max_len[$t]}" 2>/dev/null
        rm -rf "corpus/$t" && mv "$fresh" "corpus/$t"
        echo "$t: $(ls "corpus/$t" | wc -l) inputs, $(cat "corpus/$t"/* | wc -c) bytes"
    done
    exit 0
fi

seconds=${1:-25}
failed=()
for t in "${targets[@]}"; do
    # New inputs go to fuzz/found/<target> (ignored by git), never into the committed corpus.
    mkdir -p "found/$t" "artifacts/$t"
    log=$(mktemp)
    if cargo fuzz run -O "$t" "found/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
        echo "$t: ${runs:-?} executions in ${seconds} s (${rate:-?}/s), no crash"
    else
        echo "$t: FAILED" >&2
        tail -n 40 "$log" >&2
        failed+=("$t")
    fi
    rm -f "$log"
done
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
