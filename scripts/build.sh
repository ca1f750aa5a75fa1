#!/usr/bin/env bash
# Builds bulwark-runtime as it is meant to run: a static PIE, glibc and libseccomp linked
# in, so that no dynamic loader runs at start-up (the runtime starts twice per command:
# see docs/performance.md) and less of it is resident. Cargo cannot set crt-static for one
# binary in a plain `cargo build` (proc macros must stay dynamic), hence `cargo rustc`.
#   scripts/build.sh            -> target/release/bulwark-runtime and bulwark-mon
#   scripts/build.sh debug      -> target/debug/bulwark-runtime and bulwark-mon
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
[ "${1:-release}" = release ] && profile=(--release)
cargo rustc "${profile[@]}" -q -p bulwark-cli --bin bulwark-runtime -- -C target-feature=+crt-static
# The per-container monitor the same way, and not position-independent: a PIE's relocated
# data (about 170 kB) would be private to each of the many monitors that stay resident.
cargo rustc "${profile[@]}" -q -p bulwark-monitor --bin bulwark-mon -- -C target-feature=+crt-static -C relocation-model=static
