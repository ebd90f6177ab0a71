#!/usr/bin/env bash
# Runs the main job end to end on this machine: a throwaway PostgreSQL cluster, moto as the AWS endpoint, and
# the real `provisioner` and `reaper` binaries behind Lambda Runtime API doubles (crates/local-demo). Grants access, logs in
# with psql, describes, revokes; grants again, lets it expire, runs the reaper; checks the access is gone. Cleans up.
#   scripts/demo.sh [local-demo arguments, e.g. --help]
# On a fresh Debian machine run it as root: scripts/setup.sh installs what is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "demo: $*"; }

bash scripts/release-build.sh demo

target_dir="${CARGO_TARGET_DIR:-target}"
say "running $target_dir/release/local-demo"
exec "$target_dir/release/local-demo" "$@"
