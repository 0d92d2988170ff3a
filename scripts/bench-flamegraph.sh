#!/usr/bin/env bash
# A flame graph of the server under the create load: builds the server in release mode with
# debug information and frame pointers (in target/flame, apart from the normal build), runs
# the quick benchmark with one more create phase of 16 clients recorded by `perf record -g`
# (refunds-bench --perf), and folds the profile with inferno into an SVG. Then prints what
# share of the server's samples each stage of a request takes, a sample going to the
# innermost frame that names a stage.
#   scripts/bench-flamegraph.sh [OUTPUT.svg]     default docs/create-flamegraph.svg
#   FOLDED=stacks.txt scripts/bench-flamegraph.sh    also keeps the folded stacks
# Needs perf (PERF overrides it) and inferno (`cargo install inferno`).
set -euo pipefail
cd "$(dirname "$0")/.."

output="${1:-docs/create-flamegraph.svg}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PERF="${PERF:-perf}"
export PERF
for tool in "$PERF" inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "$tool not found (inferno: cargo install inferno)" >&2; exit 1; }
done

cargo build --release --locked -p refunds-bench
CARGO_TARGET_DIR=target/flame CARGO_PROFILE_RELEASE_DEBUG=true \
    RUSTFLAGS="-C force-frame-pointers=yes" cargo build --release --locked -p refunds-server

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The profile is written early in the run: a later failure of the benchmark still leaves it.
REFUNDS_SERVER_BIN=target/flame/release/refunds-server \
    target/release/refunds-bench --quick --seconds 10 --perf "$work/create.perf.data" >"$work/bench.txt" ||
    [ -s "$work/create.perf.data" ] || exit 1

"$PERF" script -i "$work/create.perf.data" 2>/dev/null | inferno-collapse-perf --all >"$work/collapsed.txt"
inferno-flamegraph --title "refunds-server: POST /v1/refunds/, 16 clients (perf, $(date -u +%F))" \
    --width 1600 --minwidth 2 <"$work/collapsed.txt" >"$output"
[ -z "${FOLDED:-}" ] || cp "$work/collapsed.txt" "$FOLDED"
echo "wrote $output" >&2

# Stages: walking a sample's stack from the leaf to the root, the first frame that matches
# one of these patterns (tried in this order, the runtime last) names its stage; frames that match none (the
# allocator, memcpy, the kernel, ...) count for the stage that called them. The kernel's
# part of each stage (the leaf is a kernel frame: socket reads and writes, wake-ups) is shown
# apart.
awk '
BEGIN {
    n = split("auth (token hash)|SQL (sqlx: encode, decode, protocol, pool, its socket)|request JSON parse|answer JSON serialisation|logging (tracing)|HTTP layers (refunds_server::http)|handlers and services (refunds_server)|HTTP (hyper, axum, tower, their socket)|tokio runtime (scheduling, waiting for work)", names, "|")
    pattern[1] = "refunds_server::auth|sha2::"
    pattern[2] = "sqlx"
    pattern[3] = "serde_json::de|Deserializ|refunds_server::polar::parse|refunds_server::refunds::input"
    pattern[4] = "serde_json::ser|Serializ|serialize"
    pattern[5] = "tracing"
    pattern[6] = "refunds_server::http"
    pattern[7] = "refunds_server::"
    pattern[8] = "hyper|axum|tower|http::|httparse"
    pattern[9] = "tokio|mio::"
}
{
    count = $NF
    stack = substr($0, 1, length($0) - length(count) - 1)
    frames = split(stack, frame, ";")
    # The runtime is at the root of every stack (and under every socket call): it names the
    # sample only if no other stage does.
    stage = "other"
    for (f = frames; f >= 1 && stage == "other"; f--)
        for (p = 1; p < n; p++)
            if (frame[f] ~ pattern[p]) { stage = names[p]; break }
    for (f = frames; f >= 1 && stage == "other"; f--)
        if (frame[f] ~ pattern[n]) stage = names[n]
    share[stage] += count
    if (frame[frames] ~ /_\[k\]$/) kernel[stage] += count
    total += count
}
END {
    printf "| stage | share of the server'"'"'s CPU samples | of which in the kernel |\n|---|---|---|\n"
    names[n + 1] = "other"
    for (p = 1; p <= n + 1; p++)
        printf "| %s | %.1f %% | %.1f %% |\n", names[p], 100 * share[names[p]] / total, 100 * kernel[names[p]] / total
}' "$work/collapsed.txt"
