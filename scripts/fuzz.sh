#!/usr/bin/env bash
# Schema fuzzing: schemathesis generates requests from the served OpenAPI document (fixed
# seed) and checks every answer against it: no 5xx, documented statuses, content types and
# bodies. Usage: scripts/fuzz.sh [max examples per operation, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${1:-60}"
SEED=20261122
MIN_REQUESTS=1000
SCHEMATHESIS_VERSION=4.32.5
VENV=.venv/schemathesis
BASE_URL_DB="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB_NAME="refunds_fuzz_$(date +%s)_$$"
ADMIN_TOKEN="fuzz-admin-$RANDOM$RANDOM"
WORK=$(mktemp -d)

if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | grep -o '[0-9.]*$')" != "$SCHEMATHESIS_VERSION" ]; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --locked --quiet --bin refunds-server

server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    psql "$BASE_URL_DB" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL="${BASE_URL_DB%/*}/$DB_NAME" REFUNDS_ADMIN_TOKEN="$ADMIN_TOKEN" RUST_LOG=warn,refunds_server::app::startup=info \
    target/debug/refunds-server serve --bind 127.0.0.1:0 --request-timeout 10 2>"$WORK/server.log" &
server_pid=$!
ADDRESS=""
for _ in $(seq 100); do
    ADDRESS=$(grep -o 'listening.*127\.0\.0\.1:[0-9]*' "$WORK/server.log" | grep -o '127\.0\.0\.1:[0-9]*' || true)
    [ -n "$ADDRESS" ] && break
    sleep 0.2
done
[ -n "$ADDRESS" ] || { echo "the server did not start"; cat "$WORK/server.log"; exit 1; }
BASE="http://$ADDRESS"

admin() { curl -fsS -X POST "$BASE$1" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d "$2"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
ORG=$(admin /admin/organizations '{"name": "Fuzz"}' | field id)
TOKEN=$(admin "/admin/organizations/$ORG/access-tokens" '{"scopes": ["refunds:read", "refunds:write", "orders:read", "payments:read", "webhooks:read", "webhooks:write"]}' | field token)
CUSTOMER=$(admin /admin/customers "{\"organization_id\": \"$ORG\", \"email\": \"fuzz@example.com\", \"external_id\": \"fuzz\"}" | field id)
for net in 1000 5000 99999; do
    admin /admin/orders "{\"organization_id\": \"$ORG\", \"customer_id\": \"$CUSTOMER\", \"net_amount\": $net, \"tax_amount\": 250, \"currency\": \"usd\"}" >/dev/null
done
# Orders with every detail, for the order and payment operations to show.
admin /admin/orders "{\"organization_id\": \"$ORG\", \"customer_id\": \"$CUSTOMER\", \"net_amount\": 3000, \"tax_amount\": 300, \"currency\": \"usd\",
    \"subscription_id\": \"$(python3 -c 'import uuid; print(uuid.uuid4())')\", \"product_name\": \"Gold\", \"billing_name\": \"Fuzz Ltd\",
    \"billing_address\": {\"country\": \"FR\"}, \"metadata\": {\"plan\": \"pro\", \"seats\": 3},
    \"items\": [{\"label\": \"Gold\", \"amount\": 2500, \"tax_amount\": 250}, {\"label\": \"Seat\", \"amount\": 500, \"tax_amount\": 50}]}" >/dev/null
admin /admin/orders "{\"organization_id\": \"$ORG\", \"customer_id\": \"$CUSTOMER\", \"net_amount\": 700, \"tax_amount\": 0, \"currency\": \"eur\", \"payment_method\": \"paypal\"}" >/dev/null

# The Medusa route refunds a real payment (a big one, so that many refunds go through before
# what is left runs out) in one run, and generated ids in another.
BIG_ORDER=$(admin /admin/orders "{\"organization_id\": \"$ORG\", \"customer_id\": \"$CUSTOMER\", \"net_amount\": 90000000, \"tax_amount\": 18000000, \"currency\": \"usd\"}" | field id)
PAYMENT=$(curl -fsS "$BASE/v1/payments/?order_id=$BIG_ORDER" -H "Authorization: Bearer $TOKEN" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['items'][0]['id'])")
printf '[parameters]\n"path.id" = "%s"\n' "$PAYMENT" >"$WORK/medusa-payment.toml"

run() { # tag, authorization header, checks to leave out besides positive_data_acceptance, config file
    echo "== schemathesis: $1 operations${4:+ ($(basename "$4"))}"
    PYTHONPATH=scripts/fuzz SCHEMATHESIS_HOOKS=hooks \
        "$VENV/bin/schemathesis" ${4:+--config-file "$4"} run "$BASE/openapi.json" \
        --include-tag "$1" ${2:+--header "Authorization: Bearer $2"} \
        --checks all --exclude-checks "positive_data_acceptance${3:+,$3}" \
        --seed "$SEED" --max-examples "$EXAMPLES" --generation-database none \
        --workers 1 --request-timeout 15 --no-color \
        --report har --report-har-path "$WORK/$1${4:+-$(basename "$4" .toml)}.har"
}
status=0
# Polar answers a wrong method on /v1/refunds/ with `Allow: GET` (the list route's methods
# only), and so does this server: the Allow check would ask for POST as well.
run refunds "$TOKEN" allow_header_conformance || status=1
# Polar's created_after and created_before also read Unix timestamps and dates, which the
# documented `date-time` format does not describe: such values are rightly accepted.
run orders "$TOKEN" negative_data_rejection || status=1
run payments "$TOKEN" || status=1
# The same two reasons: a list route's 405 names only its own methods, as Polar's does, and
# Polar's start_timestamp and end_timestamp also read Unix timestamps.
run webhooks "$TOKEN" allow_header_conformance,negative_data_rejection || status=1
run admin "$ADMIN_TOKEN" || status=1
# Medusa's route takes its token as a bearer token or in `x-medusa-access-token`, and like
# Medusa any one that works is enough: a bad `x-medusa-access-token` beside a good bearer
# token is rightly accepted, which the ignored_auth check would call a failure.
run medusa "$TOKEN" ignored_auth || status=1
run medusa "$TOKEN" ignored_auth "$WORK/medusa-payment.toml" || status=1
run operations "" || status=1

REQUESTS=$(python3 -c "
import json, glob
print(sum(len(json.load(open(f))['log']['entries']) for f in glob.glob('$WORK/*.har')))")
echo "== schemathesis sent $REQUESTS requests (seed $SEED, $EXAMPLES examples per operation)"
if grep -qE 'panicked|ERROR' "$WORK/server.log"; then
    echo "== the server logged errors:"; grep -E 'panicked|ERROR' "$WORK/server.log" | head -20; status=1
fi
[ "$REQUESTS" -ge "$MIN_REQUESTS" ] || { echo "fewer than $MIN_REQUESTS requests"; status=1; }
exit $status
