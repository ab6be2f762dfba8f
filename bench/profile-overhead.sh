#!/usr/bin/env bash
# bench/profile-overhead.sh — what does it cost to profile a process with
# scorch, compared with perf and bpftrace, measured in the same run?
#
# One busy 2-thread C workload (bench/busy.c, frame pointers) runs for the
# whole benchmark. Each tool profiles its PID for D seconds; the tools take
# turns (scorch 49, scorch 999, perf 49, perf 999, bpftrace 49) and the round
# is repeated R times, so machine drift hits every tool alike. We report the
# median per tool and, for ratios, the median of the per-round pairs.
#
# Measured per tool run (see bench/measure.py for the mechanics):
#   tool CPU    user+sys of the tool's whole process tree (wait4 rusage)
#   BPF CPU     run_time_ns of the tool's BPF programs (kernel.bpf_stats_enabled=1).
#               It runs in the sampled task's context, so it is not in "tool CPU".
#   total       tool CPU + BPF CPU. perf's own in-kernel sampling work (callchain
#               walk, ring-buffer copy) also runs in the workload's context but
#               has no counter like bpf_stats: it is in no figure, so perf's
#               total is understated and scorch/perf ratios are conservative.
#   peak RSS    largest RSS of any one process of the tree (for perf, the max
#               over record, script, collapse and flamegraph)
#   start-up    time from exec to the start of sampling:
#               scorch, bpftrace: first BPF program fd seen in the tree (polled
#                       every 5 ms); the perf events are attached right after
#               perf:   its `sleep D` child first seen (perf execs it once the
#                       counters are enabled)
#   post-proc   time from the end of sampling to the written output
#               (= wall − start-up − D for scorch and bpftrace):
#               scorch: stop, symbolize, write the SVG
#               perf record alone: until "Captured and wrote" is printed, i.e.
#                       perf.data is complete (perf 6.1 then still waits up to
#                       1 s for its side-band thread's poll() before it exits;
#                       reported separately, in no figure)
#               perf pipeline: that + the script | collapse + flamegraph wall
#               bpftrace: print the map
#   samples     stacks collected (SVG root frame, perf record's count, map counts)
#
# Usage: bench/profile-overhead.sh          (as root)
#   D=10 R=3 SCORCH=target/release/scorch bench/profile-overhead.sh
# Writes bench/results.md; scratch files go to bench/.work/.
set -euo pipefail

D=${D:-10}                      # sampling duration per tool run, seconds
R=${R:-3}                       # rounds; the median is reported
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCORCH=${SCORCH:-$ROOT/target/release/scorch}
WORK=$HERE/.work
TOOLS=$HERE/.tools
RESULT=$WORK/raw.jsonl          # one JSON line per measured command
MEASURE=(python3 "$HERE/measure.py" run --result "$RESULT")
export PATH=$TOOLS/bin:$PATH

WORKLOAD_PID=""
OLD_BPF_STATS=""

log() { printf '# %s\n' "$*" >&2; }

# ---------------------------------------------------------------- cleanup
# Runs on normal exit, error and Ctrl-C: kill the workload and any tool still
# running in our process group's children, restore the sysctl.
cleanup() {
    trap - EXIT INT TERM
    if [[ -n $WORKLOAD_PID ]]; then
        kill "$WORKLOAD_PID" 2>/dev/null || true
        wait "$WORKLOAD_PID" 2>/dev/null || true
    fi
    # a tool is measure.py's child: on Ctrl-C measure.py passes the signal on
    # and reaps it. Kill any direct child of ours still left, by pid only.
    local p
    for p in $(pgrep -P $$ 2>/dev/null || true); do kill "$p" 2>/dev/null || true; done
    if [[ -n $OLD_BPF_STATS ]]; then
        sysctl -q -w kernel.bpf_stats_enabled="$OLD_BPF_STATS" || true
    fi
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# ---------------------------------------------------------------- setup
need_root() {
    [[ $(id -u) -eq 0 ]] || { echo "need root (BPF, perf_event, sysctl): run with sudo" >&2; exit 1; }
}

# Install what a fresh Debian machine lacks: /usr/bin/time is not needed
# (measure.py reads wait4 rusage itself); bpftool names the BPF programs.
install_deps() {
    local missing=()
    command -v bpftool >/dev/null || missing+=(bpftool)
    command -v perf >/dev/null || missing+=(linux-perf)
    command -v gcc >/dev/null || missing+=(gcc)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v inferno-collapse-perf >/dev/null || ! command -v inferno-flamegraph >/dev/null; then
        log "installing the inferno CLI into $TOOLS"
        cargo install --quiet inferno --root "$TOOLS"
    fi
    [[ -x $SCORCH ]] || { log "building scorch"; (cd "$ROOT" && cargo build --release -q -p scorch); }
}

start_workload() {
    gcc -O0 -fno-omit-frame-pointer -pthread -o "$WORK/busy" "$HERE/busy.c"
    "$WORK/busy" &
    WORKLOAD_PID=$!
    sleep 0.5
    kill -0 "$WORKLOAD_PID" || { echo "workload died" >&2; exit 1; }
}

enable_bpf_stats() {
    OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
    sysctl -q -w kernel.bpf_stats_enabled=1
}

# ---------------------------------------------------------------- tools
# Each function profiles the workload for $1 seconds at $2 Hz, round $3.
# The measured command is exactly the one a user would type.

run_scorch() {
    local d=$1 f=$2 rep=$3 out=$WORK/scorch-$2-$3
    "${MEASURE[@]}" --tag tool=scorch --tag freq="$f" --tag phase=run --tag rep="$rep" \
        --stderr "$out.err" --samples "svg:$out.svg" \
        -- "$SCORCH" profile -F "$f" -p "$WORKLOAD_PID" "$d" -o "$out.svg"
}

run_perf() {
    local d=$1 f=$2 rep=$3 out=$WORK/perf-$2-$3
    # sampling: perf record until `sleep D` exits
    "${MEASURE[@]}" --tag tool=perf --tag freq="$f" --tag phase=record --tag rep="$rep" \
        --stderr "$out.record.err" --mark 'stderr:Captured and wrote' --comm sleep \
        --samples "perfrecord:$out.record.err" \
        -- perf record -F "$f" -g -p "$WORKLOAD_PID" -o "$out.data" -- sleep "$d"
    # post-processing: the usual flame graph pipeline, measured as one tree
    "${MEASURE[@]}" --tag tool=perf --tag freq="$f" --tag phase=post --tag rep="$rep" \
        --stderr "$out.post.err" \
        -- bash -c 'set -o pipefail
            perf script -i "$1" | inferno-collapse-perf > "$2" && inferno-flamegraph "$2" > "$3"' \
        _ "$out.data" "$out.folded" "$out.svg"
}

run_bpftrace() {
    local d=$1 f=$2 rep=$3 out=$WORK/bpftrace-$2-$3
    # interval:s:D exits D seconds after attaching; the map prints on exit
    # (stdout to a file: its symbolized stacks are bpftrace's output)
    "${MEASURE[@]}" --tag tool=bpftrace --tag freq="$f" --tag phase=run --tag rep="$rep" \
        --stdout "$out.txt" --stderr "$out.err" --samples "bpftrace:$out.txt" \
        -- bpftrace -e "profile:hz:$f /pid == $WORKLOAD_PID/ { @[kstack, ustack, comm] = count(); }
                        interval:s:$d { exit(); }"
}

# One round: every tool once, in a fixed order.
round() {
    local d=$1 rep=$2
    run_scorch "$d" 49 "$rep"
    run_scorch "$d" 999 "$rep"
    run_perf "$d" 49 "$rep"
    run_perf "$d" 999 "$rep"
    if command -v bpftrace >/dev/null; then
        run_bpftrace "$d" 49 "$rep"
    fi
}

# ---------------------------------------------------------------- main
main() {
    need_root
    mkdir -p "$WORK"
    rm -f "$WORK"/*
    install_deps
    command -v bpftrace >/dev/null || log "bpftrace not installed: skipping the bpftrace row (apt-get install bpftrace)"
    # others may rebuild target/release while we run: profile with a copy
    cp "$SCORCH" "$WORK/scorch" && SCORCH=$WORK/scorch
    start_workload
    enable_bpf_stats

    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    log "warm-up round (1 s each, not counted: page cache, perf's build-id cache)"
    round 1 warmup
    : > "$RESULT"
    local rep
    for ((rep = 1; rep <= R; rep++)); do
        log "round $rep/$R (D=${D}s per tool)"
        round "$D" "$rep"
    done

    {
        echo "## scorch profile overhead vs perf and bpftrace"
        echo
        echo "machine: $(nproc) CPUs, Linux $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME");" \
             "workload: bench/busy.c, 2 busy threads (-O0 -fno-omit-frame-pointer)"
        echo "load average (1/5/15 min, incl. our 2 busy threads) before: $LOAD_BEFORE, after:" \
             "$(cut -d' ' -f1-3 /proc/loadavg); other load shows as fewer samples than 2×F×D"
        echo "D=${D}s sampling per run, R=$R rounds (medians); $(perf --version);" \
             "$(bpftrace --version 2>/dev/null || echo 'no bpftrace');" \
             "scorch: target/release binary, work tree at $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
        echo
        python3 "$HERE/measure.py" report --result "$RESULT" --duration "$D"
    } | tee "$HERE/results.md"
}

main "$@"
