#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 60)
# from its committed seed corpus, and fails on the first crash, leak, timeout
# or out-of-memory. New corpus entries go to a scratch folder, so the
# committed seeds stay small; a crashing input is kept in
# fuzz/artifacts/<target>/ to be turned into a regression test.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail

seconds=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# One build for every target before the clock starts (the mail and Matrix
# targets need the bot crate: feature "bot").
cargo +nightly fuzz build --features bot

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "corpus/$t"
  echo "== $t: ${seconds}s"
  # -rss_limit_mb: a policy file is at most 64 MB; more memory than this
  # for one input is a bug. -timeout: no input should take seconds.
  if ! cargo +nightly fuzz run --features bot "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      2>"$scratch/$t.log"; then
    failed+=("$t")
    tail -n 60 "$scratch/$t.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$scratch/$t.log" || true
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: no crashes in ${targets[*]} (${seconds}s each)"
