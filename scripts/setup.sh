#!/usr/bin/env bash
# Installs what the tests need, on a fresh Debian machine, as root. Idempotent:
# every step checks first and only installs what is missing.
#   - PostgreSQL server binaries (initdb, postgres): crates/test-support starts its own clusters
#   - MariaDB server and client (mariadbd, mariadb-install-db, mariadb): crates/test-support starts its own
#     servers too; the package's system service is kept from starting and disabled
#   - moto server (python): the local AWS double
#   - cargo-lambda: builds the Lambda binaries
#   - Chromium (headless) and chromedriver: the dashboard's browser test (crates/grantctl/tests/dashboard.rs)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
say() { echo "setup: $*"; }

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        say "apt-get update"
        apt-get update -q
        apt_updated=1
    fi
    say "apt-get install -y $*"
    apt-get install -y -q --no-install-recommends "$@"
}

# --- PostgreSQL --------------------------------------------------------------
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    say "PostgreSQL present: $(ls -d /usr/lib/postgresql/*/bin/initdb | tr '\n' ' ')"
else
    # Tests start their own throwaway clusters; don't let the package create and start
    # a system-wide "main" cluster on port 5432.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/50-no-main-cluster.conf
    apt_install postgresql
fi

# --- MariaDB -----------------------------------------------------------------
if [ -x /usr/sbin/mariadbd ] && command -v mariadb >/dev/null; then
    say "MariaDB present: $(/usr/sbin/mariadbd --version)"
else
    # Tests start their own throwaway servers; keep the package's postinst from starting a system server on
    # port 3306 (invoke-rc.d asks policy-rc.d; 101 = "action not allowed"). An existing policy is left alone.
    guard=""
    if ! [ -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        guard=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT # also if the install fails
    fi
    apt_install mariadb-server mariadb-client
    if [ -n "$guard" ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    # Not at boot either (no-op without sysv-rc links), and stop one that started anyway (existing policy).
    update-rc.d mariadb disable >/dev/null 2>&1 || true
    if [ -s /run/mysqld/mysqld.pid ]; then
        say "stopping the system MariaDB service"
        /etc/init.d/mariadb stop || kill "$(cat /run/mysqld/mysqld.pid)" || true
    fi
fi

# openssl makes the throwaway certificates of the TLS tests.
if ! command -v openssl >/dev/null; then
    apt_install openssl
fi

# kill(1) (procps) sends postgres its shutdown signals; cp comes with coreutils.
if ! [ -x /bin/kill ] && ! [ -x /usr/bin/kill ]; then
    apt_install procps
fi

# --- Python + pip ------------------------------------------------------------
if ! command -v python3 >/dev/null; then
    apt_install python3
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
fi

pip_install() {
    local flags=()
    # Debian's system python is "externally managed" (PEP 668); this is a test machine.
    if python3 -c 'import sys,sysconfig,os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        flags+=(--break-system-packages)
    fi
    say "python3 -m pip install ${flags[*]} $*"
    python3 -m pip install --quiet "${flags[@]}" "$@"
    # pyenv only sees new console scripts after a rehash.
    if command -v pyenv >/dev/null; then pyenv rehash; fi
}

# --- moto ----------------------------------------------------------------------
if python3 -c 'import moto.server' 2>/dev/null; then
    say "moto present: $(python3 -c 'import moto; print(moto.__version__)')"
else
    pip_install 'moto[server]>=5,<6'
fi

# --- cargo-lambda ----------------------------------------------------------------
if cargo lambda --version >/dev/null 2>&1; then
    say "cargo-lambda present: $(cargo lambda --version)"
else
    pip_install cargo-lambda
    if ! cargo lambda --version >/dev/null 2>&1; then
        say "WARNING: cargo-lambda installed but 'cargo lambda' is not found; is pip's bin dir on PATH?"
        exit 1
    fi
    say "cargo-lambda installed: $(cargo lambda --version)"
fi

# --- Chromium ----------------------------------------------------------------------
# Debian's packages (no browser download at test time): the dashboard test drives /usr/bin/chromium headless.
if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null; then
    say "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
else
    apt_install chromium chromium-driver
fi

say "done"
