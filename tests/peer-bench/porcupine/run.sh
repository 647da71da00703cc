#!/usr/bin/env bash
# Our linearizability checker against Porcupine on the very same two histories.
#
#   tests/peer-bench/porcupine/run.sh
#
# 1. runs `cargo bench -p sim-models --bench linearizable_bench` with LIN_HISTORY_OUT set,
#    which writes the two histories it checks (linearizable.jsonl, planted.jsonl) and its
#    own times (ours.txt);
# 2. builds main.go against Porcupine and has it decide and time the same two files,
#    once with GOMAXPROCS=1 (one thread, as ours) and once with Go's default (Porcupine
#    checks the keys in parallel goroutines);
# 3. prints a table: history, verdicts, ours and Porcupine's median and best, ratios.
#
# Environment: PORCUPINE_DIR, a Porcupine source tree (a git checkout, to report its
# commit); when unset, it is cloned from GitHub into a temporary directory. RUNS (default
# 5) timed runs per history for Porcupine (ours always does 5). LIN_HISTORY_OUT, where
# the histories go (default: a temporary directory). Cargo's own variables
# (CARGO_TARGET_DIR, CARGO_BUILD_JOBS) pass through. Go needs no network: Porcupine has
# no dependencies, and GOPROXY=off and GOFLAGS=-mod=mod are set.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
RUNS=${RUNS:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=${LIN_HISTORY_OUT:-$WORK/histories}

if [ -z "${PORCUPINE_DIR:-}" ]; then
    PORCUPINE_DIR=$WORK/porcupine
    git clone -q https://github.com/anishathalye/porcupine "$PORCUPINE_DIR" || {
        echo "cannot clone Porcupine; set PORCUPINE_DIR to a checkout" >&2
        exit 1
    }
fi
PORCUPINE_DIR=$(cd "$PORCUPINE_DIR" && pwd)
PORCUPINE_COMMIT=$(git -C "$PORCUPINE_DIR" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")

echo "== ours: cargo bench -p sim-models --bench linearizable_bench (LIN_HISTORY_OUT=$OUT)"
(cd "$ROOT" && LIN_HISTORY_OUT=$OUT cargo bench -q -p sim-models --bench linearizable_bench)

echo "== porcupine $PORCUPINE_COMMIT, $(go version)"
mkdir -p "$WORK/harness"
cp "$HERE/main.go" "$HERE/go.mod" "$WORK/harness/"
export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local
(
    cd "$WORK/harness"
    go mod edit -replace "github.com/anishathalye/porcupine=$PORCUPINE_DIR"
    go build -o "$WORK/porcupine-bench" .
)
ARGS=(-runs "$RUNS" "linearizable=$OUT/linearizable.jsonl" "planted=$OUT/planted.jsonl")
GOMAXPROCS=1 "$WORK/porcupine-bench" "${ARGS[@]}" | tee "$WORK/one.txt"
"$WORK/porcupine-bench" "${ARGS[@]}" | tee "$WORK/all.txt"
CORES=$(head -1 "$WORK/all.txt" | sed 's/.*GOMAXPROCS=\([0-9]*\).*/\1/')

echo
echo "== ours vs Porcupine (wall time, ms: median / best; ratio = Porcupine / ours, by median)"
awk -v cores="$CORES" '
    FILENAME ~ /ours.txt$/ { verdict[$1] = $2; om[$1] = $3; ob[$1] = $4; order[++n] = $1; next }
    FILENAME ~ /one.txt$/ && $1 == "RESULT" { p1v[$2] = $3; p1m[$2] = $4; p1b[$2] = $5; bad1[$2] = $6; next }
    FILENAME ~ /all.txt$/ && $1 == "RESULT" { pav[$2] = $3; pam[$2] = $4; pab[$2] = $5; next }
    END {
        printf "%-13s %-20s %-16s %-19s %-19s %10s %10s\n", "history", "verdicts (ours/P)", "ours", "porcupine 1 thread", "porcupine " cores " thr.", "ratio 1thr", "ratio " cores "thr"
        agree = 1
        for (i = 1; i <= n; i++) {
            h = order[i]
            ov = verdict[h]; sub(/:.*/, "", ov)
            pv = tolower(p1v[h])
            if (ov != pv || pv != tolower(pav[h])) agree = 0
            printf "%-13s %-20s %6.1f / %6.1f  %7.1f / %7.1f   %7.1f / %7.1f   %9.1fx %9.1fx\n", h, ov "/" pv,
                om[h] / 1e6, ob[h] / 1e6, p1m[h] / 1e6, p1b[h] / 1e6, pam[h] / 1e6, pab[h] / 1e6,
                p1m[h] / om[h], pam[h] / om[h]
            if (verdict[h] ~ /:/) { k = verdict[h]; sub(/^[^:]*:/, "", k); printf "  %s: key not linearizable: ours %s, porcupine (each key alone) %s\n", h, k, bad1[h]; if (k != bad1[h]) agree = 0 }
        }
        print (agree ? "verdicts agree" : "VERDICTS DISAGREE")
        exit (agree ? 0 : 1)
    }' "$OUT/ours.txt" "$WORK/one.txt" "$WORK/all.txt"
