#!/usr/bin/env bash
# Differential suite: the same requests to Polar's own server (the "oracle", Polar's FastAPI
# app run unmodified in a chroot) and to refunds-server, answers compared field by field.
# Needs root (the oracle's chroot), PostgreSQL on 127.0.0.1:5432 and Redis; about 3 minutes
# of set-up the first time on a machine. Not part of scripts/test.sh.
#
#   scripts/polar-diff.sh [--seed N] [--mutations N] [--only TEXT]
#
# Environment:
#   POLAR_GIT_DIR     git dir of polarsource/polar (needed by the oracle's first setup)
#   POLAR_ORACLE      folder with polar-oracle.sh (default ../shared/oracle next to the checkout)
#   ORACLE_PORT       the oracle's port (default 8100)
#   DATABASE_URL      PostgreSQL server for our throw-away database
#                     (default postgres://postgres@127.0.0.1:5432/postgres)
#   POLAR_DIFF_KEEP=1 leave the oracle running afterwards (a re-run then skips its start)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf 'polar-diff: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

ORACLE="${POLAR_ORACLE:-$ROOT/../shared/oracle}"
[[ -x "$ORACLE/polar-oracle.sh" ]] || die "no polar-oracle.sh in $ORACLE (set POLAR_ORACLE)"
[[ "$(id -u)" == 0 ]] || die "the oracle needs root"
export PORT="${ORACLE_PORT:-8100}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ORACLE_DIR="${ORACLE_DIR:-/tmp/polar-oracle}"
WORK="$(mktemp -d -t polar-diff.XXXXXX)"
SERVER_PID=""
DB_NAME="refunds_diff_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

cleanup() {
    local status=$?
    set +e
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    psql "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1
    [[ -z "${POLAR_DIFF_KEEP:-}" ]] && "$ORACLE/polar-oracle.sh" stop >/dev/null 2>&1
    log "work files (seed, report, server log) in $WORK"
    exit "$status"
}
trap cleanup EXIT

# --- the oracle: set up once, then a fresh database for every run ------------------------------
if [[ ! -f "$ORACLE_DIR/.deps-ok" ]]; then
    [[ -n "${POLAR_GIT_DIR:-}" ]] || die "POLAR_GIT_DIR is not set: the oracle's first setup needs a git dir of polarsource/polar"
    log "setting up the oracle (about 3 minutes)"
    "$ORACLE/polar-oracle.sh" setup >"$WORK/oracle-setup.log" 2>&1 || { tail -20 "$WORK/oracle-setup.log"; die "oracle setup failed"; }
fi
# Refunds change orders' counters: both sides start from the same fresh state.
"$ORACLE/polar-oracle.sh" stop >/dev/null
"$ORACLE/polar-oracle.sh" reset >"$WORK/oracle-reset.log" 2>&1 || { tail -20 "$WORK/oracle-reset.log"; die "oracle reset failed"; }
"$ORACLE/polar-oracle.sh" start >&2 || die "the oracle did not start (see $ORACLE_DIR/server.log)"
log "seeding the oracle"
"$ORACLE/polar-oracle.sh" seed tools/polar-diff/seed-spec.json >"$WORK/polar-seed.json" || die "oracle seed failed"

# --- our server: release build, fresh database, admin API on ---------------------------------
log "building refunds-server (release)"
cargo build --release --locked --bin refunds-server >&2
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/refunds-server"
if [[ "$DATABASE_URL" =~ ^([a-z]+://[^/?]+)(/[^?]*)?(\?.*)?$ ]]; then
    SERVER_DATABASE_URL="${BASH_REMATCH[1]}/$DB_NAME${BASH_REMATCH[3]}"
else
    die "cannot parse DATABASE_URL=$DATABASE_URL"
fi
export REFUNDS_ADMIN_TOKEN="diff-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
DATABASE_URL="$SERVER_DATABASE_URL" RUST_LOG=info "$BIN" serve --bind 127.0.0.1:0 2>"$WORK/server.log" >/dev/null &
SERVER_PID=$!
ADDRESS=""
for _ in $(seq 300); do
    ADDRESS="$(grep -m1 -o 'listening address=[0-9.:]*' "$WORK/server.log" | cut -d= -f2 || true)"
    [[ -n "$ADDRESS" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "our server exited during start-up (see $WORK/server.log)"
    sleep 0.1
done
[[ -n "$ADDRESS" ]] || die "our server did not log its address"
for _ in $(seq 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDRESS/readyz")" == 200 ]] && break
    sleep 0.1
done

# --- the comparison ---------------------------------------------------------------------------
python3 tools/polar-diff/polar_diff.py --polar "http://127.0.0.1:$PORT" --polar-seed "$WORK/polar-seed.json" \
    --ours "http://$ADDRESS" --report "$WORK/report.jsonl" "$@"
