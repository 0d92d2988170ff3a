#!/usr/bin/env bash
# A flame graph of the server under the create load: builds the server in release mode with
# debug information and frame pointers (in target/flame, apart from the normal build), runs
# the quick benchmark with one more create phase of 16 clients recorded by `perf record -g`
# (refunds-bench --perf), and folds the profile with inferno into an SVG. Then prints what
# share of the server's samples each stage of a request takes, a sample going to the
# innermost frame that names a stage.
#   scripts/bench-flamegraph.sh [OUTPUT.svg]     default docs/create-flamegraph.svg
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
REFUNDS_SERVER_BIN=target/flame/release/refunds-server \
    target/release/refunds-bench --quick --seconds 5 --perf "$work/create.perf.data" >"$work/bench.txt"

"$PERF" script -i "$work/create.perf.data" 2>/dev/null | inferno-collapse-perf >"$work/collapsed.txt"
inferno-flamegraph --title "refunds-server: POST /v1/refunds/, 16 clients (perf, $(date -u +%F))" \
    --width 1600 <"$work/collapsed.txt" >"$output"
echo "wrote $output ($(awk '{ n += $NF } END { print n }' "$work/collapsed.txt") samples)" >&2

# Stages, innermost first: the first pattern (in this order) that a frame matches, walking
# from the leaf to the root, names the sample's stage.
awk '
BEGIN {
    n = split("auth|SQL (sqlx)|request JSON|answer JSON|logging (tracing)|HTTP (hyper, axum, tower)|tokio runtime, I/O|allocator|libc, kernel", names, "|")
    pattern[1] = "refunds_server::auth|sha2::"
    pattern[2] = "sqlx"
    pattern[3] = "serde_json::de|Deserialize|refunds_server::polar::parse"
    pattern[4] = "serde_json::ser|Serialize|serialize"
    pattern[5] = "tracing"
    pattern[6] = "hyper|axum|tower|http::"
    pattern[7] = "tokio|mio::"
    pattern[8] = "malloc|free|realloc|alloc::"
    pattern[9] = "libc|\\[unknown\\]|\\[kernel|entry_SYSCALL|syscall"
}
{
    count = $NF
    stack = substr($0, 1, length($0) - length(count) - 1)
    frames = split(stack, frame, ";")
    stage = "other"
    for (f = frames; f >= 1 && stage == "other"; f--)
        for (p = 1; p <= n; p++)
            if (frame[f] ~ pattern[p]) { stage = names[p]; break }
    share[stage] += count
    total += count
}
END {
    printf "| stage | share of the server'"'"'s samples |\n|---|---|\n"
    for (p = 1; p <= n; p++) printf "| %s | %.1f %% |\n", names[p], 100 * share[names[p]] / total
    printf "| other | %.1f %% |\n", 100 * share["other"] / total
}' "$work/collapsed.txt"
