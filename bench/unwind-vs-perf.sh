#!/usr/bin/env bash
# bench/unwind-vs-perf.sh — how complete and how cheap are scorch's user
# stacks without frame pointers, against perf's DWARF unwinding, measured in
# the same run?
#
# Workloads (no frame pointers anywhere, libc included):
#   qsort   tests/workloads/qsort_spin.c, gcc -O2 -fomit-frame-pointer:
#           main -> sort_all -> qsort (libc) -> ... -> compare, which spins
#   rust    tests/workloads/burn_rs.rs, rustc -O without frame pointers
#           (the prebuilt std has none either)
# Each workload runs for the whole benchmark; on it, in turn:
#   scorch profile -U -f --unwind fp | dwarf | auto -p PID D
#   perf record --call-graph dwarf -p PID -- sleep D, then perf script
#
# Measured per tool run (bench/measure.py):
#   complete   share of samples whose outermost user frame is _start, or a
#              thread's entry (clone3/start_thread)
#   CPU/sample (tool user+sys + BPF run time) / samples. BPF time is
#              run_time_ns of the tool's programs (kernel.bpf_stats_enabled=1);
#              it runs in the workload's context. perf's in-kernel work (copying
#              8 KiB of stack per sample) has no such counter and is in no
#              figure, so perf's cost is understated and ratios are conservative.
#              perf's user+sys includes perf script, which does the unwinding.
#   bytes      perf: perf.data. scorch: the rows of the tables of the files the
#              workload maps (what the unwinder reads), and the memlock of all
#              its BPF maps (allocated, mostly preallocated capacity).
#   tables     time to build the tables of libc, of a large library
#              (libLLVM if installed) and of the scorch binary as the sampler
#              does (count, then stream), the counting walk's share, and the
#              peak of heap bytes the build held (bpf/unwind/examples/table_build.rs).
#
# Usage: bench/unwind-vs-perf.sh            (as root)
#   D=5 F=499 SCORCH=target/release/scorch bench/unwind-vs-perf.sh
# Scratch files go to bench/.work/unwind/.
set -euo pipefail

D=${D:-5}                       # seconds per tool run
F=${F:-499}                     # sampling frequency, Hz
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCORCH=${SCORCH:-$ROOT/target/release/scorch}
TABLE_BUILD=${TABLE_BUILD:-$ROOT/target/release/examples/table_build}
WORK=$HERE/.work/unwind
RESULT=$WORK/raw.jsonl
MEASURE=(python3 "$HERE/measure.py" run --result "$RESULT")

WORKLOAD_PID=""
OLD_BPF_STATS=""

log() { printf '# %s\n' "$*" >&2; }

cleanup() {
    trap - EXIT INT TERM
    if [[ -n $WORKLOAD_PID ]]; then
        kill "$WORKLOAD_PID" 2>/dev/null || true
        wait "$WORKLOAD_PID" 2>/dev/null || true
    fi
    if [[ -n $OLD_BPF_STATS ]]; then
        sysctl -q -w kernel.bpf_stats_enabled="$OLD_BPF_STATS" || true
    fi
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || { echo "need root (BPF, perf_event, sysctl): run with sudo" >&2; exit 1; }
for tool in gcc rustc perf python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
[[ -x $SCORCH ]] || { echo "$SCORCH is missing: cargo build --release -p scorch" >&2; exit 1; }
[[ -x $TABLE_BUILD ]] || {
    echo "$TABLE_BUILD is missing: cargo build --release -p scorch-unwind --example table_build" >&2
    exit 1
}
rm -rf "$WORK"
mkdir -p "$WORK"
OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q -w kernel.bpf_stats_enabled=1

log "building the workloads"
gcc -O2 -fomit-frame-pointer -o "$WORK/qsort" "$ROOT/tests/workloads/qsort_spin.c"
rustc -C opt-level=3 -o "$WORK/rust" "$ROOT/tests/workloads/burn_rs.rs"

# Starts workload $1, waits for its "ready", sets WORKLOAD_PID.
start_workload() {
    local fifo=$WORK/ready.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    "$WORK/$1" > "$fifo" &
    WORKLOAD_PID=$!
    read -r _ < "$fifo"
    # keep the pipe drained: the workload prints nothing more
    cat "$fifo" > /dev/null &
}

stop_workload() {
    kill "$WORKLOAD_PID" 2>/dev/null || true
    wait "$WORKLOAD_PID" 2>/dev/null || true
    WORKLOAD_PID=""
}

for workload in qsort rust; do
    start_workload "$workload"
    log "$workload: pid $WORKLOAD_PID"
    # The tables of the files it maps: what the unwinder reads for it.
    awk '$2 ~ /x/ && $6 ~ /^\// { print $6 }' "/proc/$WORKLOAD_PID/maps" | sort -u |
        xargs "$TABLE_BUILD" > "$WORK/$workload.tables"
    for mode in fp dwarf auto; do
        log "$workload: scorch --unwind $mode"
        "${MEASURE[@]}" --tag workload="$workload" --tag tool="scorch-$mode" \
            --stdout "$WORK/$workload-$mode.folded" --stderr "$WORK/$workload-$mode.err" -- \
            "$SCORCH" profile -F "$F" -U -f --unwind "$mode" -p "$WORKLOAD_PID" "$D"
    done
    log "$workload: perf record --call-graph dwarf"
    "${MEASURE[@]}" --tag workload="$workload" --tag tool=perf-record \
        --stderr "$WORK/$workload-perf.err" -- \
        perf record -F "$F" --call-graph dwarf -p "$WORKLOAD_PID" -o "$WORK/$workload.perf.data" -- sleep "$D"
    log "$workload: perf script"
    "${MEASURE[@]}" --tag workload="$workload" --tag tool=perf-script \
        --stdout "$WORK/$workload.perf.txt" --stderr "$WORK/$workload-script.err" -- \
        perf script -i "$WORK/$workload.perf.data" -F ip,sym
    stop_workload
done

log "table build times"
large=$(ls /usr/lib/x86_64-linux-gnu/libLLVM-*.so.1 2>/dev/null | tail -n 1 || true)
libc=$(ldd "$WORK/qsort" | awk '/libc\.so/ { print $3 }')
"$TABLE_BUILD" "$libc" ${large:+"$large"} "$SCORCH" > "$WORK/build.tables"

python3 - "$WORK" "$D" "$F" <<'PY'
import json, os, sys

work, duration, freq = sys.argv[1], sys.argv[2], sys.argv[3]
records = [json.loads(l) for l in open(f"{work}/raw.jsonl")]
ENTRIES = {"_start", "clone3", "__clone3", "start_thread"}


def scorch_stacks(path):
    """(samples, complete) of a folded user-stack profile."""
    total = complete = 0
    for line in open(path, errors="replace"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        if len(frames) > 1 and frames[1] in ENTRIES:
            complete += int(count)
    return total, complete


def perf_stacks(path):
    """(samples, complete) of `perf script -F ip,sym`: blank-line separated
    samples, innermost frame first."""
    total = complete = 0
    block = []
    for line in list(open(path, errors="replace")) + ["\n"]:
        if line.strip():
            block.append(line.split())
            continue
        if block:
            total += 1
            outer = block[-1]
            if len(outer) > 1 and outer[1] in ENTRIES:
                complete += 1
        block = []
    return total, complete


def tables_bytes(path):
    return sum(int(l.split("\t")[2]) for l in open(path) if l.strip())


print(f"## Unwinding: scorch vs perf --call-graph dwarf ({duration} s at {freq} Hz per run)\n")
print("| workload | tool | samples | complete | CPU/sample (us) | BPF/sample (us) | bytes |")
print("|---|---|---|---|---|---|---|")
summary = {}
for workload in ("qsort", "rust"):
    rec = {r["tool"]: r for r in records if r["workload"] == workload}
    rows = {}
    for mode in ("fp", "dwarf", "auto"):
        r = rec[f"scorch-{mode}"]
        total, complete = scorch_stacks(f"{work}/{workload}-{mode}.folded")
        cpu_ns = (r["user_ms"] + r["sys_ms"]) * 1e6 + r["bpf_ns"]
        bpf = r["bpf_ns"] / max(r["bpf_cnt"], 1)
        table = tables_bytes(f"{work}/{workload}.tables") if mode != "fp" else 0
        rows[f"scorch {mode}"] = (total, complete, cpu_ns / max(total, 1), bpf, table, r["map_bytes"])
    rec_p, script = rec["perf-record"], rec["perf-script"]
    total, complete = perf_stacks(f"{work}/{workload}.perf.txt")
    cpu_ns = sum((r["user_ms"] + r["sys_ms"]) * 1e6 for r in (rec_p, script))
    size = os.path.getsize(f"{work}/{workload}.perf.data")
    rows["perf dwarf"] = (total, complete, cpu_ns / max(total, 1), None, size, None)
    for tool, (total, complete, cpu, bpf, size, maps) in rows.items():
        share = 100.0 * complete / total if total else 0.0
        bpf_s = f"{bpf / 1e3:.1f}" if bpf is not None else "-"
        size_s = f"{size / 1e6:.2f} MB" + (f" (maps {maps / 1e6:.1f} MB)" if maps else "")
        print(f"| {workload} | {tool} | {total} | {share:.1f}% | {cpu / 1e3:.1f} | {bpf_s} | {size_s} |")
    summary[workload] = rows

print("\nRatios against perf in the same run (scorch dwarf / perf):\n")
print("| workload | complete share | CPU per sample | bytes (tables) | bytes (maps allocated) |")
print("|---|---|---|---|---|")
for workload, rows in summary.items():
    s, p = rows["scorch dwarf"], rows["perf dwarf"]
    share = lambda r: r[1] / r[0] if r[0] else 0.0
    ratio = lambda a, b: f"{a / b:.3f}" if b else "-"
    print(f"| {workload} | {ratio(share(s), share(p))} | {ratio(s[2], p[2])} | {ratio(s[4], p[4])} | {ratio(s[5], p[4])} |")

print("\nTable build as the sampler does it (scorch-unwind, one thread: a walk")
print("counting the rows, a second streaming them out in batches of 4096):\n")
print("| file | rows | bytes in the row map | ms | of which counting | peak heap |")
print("|---|---|---|---|---|---|")
for line in open(f"{work}/build.tables"):
    path, rows, size, ms, count_ms, peak = line.rstrip("\n").split("\t")
    print(f"| {os.path.basename(path)} | {rows} | {int(size) / 1e6:.2f} MB | {ms} | {count_ms} | {int(peak) / 2**20:.1f} MiB |")
PY
