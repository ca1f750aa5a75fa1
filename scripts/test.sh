#!/usr/bin/env bash
# The whole test suite: unit tests and the integration tests that run real containers
# (as root, on this kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root: the integration tests create real containers" >&2; exit 1; }
cargo build -q -p bulwark-cli
export BULWARK_RUNTIME="$PWD/target/debug/bulwark-runtime"
cargo test --workspace --no-fail-fast "$@"
