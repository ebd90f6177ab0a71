#!/usr/bin/env bash
# Installs what the tests need, on a fresh Debian machine, as root. Idempotent:
# every step checks first and only installs what is missing.
#   - PostgreSQL server binaries (initdb, postgres): crates/test-support starts its own clusters
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
