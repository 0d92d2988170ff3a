#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the end-to-end tests against a real
# PostgreSQL (each test gets a database of its own, created and dropped by sqlx), then the
# official client suites (Polar SDKs, Medusa's client) and schema fuzzing. Installs what it needs when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The server the tests create their databases on (not a database the tests use themselves).
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null; then
        echo "PostgreSQL is not answering; starting the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
        for _ in $(seq 30); do pg_isready -q -d "$DATABASE_URL" && break; sleep 1; done
    fi
    pg_isready -d "$DATABASE_URL" || { echo "PostgreSQL at $DATABASE_URL is not reachable" >&2; exit 1; }
fi

# The API reference page is tested in headless Chromium.
if ! command -v chromium >/dev/null; then
    echo "installing Debian's chromium (for the API reference page test)"
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    # Another apt or dpkg run (a machine's own updates) may hold the package locks: wait.
    wait_for_lock=(-o DPkg::Lock::Timeout=600 -o Acquire::Lock::Timeout=600)
    $sudo apt-get "${wait_for_lock[@]}" update -qq
    $sudo apt-get "${wait_for_lock[@]}" install -y -qq chromium >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast
else
    cargo test --locked --no-fail-fast
fi

# The four official Polar SDK builds and Medusa's own client, pinned, against a real server
# (installs them when missing).
scripts/sdk-tests.sh
# schemathesis against the served OpenAPI document (installs it when missing).
scripts/fuzz.sh
# Real server processes under races, crashes, outages and abuse; the money invariant is
# checked after each scenario. PostgreSQL restarts only where allowed (CI=true in CI).
scripts/reliability.sh
# The benchmark's pipeline at tiny sizes: it checks that the benchmark works, not figures.
scripts/bench.sh --quick
