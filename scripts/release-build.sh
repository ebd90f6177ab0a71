#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh) and builds the release binaries that scripts/demo.sh and
# scripts/bench.sh run:
#   scripts/release-build.sh NAME      (NAME prefixes the progress lines)
# Both scripts build the same packages, here: another set would unify dependency features differently and
# rebuild everything, and CI runs both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name="${1:-build}"

echo "$name: checking prerequisites (scripts/setup.sh)"
bash scripts/setup.sh

echo "$name: building provisioner, reaper, local-demo and bench (release; the first build takes several minutes)"
cargo build --release -p provisioner -p reaper -p local-demo -p benchmarks
