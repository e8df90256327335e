#!/usr/bin/env bash
# Coverage-guided fuzzing of borex's parsers (fuzz/, cargo-fuzz + libFuzzer) on
# the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags
# cargo-fuzz passes; no sanitizer (safe Rust: panics, aborts, timeouts and
# out-of-memory are what is found, and an uninstrumented build is quicker).
#   scripts/fuzz.sh [TARGET...]     every target (default) for FUZZ_SECONDS each (default 60)
# New coverage goes to fuzz/target/work/TARGET (git-ignored; the committed seeds
# in fuzz/corpus/TARGET are read only); a crash is saved in fuzz/artifacts/TARGET/
# and the run goes on with the next target. Each crash, once fixed, belongs in
# fuzz/regressions/TARGET/, which `cargo test --test fuzz_corpus` replays.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
cd "$root/fuzz"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi
cargo fuzz build -s none
mkdir -p target/logs
failed=()
for t in "${targets[@]}"; do
    mkdir -p "target/work/$t"
    log="target/logs/$t.log"
    echo "== $t (${seconds} s)"
    # -timeout: one input over 10 s is a finding; -rss_limit_mb: borex's own limits allow
    # large decodes, so the default 2 GB would report them; -max_len keeps inputs file-sized.
    if cargo fuzz run -s none "$t" "target/work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tr '\n' ' '
        echo
    else
        failed+=("$t")
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 5
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/target/logs/)"
    exit 1
fi
echo "no crash in ${#targets[@]} targets × ${seconds} s"
