#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time each, starting from
# the seeds in fuzz/seeds, with a fresh working corpus that is thrown away afterwards.
# A crash fails the run; libFuzzer keeps its input under fuzz/artifacts/<target>/.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]    (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz passes -Z flags (sanitizer coverage, AddressSanitizer); the stable toolchain
# takes them when told to.
export RUSTC_BOOTSTRAP=1
for target in config mount_options seccomp manifest layer; do
  corpus=$(mktemp -d)
  echo "== fuzz: $target for ${seconds}s"
  cargo fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' || true
  status=${PIPESTATUS[0]}
  rm -rf "$corpus"
  [ "$status" = 0 ] || { echo "fuzz: $target failed (status $status); see fuzz/artifacts/$target" >&2; exit 1; }
done
