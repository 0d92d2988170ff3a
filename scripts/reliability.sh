#!/usr/bin/env bash
# The reliability suite: builds the server and the driver in release mode, then runs the
# driver, which starts real server processes on a fresh database (created and dropped by
# the driver), drives load, crashes, outages and abuse at them, and checks the money
# invariant with SQL after every scenario.
#
#   scripts/reliability.sh                  # CI-sized run (a few minutes)
#   scripts/reliability.sh --full           # longer counts
#   scripts/reliability.sh --only race      # one scenario (repeatable)
#
# The db-restart scenario restarts PostgreSQL, which disrupts everyone using it: it runs
# only with CI=true, --allow-pg-restart, or when /tmp/allow-pg-restart exists.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

cargo build --release --locked -p refunds-server -p refunds-reliability
exec target/release/refunds-reliability "$@"
