#!/usr/bin/env bash
# Peer benchmark: builds both bench packages in release, runs every workload on ours,
# turmoil and madsim (each framework and workload in its own process, so that peak
# memory is per run), and prints one table with the ratios.
#
#   tests/peer-bench/run.sh            # everything (about 5 minutes on 2 cores)
#   REPS=9 tests/peer-bench/run.sh     # best of 9 instead of best of 5
#   WORKLOADS="timers spawn" tests/peer-bench/run.sh
#   PEER_BENCH_CLOCK=wall tests/peer-bench/run.sh   # wall-clock instead of CPU time
#
# madsim needs RUSTFLAGS="--cfg madsim", which must not reach the other build, so the
# two packages have separate target dirs under tests/peer-bench/target (gitignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

REPS="${REPS:-5}"
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

for wl in $WORKLOADS; do
    for fw in ours ours-untraced madsim turmoil; do
        reps="$REPS"
        case "$wl" in
            live) reps=1 ;;
            pingpong-*|fanin|idle) [ "$fw" = turmoil ] && reps="$TURMOIL_NET_REPS" ;;
        esac
        run "$fw" "$wl" "$reps"
    done
done

clock="CPU time of the simulating thread"
[ "${PEER_BENCH_CLOCK:-cpu}" = wall ] && clock="wall-clock time"

awk -v clock="$clock" -v revision="$revision" -v load="$load_before" -v load_after="$(cut -d' ' -f1-3 /proc/loadavg)" '
function human(v, unit) {
    if (v == "") return "n/a";
    if (unit == "%") return sprintf("%+.1f %%", v);
    if (unit == "B" || unit == "MB") return sprintf("%.0f %s", v, unit);
    if (v >= 1e6) return sprintf("%.2f M/s", v / 1e6);
    if (v >= 1e3) return sprintf("%.1f k/s", v / 1e3);
    if (v >= 10) return sprintf("%.0f /s", v);
    return sprintf("%.3f /s", v);
}
function ratio(a, b, unit) {
    if (a == "" || b == "" || b == 0 || unit == "%") return "-";
    if (a / b >= 1000) return sprintf("%.0fx", a / b);
    return sprintf("%.2fx", a / b);
}
{ v[$1, $2] = $3 }
END {
    n = split("timers spawn spawn-peak-mb live-heap live-rss pingpong-rpc pingpong-conn fanin idle-base idle idle-slowdown", keys, " ");
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
    unitof["spawn-peak-mb"] = "MB"; unitof["live-heap"] = "B"; unitof["live-rss"] = "B";
    unitof["idle-slowdown"] = "%";
    fmt = "| %-46s | %12s | %12s | %12s | %12s | %12s |\n";
    printf "\nPeer benchmark (rates per second of %s; best of N runs)\n\n", clock;
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
        if (o == "" && q == "") continue;
        printf fmt2, label[k], human(o, u), human(q, u), ratio(q, o, u), ratio(q, m, u);
    }
    printf "\nload average before: %s, after: %s (2 cores); ours built from %s\n", load, load_after, revision;
}' "$results"

if [ -s "$notes" ]; then
    echo
    sort -u "$notes"
fi
