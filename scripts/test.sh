#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the peers, then format, lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-peers.sh
# A clean checkout gains nothing from incremental state; it only costs disk.
export CARGO_INCREMENTAL=0
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
scripts/package.sh
