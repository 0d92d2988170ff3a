#!/usr/bin/env bash
# The benchmark: builds the server and the benchmark in release mode, then runs
# tools/bench (refunds-bench), which creates a database refunds_bench_<random> on
# DATABASE_URL's server, seeds it, measures the server against pgbench and drops it.
#   scripts/bench.sh            full run (3 runs, 200k orders, 10k/100k/1M-refund lists)
#   scripts/bench.sh --quick    tiny sizes: checks the pipeline works (about a minute)
#   scripts/bench.sh --help     the other options
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
    echo "PostgreSQL at $DATABASE_URL is not reachable" >&2
    exit 1
fi

cargo build --release --locked -p refunds-server -p refunds-bench
exec target/release/refunds-bench "$@"
