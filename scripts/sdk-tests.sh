#!/usr/bin/env bash
# The official-client compatibility suites: the four official Polar SDK builds (polar-sdk 1.x
# and 0.x for Python, @polar-sh/sdk 1.x and 0.x for TypeScript) and Medusa's own JavaScript
# client (@medusajs/medusa-js 6.x, Medusa v1), each pinned to an exact version, and Stripe's own
# Node library signing the Stripe webhooks the server verifies, run against a freshly built
# refunds-server on a free port with a database of its own.
#
#   scripts/sdk-tests.sh            install what is missing, build, run every suite
#
# Environment:
#   DATABASE_URL          a PostgreSQL URL whose server gets a throw-away database
#                         (default postgres://postgres@127.0.0.1:5432/postgres)
#   SDK_TESTS_PYTHON      the Python (>= 3.11) for the virtualenvs (default: first of python3,
#                         python3.13, python3.12, python3.11 that is recent enough)
#   SDK_TESTS_KEEP_LOG=1  keep the server log even when everything passed
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SDK_DIR="$ROOT/sdk-tests"
VENV_DIR="$ROOT/.venv"
TS_DIR="$SDK_DIR/typescript"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PYTHONDONTWRITEBYTECODE=1

header() {
    printf '\n==============================================================================\n'
    printf '== %s\n' "$*"
    printf '==============================================================================\n'
}
log() { printf 'sdk-tests: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

SECONDS=0

# --- tools -----------------------------------------------------------------------------------
python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }
PYTHON="${SDK_TESTS_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null && python_ok "$candidate"; then PYTHON="$candidate"; break; fi
    done
fi
[[ -n "$PYTHON" ]] && python_ok "$PYTHON" || die "need Python >= 3.11 (polar-sdk 1.x requires it); set SDK_TESTS_PYTHON"
for tool in node npm cargo curl psql pg_isready; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done

# --- install what is missing -----------------------------------------------------------------
# One virtualenv per Python build (both install the distribution `polar-sdk`). A stamp holds the
# hash of the requirements and the interpreter version; a mismatch rebuilds the venv from scratch.
ensure_venv() {
    local name="$1" requirements="$2"
    local venv="$VENV_DIR/$name" stamp
    stamp="$(sha256sum "$requirements" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x "$venv/bin/python" && -f "$venv/.sdk-tests-stamp" && "$(cat "$venv/.sdk-tests-stamp")" == "$stamp" ]]; then
        return
    fi
    log "installing $(basename "$requirements") into .venv/$name"
    rm -rf "$venv"
    mkdir -p "$VENV_DIR"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    printf '%s\n' "$stamp" >"$venv/.sdk-tests-stamp"
}
ensure_venv sdk-py1 "$SDK_DIR/python/requirements-1.txt"
ensure_venv sdk-py0 "$SDK_DIR/python/requirements-0.txt"

# npm ci when node_modules is missing or older than the lockfile. @polar-sh/sdk 1.x declares
# node >= 22 in `engines` but runs on Node 20 when pinned exactly, hence --engine-strict=false.
if [[ ! -f "$TS_DIR/node_modules/.package-lock.json" || "$TS_DIR/package-lock.json" -nt "$TS_DIR/node_modules/.package-lock.json" ]]; then
    log "npm ci in sdk-tests/typescript"
    (cd "$TS_DIR" && npm ci --engine-strict=false --no-audit --no-fund --loglevel=error)
fi

# Medusa's client declares Medusa's server as a peer dependency for its types only; its
# .npmrc (legacy-peer-deps) keeps npm from installing the whole server.
MEDUSA_DIR="$SDK_DIR/medusa"
if [[ ! -f "$MEDUSA_DIR/node_modules/.package-lock.json" || "$MEDUSA_DIR/package-lock.json" -nt "$MEDUSA_DIR/node_modules/.package-lock.json" ]]; then
    log "npm ci in sdk-tests/medusa"
    (cd "$MEDUSA_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- the server ------------------------------------------------------------------------------
header "building refunds-server"
cargo build --locked --bin refunds-server
SERVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/refunds-server"
[[ -x "$SERVER_BIN" ]] || die "no binary at $SERVER_BIN"

if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
        log "PostgreSQL is not answering; starting the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        for _ in $(seq 30); do pg_isready -q -d "$DATABASE_URL" && break; sleep 1; done
    fi
    pg_isready -d "$DATABASE_URL" || die "PostgreSQL at $DATABASE_URL is not reachable"
fi

# The same server, another database name (the server creates it at start-up).
DB_NAME="refunds_sdk_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
if [[ "$DATABASE_URL" =~ ^([a-z]+://[^/?]+)(/[^?]*)?(\?.*)?$ ]]; then
    SERVER_DATABASE_URL="${BASH_REMATCH[1]}/$DB_NAME${BASH_REMATCH[3]}"
else
    die "cannot parse DATABASE_URL=$DATABASE_URL"
fi
ADMIN_TOKEN="sdk-tests-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# The webhook endpoint's signing secret, for the cross-check with Stripe's own library.
STRIPE_WEBHOOK_SECRET="whsec_sdk_tests_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SERVER_LOG="$(mktemp -t refunds-sdk-tests.XXXXXX.log)"
SERVER_PID=""
FAILED=()

cleanup() {
    local status=$?
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 \
        || log "could not drop database $DB_NAME"
    if [[ $status -ne 0 || ${#FAILED[@]} -ne 0 || -n "${SDK_TESTS_KEEP_LOG:-}" ]]; then
        log "server log kept at $SERVER_LOG (last lines below)"
        tail -n 20 "$SERVER_LOG" >&2
    else
        rm -f "$SERVER_LOG"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header "starting refunds-server (database $DB_NAME)"
# Webhooks go to a receiver of the suites on 127.0.0.1, with retries that come quickly.
DATABASE_URL="$SERVER_DATABASE_URL" REFUNDS_ADMIN_TOKEN="$ADMIN_TOKEN" REFUNDS_LOG_FORMAT=human RUST_LOG=info \
    STRIPE_WEBHOOK_SECRET="$STRIPE_WEBHOOK_SECRET" \
    REFUNDS_WEBHOOK_ALLOW_PRIVATE_URLS=true REFUNDS_WEBHOOK_RETRY_BASE_MS=100 \
    "$SERVER_BIN" serve --bind 127.0.0.1:0 2>"$SERVER_LOG" >/dev/null &
SERVER_PID=$!

ADDRESS=""
for _ in $(seq 600); do
    ADDRESS="$(grep -m1 -o 'listening address=[0-9.:]*' "$SERVER_LOG" | cut -d= -f2 || true)"
    [[ -n "$ADDRESS" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start-up"
    sleep 0.1
done
[[ -n "$ADDRESS" ]] || die "the server did not log its address within 60 s"
BASE_URL="http://$ADDRESS"
for _ in $(seq 300); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz")" == 200 ]] && break
    sleep 0.1
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz")" == 200 ]] || die "GET $BASE_URL/readyz never answered 200"
log "server ready at $BASE_URL"

export REFUNDS_BASE_URL="$BASE_URL" REFUNDS_ADMIN_TOKEN="$ADMIN_TOKEN" REFUNDS_STRIPE_WEBHOOK_SECRET="$STRIPE_WEBHOOK_SECRET"

# --- the suites ------------------------------------------------------------------------------
run_suite() {
    local name="$1"
    shift
    header "$name"
    local started=$SECONDS
    if "$@"; then
        log "$name: passed ($((SECONDS - started)) s)"
    else
        log "$name: FAILED ($((SECONDS - started)) s)"
        FAILED+=("$name")
    fi
}
pkg_version() { "$VENV_DIR/$1/bin/python" -c 'from importlib.metadata import version; print(version("polar-sdk"))'; }
npm_version() { node -p "require('$TS_DIR/node_modules/$1/package.json').version"; }
medusa_version() { node -p "require('$MEDUSA_DIR/node_modules/@medusajs/medusa-js/package.json').version"; }

run_suite "Python polar-sdk $(pkg_version sdk-py1) (from polar.v2026_10 import Polar)" \
    env -C "$SDK_DIR/python" POLAR_SDK_BUILD=1 "$VENV_DIR/sdk-py1/bin/python" -m pytest -v --durations=5
run_suite "Python polar-sdk $(pkg_version sdk-py0) (from polar_sdk import Polar)" \
    env -C "$SDK_DIR/python" POLAR_SDK_BUILD=0 "$VENV_DIR/sdk-py0/bin/python" -m pytest -v --durations=5
run_suite "TypeScript @polar-sh/sdk $(npm_version sdk1) (createPolar, Node $(node --version))" \
    env -C "$TS_DIR" node --test --test-reporter=spec test/sdk1.test.mjs
run_suite "TypeScript @polar-sh/sdk $(npm_version sdk0) (new Polar, Node $(node --version))" \
    env -C "$TS_DIR" node --test --test-reporter=spec test/sdk0.test.mjs
run_suite "JavaScript @medusajs/medusa-js $(medusa_version) (Medusa v1 admin.payments.refundPayment, Node $(node --version))" \
    env -C "$MEDUSA_DIR" node --test --test-reporter=spec test/refund-payment.test.mjs
run_suite "Stripe webhook signatures made by npm stripe $(npm_version stripe)" \
    env -C "$TS_DIR" node --test --test-reporter=spec test/stripe-signature.test.mjs

header "summary (${SECONDS} s)"
if [[ ${#FAILED[@]} -ne 0 ]]; then
    printf 'FAILED: %s\n' "${FAILED[@]}"
    exit 1
fi
echo "every client suite passed"
