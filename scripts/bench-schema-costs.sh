#!/usr/bin/env bash
# What our schema costs the create-refund transaction: the minimal four statements of
# tools/bench/sql/minimal.pgbench (BEGIN, the order's UPDATE ... RETURNING, the refund's
# INSERT, END), run with pgbench -M prepared on the scratch tables of
# tools/bench/sql/limit_scratch.sql, on our migrated schema, and on variants of it that each
# change one thing. Prints, per variant: at 1 client the µs per transaction, the CPU the
# database's backends spent per transaction (which other work on the machine disturbs much
# less than the wall time) and the WAL per transaction (bytes, full-page images, B-tree leaf
# inserts, non-HOT heap updates); at 16 clients the tps and the backends' CPU per
# transaction. Each the median of the rounds, the variants taken in turn within a round,
# each run after a CHECKPOINT. Then EXPLAIN (ANALYZE, BUFFERS, WAL)
# of the UPDATE and the INSERT on our schema and on the scratch tables.
#
#   scripts/bench-schema-costs.sh [--orders N] [--seconds S] [--rounds R] [--only a,b] [--keep]
#
# Needs psql and pgbench, not the Rust build: the schema comes from migrations/*.sql through
# psql, the orders from one INSERT (seeded like `refunds-server seed`, ids md5(n) so that
# pgbench picks a random one without a lookup). Every database it makes is named
# schema_costs_<random>_<variant> on DATABASE_URL's server and dropped at the end (unless
# --keep). The WAL figures come from pg_waldump over the 1-client run, keeping the
# records of the variant's database: it must be able to read the server's pg_wal.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PGBENCH="${PGBENCH:-pgbench}"
orders=100000
seconds=8
rounds=3
keep=false
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --orders) orders="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2
                   [ "$seconds" -ge 5 ] || { echo "--seconds must be at least 5" >&2; exit 2; } ;;
        --rounds) rounds="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --keep) keep=true; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

base_url="${DATABASE_URL%/*}"
prefix="schema_costs_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
work="$(mktemp -d)"
databases=()
cleanup() {
    if [ "$keep" = false ]; then
        for db in "${databases[@]}"; do
            psql -q -d "$DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
        done
    else
        echo "kept databases: ${databases[*]}" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/$1" "${@:2}"; }

# --- The variants: a name, what it changes (the table's row), and the SQL that does it on a
# copy of our migrated, seeded database. "scratch" runs the script on limit_scratch.
names=(ours triggers_off no_fks no_secondary_indexes refund_columns order_columns
       orders_fillfactor_90 webhook_targets all_of_them scratch)
declare -A what sql
what[ours]="our schema as migrated"
sql[ours]=""
what[triggers_off]="count triggers disabled"
sql[triggers_off]="ALTER TABLE refunds DISABLE TRIGGER refund_counts_insert;
ALTER TABLE refunds DISABLE TRIGGER refund_counts_update;
ALTER TABLE refunds DISABLE TRIGGER refund_counts_delete;"
what[no_fks]="foreign keys from and to orders and refunds dropped"
sql[no_fks]="DO \$\$ DECLARE c record; BEGIN
  FOR c IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
           WHERE contype = 'f' AND (conrelid IN ('orders'::regclass, 'refunds'::regclass)
                                    OR confrelid IN ('orders'::regclass, 'refunds'::regclass))
  LOOP EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.t, c.conname); END LOOP; END \$\$;"
what[no_secondary_indexes]="secondary indexes dropped (refunds keeps (organization_id, created_at, id); orders keeps the unique (organization_id, id) the foreign keys need)"
sql[no_secondary_indexes]="DROP INDEX refunds_org_amount_idx, refunds_order_idx, refunds_customer_idx,
  refunds_subscription_idx, refunds_recover_after_idx, refunds_processor_id_idx, refunds_pending_idx,
  orders_customer_idx, orders_org_created_idx, orders_subscription_idx, orders_product_idx;"
what[refund_columns]="refunds without the columns Polar's Refund lacks (comment, failure_reason, processor, processor_id, payment_id, processor_request, recover_after)"
sql[refund_columns]="ALTER TABLE refunds DROP COLUMN comment, DROP COLUMN failure_reason,
  DROP COLUMN processor, DROP COLUMN processor_id, DROP COLUMN payment_id,
  DROP COLUMN processor_request, DROP COLUMN recover_after;"
what[order_columns]="orders without the columns beyond the amounts (metadata, billing, product, pending, balance, flags; rewritten)"
sql[order_columns]="ALTER TABLE orders DROP COLUMN applied_balance_amount CASCADE,
  DROP COLUMN pending_amount CASCADE, DROP COLUMN pending_tax_amount CASCADE,
  DROP COLUMN refunds_blocked, DROP COLUMN metadata, DROP COLUMN billing_reason,
  DROP COLUMN billing_name, DROP COLUMN billing_address, DROP COLUMN product_id CASCADE,
  DROP COLUMN product_name, DROP COLUMN product_recurring_interval,
  DROP COLUMN sandbox_refund_outcome;
ALTER TABLE orders ALTER COLUMN currency TYPE text USING currency || '';"
what[orders_fillfactor_90]="orders with fillfactor 90 (room for HOT updates; rewritten)"
sql[orders_fillfactor_90]="ALTER TABLE orders SET (fillfactor = 90); VACUUM FULL orders;"
what[webhook_targets]="our schema plus the server's webhook-targets query (no endpoint) in the transaction"
sql[webhook_targets]=""
what[all_of_them]="all of the above but fillfactor and webhooks, and orders' unique (organization_id, id) too"
sql[all_of_them]="${sql[triggers_off]}
${sql[no_fks]}
${sql[no_secondary_indexes]}
ALTER TABLE orders DROP CONSTRAINT orders_organization_id_id_key;
${sql[refund_columns]}
${sql[order_columns]}"
what[scratch]="the scratch tables (limit_scratch)"
sql[scratch]=""

if [ -n "$only" ]; then
    IFS=, read -r -a names <<<"$only"
fi

# --- The scripts: the scratch one as committed, ours the same statements unqualified.
cp tools/bench/sql/minimal.pgbench "$work/scratch.pgbench"
sed 's/limit_scratch\.//g' tools/bench/sql/minimal.pgbench >"$work/ours.pgbench"
# The server asks which endpoints want the refund's events in the same transaction.
awk '/^END;/ { print "SELECT id, events, api_version FROM webhook_endpoints";
               print "WHERE organization_id = :organization_id AND enabled AND deleted_at IS NULL";
               print "  AND events && '\''{refund.created,order.updated,order.refunded}'\''::text[]";
               print "ORDER BY created_at, id;" } { print }' "$work/ours.pgbench" >"$work/webhook_targets.pgbench"
script_of() {
    case "$1" in
        scratch) echo "$work/scratch.pgbench" ;;
        webhook_targets) echo "$work/webhook_targets.pgbench" ;;
        *) echo "$work/ours.pgbench" ;;
    esac
}
schema_of() { if [ "$1" = scratch ]; then echo "limit_scratch."; else echo ""; fi; }

# --- The base database: our migrations, one organization, 1,000 customers, the orders with
# one succeeded payment and one line each, and the scratch tables holding the same orders.
base="${prefix}_base"
echo "- creating $base: migrations, $orders orders" >&2
psql -X -q -d "$DATABASE_URL" -c "CREATE DATABASE \"$base\""
databases+=("$base")
for migration in migrations/*.sql; do
    q "$base" -f "$migration"
done
q "$base" -v orders="$orders" <<'SQL'
SET client_min_messages = warning;
-- refunds.processor gets a default so that the INSERT's text is the scratch one's.
ALTER TABLE refunds ALTER COLUMN processor SET DEFAULT 'sandbox';
INSERT INTO organizations (id, name, slug)
VALUES ('00000000-0000-4000-8000-000000000001', 'Schema costs', 'schema-costs');
INSERT INTO customers (id, organization_id, email, name)
SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000001',
       'customer-' || n || '@example.com', 'Customer ' || n
FROM generate_series(1, 1000) AS n;
CREATE TEMPORARY TABLE draw AS
SELECT n, md5(n::text)::uuid AS id, gen_random_uuid() AS payment_id,
       1000 + floor(random() * 99001)::bigint AS net, random() < 0.25 AS taxed,
       random() < 0.2 AS subscribed, now() - random() * interval '365 days' AS created_at
FROM generate_series(1, :orders) AS n;
INSERT INTO orders (id, organization_id, customer_id, subscription_id, status, currency,
                    net_amount, tax_amount, billing_reason, product_id, product_name,
                    product_recurring_interval, created_at)
SELECT d.id, '00000000-0000-4000-8000-000000000001', c.ids[1 + d.n % 1000],
       CASE WHEN subscribed THEN gen_random_uuid() END, 'paid', 'usd', net,
       CASE WHEN taxed THEN net / 5 ELSE 0 END,
       CASE WHEN subscribed THEN 'subscription_create' ELSE 'purchase' END,
       CASE WHEN subscribed THEN gen_random_uuid() END,
       CASE WHEN subscribed THEN 'Subscription' END,
       CASE WHEN subscribed THEN 'month' END, created_at
FROM draw d, (SELECT array_agg(id ORDER BY id) AS ids FROM customers) c;
INSERT INTO order_items (id, organization_id, order_id, position, label, amount, tax_amount, created_at)
SELECT gen_random_uuid(), organization_id, id, 0, 'Order', net_amount, tax_amount, created_at FROM orders;
INSERT INTO payments (id, organization_id, order_id, status, processor, processor_id, amount,
                      currency, method, card_brand, card_last4, customer_email, trigger, created_at)
SELECT d.payment_id, o.organization_id, o.id, 'succeeded', 'sandbox',
       'sandbox_ch_' || replace(d.payment_id::text, '-', ''), o.net_amount + o.tax_amount, 'usd',
       'card', 'visa', '4242', 'customer@example.com', 'purchase', o.created_at
FROM orders o JOIN draw d ON d.id = o.id;
\i tools/bench/sql/limit_scratch.sql
INSERT INTO limit_scratch.orders (id, organization_id, customer_id, subscription_id, status,
                                  currency, net_amount, tax_amount, created_at)
SELECT id, organization_id, customer_id, subscription_id, 'paid', currency, net_amount,
       tax_amount, created_at
FROM orders;
SQL

for name in "${names[@]}"; do
    [ -n "${what[$name]+x}" ] || { echo "unknown variant $name" >&2; exit 2; }
    db="${prefix}_${name}"
    psql -X -q -d "$DATABASE_URL" -c "CREATE DATABASE \"$db\" TEMPLATE \"$base\""
    databases+=("$db")
    if [ -n "${sql[$name]}" ]; then
        q "$db" >/dev/null <<<"${sql[$name]}"
    fi
    q "$db" -c "VACUUM ANALYZE" >/dev/null
done

# CPU time (clock ticks) used so far by the backends of database $1.
ticks_per_second="$(getconf CLK_TCK)"
backend_ticks() {
    local pids
    pids="$(pgrep -f "^postgres: .* $1 " | sed 's|.*|/proc/&/stat|')"
    # utime and stime: fields 14 and 15 (postgres's name holds no spaces). A backend that
    # ended meanwhile is left out.
    # shellcheck disable=SC2086
    cat $pids 2>/dev/null | awk '{ total += $14 + $15 } END { print total + 0 }'
}
# One pgbench run on database $1 with script $2 and $3 clients. Prints "tps latency_us
# transactions cpu_us": the PostgreSQL CPU per transaction is that of the database's backends
# from 1 s after the start to 2 s before the end, over the refunds made meanwhile.
run_pgbench() {
    local output="$work/pgbench.out" pid t1 r1 t2 r2
    "$PGBENCH" -n -M prepared -c "$3" -j "$(( $3 < 2 ? 1 : 2 ))" -T "$seconds" -f "$2" \
        -D norders="$orders" "$base_url/$1" >"$output" 2>&1 &
    pid=$!
    sleep 1
    t1="$(backend_ticks "$1")"; r1="$(refunds_in "$1")"
    sleep $(( seconds - 3 ))
    t2="$(backend_ticks "$1")"; r2="$(refunds_in "$1")"
    if ! wait "$pid" || ! grep -q '^number of failed transactions: 0 ' "$output"; then
        cat "$output" >&2
        return 1
    fi
    awk -v ticks=$(( t2 - t1 )) -v made=$(( r2 - r1 )) -v hz="$ticks_per_second" '
        /^tps = / { tps = $3 } /^latency average = / { lat = $4 * 1000 }
        /^number of transactions actually processed: / { n = $6 }
        END { printf "%.0f %.0f %d %.0f\n", tps, lat, n, ticks * 1e6 / hz / (made > 0 ? made : 1) }' "$output"
}
lsn() { psql -X -At -d "$DATABASE_URL" -c "SELECT pg_current_wal_lsn()"; }
# The WAL a database's transactions wrote between two positions, read with pg_waldump (the
# cluster's other work left out): records naming one of its relations, and the commits of
# the transactions that wrote them. Prints per transaction: bytes, full-page images, B-tree
# leaf inserts, heap updates that were not HOT; "- - - -" if the WAL is not readable here.
PG_WALDUMP="${PG_WALDUMP:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)/pg_waldump}"
wal_dir="$(psql -X -At -d "$DATABASE_URL" -c "SHOW data_directory" 2>/dev/null)/pg_wal"
wal_of() { # db start end transactions
    local oid
    oid="$(psql -X -At -d "$DATABASE_URL" -c "SELECT oid FROM pg_database WHERE datname = '$1'")"
    "$PG_WALDUMP" -p "$wal_dir" -s "$2" -e "$3" 2>"$work/pg_waldump.err" | awk -v rel="rel [0-9]+/$oid/" -v n="$4" '
        { match($0, /rec\/tot\): *[0-9]+\/ *[0-9]+/); split(substr($0, RSTART, RLENGTH), l, "/");
          len = l[3] + 0; match($0, /tx: *[0-9]+/); tx = substr($0, RSTART + 3, RLENGTH - 3) + 0 }
        $0 ~ rel { ours[tx] = 1; bytes += len; fpi += gsub(/ FPW/, "");
                   if ($0 ~ /rmgr: Btree/ && $0 ~ /INSERT_LEAF/) leaf++;
                   if ($0 ~ /rmgr: Heap / && $0 ~ /desc: UPDATE/) cold++; next }
        /rmgr: Transaction/ && (tx in ours) { bytes += len }
        END { if (n > 0 && bytes > 0) printf "%.0f %.2f %.2f %.2f\n", bytes / n, fpi / n, leaf / n, cold / n;
              else print "- - - -" }'
    if [ -s "$work/pg_waldump.err" ]; then
        echo "  pg_waldump: $(tail -1 "$work/pg_waldump.err")" >&2
    fi
}
# Refunds in database $1 (of the scratch tables in the scratch variant's).
refunds_in() {
    local schema=""
    [[ "$1" == *_scratch ]] && schema="limit_scratch."
    q "$1" -At -c "SELECT count(*) FROM ${schema}refunds"
}

results="$work/results"
: >"$results"
for round in $(seq 1 "$rounds"); do
    echo "- round $round/$rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    for name in "${names[@]}"; do
        db="${prefix}_${name}"
        script="$(script_of "$name")"
        q "$db" -c CHECKPOINT
        before_refunds="$(refunds_in "$db")"
        wal_start="$(lsn)"
        out="$(run_pgbench "$db" "$script" 1)"
        wal_end="$(lsn)"
        read -r _ one_us one_n one_cpu <<<"$out"
        read -r wal_per_tx fpi_per_tx leaf_per_tx cold_per_tx <<<"$(wal_of "$db" "$wal_start" "$wal_end" "$one_n")"
        after_refunds="$(refunds_in "$db")"
        if [ $(( after_refunds - before_refunds )) -ne "$one_n" ]; then
            echo "$name: pgbench reported $one_n transactions but made $(( after_refunds - before_refunds )) refunds" >&2
            exit 1
        fi
        q "$db" -c CHECKPOINT
        out="$(run_pgbench "$db" "$script" 16)"
        read -r tps16 _ _ cpu16 <<<"$out"
        echo "$name $one_us $one_cpu $tps16 $cpu16 $wal_per_tx $fpi_per_tx $leaf_per_tx $cold_per_tx" >>"$results"
        printf '  %-21s 1 client %6d µs/tx (PG CPU %4d)  16 clients %5d tps (PG CPU %4d µs/tx)  WAL %6s B/tx: %s FPI, %s B-tree inserts, %s non-HOT updates\n' \
            "$name" "$one_us" "$one_cpu" "$tps16" "$cpu16" "$wal_per_tx" "$fpi_per_tx" "$leaf_per_tx" "$cold_per_tx" >&2
    done
done

# --- The table: medians of the rounds.
# The median of the numbers read, "-" (not measured) left out.
median() {
    { grep -v '^-$' || true; } | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
col() { awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$results" | median; }
echo
echo "schema costs: $orders orders, $rounds round(s) of $seconds s per figure; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| change | µs/tx, 1 client | PostgreSQL CPU µs/tx, 1 client | tps, 16 clients | PostgreSQL CPU µs/tx, 16 clients | WAL B/tx | full-page images/tx | B-tree inserts/tx | non-HOT updates/tx |"
echo "|---|---|---|---|---|---|---|---|---|"
for name in "${names[@]}"; do
    printf '| %s (`%s`) |' "${what[$name]}" "$name"
    for column in 2 3 4 5 6 7 8 9; do printf ' %s |' "$(col "$name" "$column")"; done
    echo
done

# --- Plan shapes: the UPDATE and the INSERT of one transaction, rolled back, on our schema
# and on the scratch tables, after 20 such transactions in the same session (so that the
# plans, the trigger's function and the caches are warm).
cat >"$work/explain.sql" <<'SQL'
BEGIN;
SELECT organization_id, customer_id, currency FROM :s orders WHERE id = md5(:'n')::uuid \gset
EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF)
UPDATE :s orders
SET refunded_amount = refunded_amount + 5,
    refunded_tax_amount = refunded_tax_amount + (10 * tax_amount + net_amount) / (2 * net_amount),
    status = CASE WHEN refunded_amount + 5 = net_amount THEN 'refunded' ELSE 'partially_refunded' END,
    modified_at = now()
WHERE id = md5(:'n')::uuid AND refunded_amount + 5 <= net_amount
RETURNING id, organization_id, customer_id, subscription_id, currency;
EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF)
INSERT INTO :s refunds (id, status, reason, amount, tax_amount, currency, organization_id,
                        order_id, subscription_id, customer_id, revoke_benefits, metadata)
VALUES (gen_random_uuid(), 'succeeded', 'customer_request', 5, 0, :'currency', :'organization_id',
        md5(:'n')::uuid, NULL, :'customer_id', false, '{}')
RETURNING created_at;
ROLLBACK;
SQL
for name in ours scratch; do
    db="${prefix}_${name}"
    [ -n "$(psql -X -At -d "$DATABASE_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ] || continue
    echo
    echo "EXPLAIN (ANALYZE, BUFFERS, WAL) of the UPDATE then the INSERT, warm, on ${what[$name]}:"
    {
        echo '\pset pager off'
        echo '\pset format unaligned'
        echo '\pset tuples_only on'
        echo '\o /dev/null'
        for i in $(seq 1 20); do
            echo "\\set n $(( (i * 7919) % orders + 1 ))"
            echo "\\i $work/explain.sql"
        done
        echo '\o'
        echo "\\set n $(( orders / 2 + 1 ))"
        echo "\\i $work/explain.sql"
    } | q "$db" -v s="$(schema_of "$name")" | sed 's/^/    /'
done
