#!/usr/bin/env bash
# Peer benchmark: builds both bench packages in release, runs every workload on ours,
# turmoil and madsim (each framework and workload in its own process, so that peak
# memory is per run), and prints one table with the ratios.
#
#   tests/peer-bench/run.sh            # everything (about 10 minutes on 2 cores)
#   ROUNDS=5 REPS=2 tests/peer-bench/run.sh   # best of 5 rounds x 2 runs instead of 3 x 2
#   WORKLOADS="timers spawn" tests/peer-bench/run.sh
#   PEER_BENCH_CLOCK=wall tests/peer-bench/run.sh   # wall-clock instead of CPU time
#   INSTR=1 tests/peer-bench/run.sh    # also instructions per event under callgrind
#
# The frameworks take turns, round by round, so that a slow stretch of a shared machine
# (seen here: the same binary 30 % apart from one minute to the next) falls on all of
# them instead of on whichever ran then. INSTR=1 adds a figure no other process can
# disturb: instructions per event (valgrind's callgrind counts them, the same for the
# same binary and input), for the timer and spawn workloads.
#
# madsim needs RUSTFLAGS="--cfg madsim", which must not reach the other build, so the
# two packages have separate target dirs under tests/peer-bench/target (gitignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

ROUNDS="${ROUNDS:-3}"
REPS="${REPS:-2}"
INSTR="${INSTR:-0}"
# turmoil's network runs are slow (every host is ticked every simulated millisecond):
# one repetition each.
TURMOIL_NET_REPS="${TURMOIL_NET_REPS:-1}"
WORKLOADS="${WORKLOADS:-timers spawn live pingpong-rpc pingpong-conn fanin idle}"

echo "building (release) ..." >&2
(cd ours-turmoil && env -u RUSTFLAGS CARGO_TARGET_DIR="$here/target/ours-turmoil" \
    cargo build --release --quiet)
(cd madsim && RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$here/target/madsim" \
    cargo build --release --quiet)
ours_turmoil_bin="$here/target/ours-turmoil/release/peer-bench-ours-turmoil"
madsim_bin="$here/target/madsim/release/peer-bench-madsim"

results="$(mktemp)"
notes="$(mktemp)"
trap 'rm -f "$results" "$notes"' EXIT

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# What was measured: our crates are built from the working tree.
if revision="$(git -C "$here" rev-parse --short HEAD 2>/dev/null)"; then
    if ! git -C "$here" diff --quiet HEAD -- ../../sim-runtime/src ../../sim-net/src; then
        revision="$revision + uncommitted changes in sim-runtime/sim-net"
    fi
else
    revision="a tree outside git"
fi

# run <framework> <workload> <reps>: appends "<framework> <key> <value>" lines.
run() {
    local fw="$1" wl="$2" reps="$3" out
    echo "  $fw $wl ..." >&2
    case "$fw" in
        madsim) out="$("$madsim_bin" "$wl" "$reps")" ;;
        *) out="$("$ours_turmoil_bin" "$fw" "$wl" "$reps")" ;;
    esac
    printf '%s\n' "$out" | awk -v fw="$fw" '$1 == "RESULT" { print fw, $2, $3 }' >>"$results"
    printf '%s\n' "$out" | sed -n 's/^NOTE //p' >>"$notes"
}

for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for wl in $WORKLOADS; do
        for fw in ours ours-untraced madsim turmoil; do
            reps="$REPS"
            case "$wl" in
                live) [ "$round" -gt 1 ] && continue; reps=1 ;;
                pingpong-*|fanin|idle)
                    if [ "$fw" = turmoil ]; then
                        [ "$round" -gt 1 ] && continue
                        reps="$TURMOIL_NET_REPS"
                    fi ;;
            esac
            run "$fw" "$wl" "$reps"
        done
    done
done

# instr <framework> <workload> <events>: appends "<framework> <workload>-instr <n>", the
# instructions per event of one run (process start and world set-up included).
instr() {
    local fw="$1" wl="$2" events="$3" out n
    echo "  $fw $wl under callgrind ..." >&2
    out="$(mktemp)"
    case "$fw" in
        madsim) valgrind --tool=callgrind --callgrind-out-file=/dev/null "$madsim_bin" "$wl" 1 >/dev/null 2>"$out" ;;
        *) valgrind --tool=callgrind --callgrind-out-file=/dev/null "$ours_turmoil_bin" "$fw" "$wl" 1 >/dev/null 2>"$out" ;;
    esac
    n="$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$out" | tail -1)"
    rm -f "$out"
    [ -n "$n" ] && echo "$fw $wl-instr $(awk -v n="$n" -v e="$events" 'BEGIN { printf "%.1f", n / e }')" >>"$results"
}
if [ "$INSTR" = 1 ]; then
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "INSTR=1 needs valgrind (apt-get install valgrind)" >&2
        exit 2
    fi
    for wl in $WORKLOADS; do
        case "$wl" in
            timers) events=1000000 ;;
            spawn) events=1000000 ;;
            *) continue ;;
        esac
        for fw in ours madsim turmoil; do
            instr "$fw" "$wl" "$events"
        done
    done
fi

clock="CPU time of the simulating thread"
[ "${PEER_BENCH_CLOCK:-cpu}" = wall ] && clock="wall-clock time"

awk -v clock="$clock" -v rounds="$ROUNDS" -v reps="$REPS" -v revision="$revision" -v load="$load_before" -v load_after="$(cut -d' ' -f1-3 /proc/loadavg)" '
function human(v, unit) {
    if (v == "") return "n/a";
    if (unit == "%") return sprintf("%+.1f %%", v);
    if (unit == "B" || unit == "MB") return sprintf("%.0f %s", v, unit);
    if (unit == "I") return sprintf("%.0f", v);
    if (v >= 1e6) return sprintf("%.2f M/s", v / 1e6);
    if (v >= 1e3) return sprintf("%.1f k/s", v / 1e3);
    if (v >= 10) return sprintf("%.0f /s", v);
    return sprintf("%.3f /s", v);
}
function ratio(a, b, unit) {
    if (a == "" || b == "" || b == 0 || unit == "%") return "-";
    # For instructions, how many times fewer ours needs (higher is better, like rates).
    if (unit == "I") { if (a == 0) return "-"; t = a; a = b; b = t; }
    if (a / b >= 1000) return sprintf("%.0fx", a / b);
    return sprintf("%.2fx", a / b);
}
{
    # Several rounds report each figure: keep the best (the highest rate, the least
    # memory or instructions); the idle slowdown is recomputed from the best rates.
    k = $1 SUBSEP $2;
    lower = ($2 ~ /^(spawn-peak-mb|live-heap|live-rss)$/ || $2 ~ /-instr$/);
    if (!(k in v) || (lower && $3 < v[k]) || (!lower && $3 > v[k])) v[k] = $3;
}
END {
    split("ours ours-untraced madsim turmoil", fws, " ");
    for (i in fws) {
        f = fws[i];
        if ((f SUBSEP "idle-base") in v && (f SUBSEP "idle") in v && v[f, "idle-base"] > 0)
            v[f, "idle-slowdown"] = (1 - v[f, "idle"] / v[f, "idle-base"]) * 100;
    }
    n = split("timers spawn spawn-peak-mb live-heap live-rss pingpong-rpc pingpong-conn fanin idle-base idle idle-slowdown timers-instr spawn-instr", keys, " ");
    label["timers"] = "timers: 10k tasks x 100 sleeps (events/s)";
    label["spawn"] = "spawn+join 1M tasks (spawns/s)";
    label["spawn-peak-mb"] = "spawn: peak memory, VmHWM (lower is better)";
    label["live-heap"] = "bytes per live task, heap (lower is better)";
    label["live-rss"] = "bytes per live task, RSS (lower is better)";
    label["pingpong-rpc"] = "ping-pong 100k RTs, RPC (msg/s)";
    label["pingpong-conn"] = "ping-pong 100k RTs, raw conn (msg/s)";
    label["fanin"] = "fan-in 100 clients x 1k RTs (msg/s)";
    label["idle-base"] = "ping-pong RPC, idle run baseline (msg/s)";
    label["idle"] = "ping-pong RPC + 1000 idle nodes (msg/s)";
    label["idle-slowdown"] = "slowdown from 1000 idle nodes (< 5 %)";
    label["timers-instr"] = "timers: instructions per event (fewer: better)";
    label["spawn-instr"] = "spawn+join: instructions per task (fewer)";
    unitof["spawn-peak-mb"] = "MB"; unitof["live-heap"] = "B"; unitof["live-rss"] = "B";
    unitof["idle-slowdown"] = "%";
    unitof["timers-instr"] = "I"; unitof["spawn-instr"] = "I";
    fmt = "| %-46s | %12s | %12s | %12s | %12s | %12s |\n";
    printf "\nPeer benchmark (rates per second of %s; best of %s rounds x %s runs, frameworks taking turns)\n\n", clock, rounds, reps;
    printf fmt, "workload", "ours", "turmoil", "madsim", "ours/turmoil", "ours/madsim";
    printf "|%s|%s|%s|%s|%s|%s|\n", "------------------------------------------------", "--------------", "--------------", "--------------", "--------------", "--------------";
    for (i = 1; i <= n; i++) {
        k = keys[i]; u = unitof[k];
        o = v["ours", k]; t = v["turmoil", k]; m = v["madsim", k];
        if (o == "" && t == "" && m == "") continue;
        printf fmt, label[k], human(o, u), human(t, u), human(m, u), ratio(o, t, u), ratio(o, m, u);
    }
    printf "\nOurs with per-poll and per-message trace events off (SimConfig.trace_polls = false,\nsim_net::set_message_tracing(false)):\n\n";
    fmt2 = "| %-46s | %12s | %14s | %14s | %14s |\n";
    printf fmt2, "workload", "ours", "ours untraced", "untraced/ours", "untraced/madsim";
    printf "|%s|%s|%s|%s|%s|\n", "------------------------------------------------", "--------------", "----------------", "----------------", "----------------";
    for (i = 1; i <= n; i++) {
        k = keys[i]; u = unitof[k];
        o = v["ours", k]; q = v["ours-untraced", k]; m = v["madsim", k];
        if (o == "" && q == "" || k ~ /-instr$/) continue;
        printf fmt2, label[k], human(o, u), human(q, u), ratio(q, o, u), ratio(q, m, u);
    }
    printf "\nload average before: %s, after: %s (2 cores); ours built from %s\n", load, load_after, revision;
}' "$results"

if [ -s "$notes" ]; then
    echo
    sort -u "$notes"
fi
