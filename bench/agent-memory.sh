#!/usr/bin/env bash
# Memory of `scorch agent` at its default flags on a host running typical
# services: a Python web server answering a client loop, a compiled
# two-thread busy service, a cron-like loop starting short-lived commands
# each second, and idle daemons. The agent profiles the whole host, so
# anything else running on the machine counts too (say what was).
#
# Prints, after D seconds: the agent's RSS (anonymous and file pages) and
# peak RSS, its PSS (file pages shared with the processes that map the same
# binaries count a share each: what the agent adds to the host), the BPF
# maps' memory (memlock in /proc/PID/fdinfo, each map once: from Linux 6.4,
# for maps that allocate as they are used it is what they hold), and
# the agent's total against the 64 MiB aim.
#
#   bench/agent-memory.sh            # D=60
set -euo pipefail
cd "$(dirname "$0")/.."
D=${D:-60}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cargo build --release -q -p scorch
gcc -O2 -pthread -o "$work/busy" bench/busy.c
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The services, started before the agent as on a host it is installed on.
mkdir "$work/site" && head -c 200000 /dev/urandom | base64 >"$work/site/index.html"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/site" >/dev/null 2>&1 & pids+=($!)
sleep 1
(while :; do curl -s "http://127.0.0.1:$port/index.html" >/dev/null; sleep 0.05; done) & pids+=($!)
"$work/busy" & pids+=($!)
(while :; do date >/dev/null; ls / >/dev/null; gzip -c /etc/services >/dev/null; sleep 1; done) & pids+=($!)
for _ in $(seq 10); do sleep 100000 & pids+=($!); done

target/release/scorch agent --data-dir "$work/store" --listen 127.0.0.1:0 2>"$work/agent.log" & agent=$!
pids+=("$agent")
sleep "$D"

kib() { awk -v k="$1" '$1 == k ":" {print $2}' "/proc/$agent/status"; }
map_bytes() {
  local fd
  for fd in /proc/$agent/fdinfo/*; do
    awk '/^map_id:/ {id = $2} /^memlock:/ {m = $2} END {if (id != "") print id, m}' "$fd" 2>/dev/null || true
  done | sort -u | awk '{s += $2} END {print s + 0}'
}
rss=$(kib VmRSS); hwm=$(kib VmHWM); anon=$(kib RssAnon); file=$(kib RssFile)
pss=$(awk '$1 == "Pss:" {print $2}' "/proc/$agent/smaps_rollup")
maps=$(map_bytes)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "scorch agent, default flags, whole host, $D s on $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| | MiB |"
echo "|---|---:|"
echo "| RSS (anonymous + file pages) | $(mib $((rss * 1024))) ($(mib $((anon * 1024))) + $(mib $((file * 1024)))) |"
echo "| peak RSS | $(mib $((hwm * 1024))) |"
echo "| PSS | $(mib $((pss * 1024))) |"
echo "| BPF maps | $(mib "$maps") |"
echo "| total: peak RSS + maps (aim: under 64) | $(mib $((hwm * 1024 + maps))) |"
echo "| total: PSS + maps | $(mib $((pss * 1024 + maps))) |"
grep 'unwind tables' "$work/agent.log" | tail -1 | grep -o 'rows_used=[0-9]*' || true
grep 'window written' "$work/agent.log" | tail -1 | grep -o 'symbol_cache_bytes=[0-9]*' || true
