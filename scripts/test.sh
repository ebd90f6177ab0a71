#!/usr/bin/env bash
# The project's test command: installs what is missing (PostgreSQL, moto, cargo-lambda), then runs every test.
# Tests start their own throwaway PostgreSQL clusters and a moto server on free ports and clean them up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets "$@"
