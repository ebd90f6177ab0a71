#!/usr/bin/env bash
# The benchmarks (crates/benchmarks; method and results in docs/benchmarks.md). Installs what is missing, builds
# the release binaries the benchmarks run and measure, then runs `bench` and prints its numbers.
#   scripts/bench.sh                          all but the dashboard, default sizes, 5 runs each (about 30 minutes)
#   scripts/bench.sh revocation --users 100   one benchmark, other sizes
#   scripts/bench.sh --runs 5 revocation-mysql   revocation on MySQL (a MariaDB server) vs the mariadb client
#   scripts/bench.sh --runs 1 all --history 2000 --expired 20 --users 100 --sessions 10 --reader-users 30 \
#       --reader-sessions 5 --mysql-users 30 --mysql-sessions 5 --grants 50 --warm-invocations 5
#                                             a quick run that proves the benchmarks work (CI)
#   scripts/bench.sh --runs 3 dashboard       the dashboard's live page: 10,000 history rows, 200 live grants
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "bench: $*"; }

bash scripts/release-build.sh bench

target_dir="${CARGO_TARGET_DIR:-target}"
if [ $# -eq 0 ]; then
    set -- all
fi
say "running $target_dir/release/bench $*"
exec "$target_dir/release/bench" "$@"
