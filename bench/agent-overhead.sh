#!/usr/bin/env bash
# CPU overhead of `scorch agent` at its default 19 Hz, whole host, on a busy
# machine: the agent's own CPU (user + sys of its process, all threads) plus
# the run time of its BPF programs, as a percentage of one core over D
# seconds. Also its peak RSS and the store's size.
#
#   bench/agent-overhead.sh            # D=60
#   D=300 bench/agent-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=${D:-60}
HZ=${HZ:-19}
work=$(mktemp -d)
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${busy:-}" ] && kill "$busy" 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cargo build --release -q -p scorch
gcc -O0 -fno-omit-frame-pointer -pthread -o "$work/busy" bench/busy.c
"$work/busy" & busy=$!
sysctl -qw kernel.bpf_stats_enabled=1

ticks=$(getconf CLK_TCK)
target/release/scorch agent -F "$HZ" --data-dir "$work/store" --listen 127.0.0.1:0 2>"$work/agent.log" & agent=$!
sleep 2 # start-up is not steady state

# utime + stime of the whole process (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
# run_time_ns of every BPF program the agent holds open.
bpf_ns() {
  local total=0 fd
  for fd in /proc/$agent/fdinfo/*; do
    local ns
    ns=$(awk '/^run_time_ns:/ {print $2}' "$fd" 2>/dev/null || true)
    [ -n "$ns" ] && total=$((total + ns))
  done
  echo "$total"
}

t0=$(cpu_ticks); b0=$(bpf_ns); s0=$(date +%s%N)
sleep "$D"
t1=$(cpu_ticks); b1=$(bpf_ns); s1=$(date +%s%N)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")

wall_ns=$((s1 - s0))
agent_ns=$(( (t1 - t0) * 1000000000 / ticks ))
bpf=$((b1 - b0))
pct() { awk -v n="$1" -v d="$wall_ns" 'BEGIN { printf "%.3f", 100 * n / d }'; }
echo "scorch agent -F $HZ, whole host, $D s on $(nproc) CPUs, 2 busy threads"
echo "| | % of one core |"
echo "|---|---:|"
echo "| agent process (user+sys) | $(pct "$agent_ns") |"
echo "| BPF program run time | $(pct "$bpf") |"
echo "| total | $(pct $((agent_ns + bpf))) |"
echo "peak RSS: $((rss / 1024)) MiB; store: $(du -sh "$work/store" | cut -f1)"
