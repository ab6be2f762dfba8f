#!/usr/bin/env bash
# bench/trace-startup.sh — how fast does `scorch trace` start, compared with
# bpftrace, measured in the same run?
#
# Two programs, run by each tool in turn (A B A B …, R rounds, after one
# warm-up round), so machine drift hits both alike:
#   begin:   BEGIN { exit() }
#   openat:  t:syscalls:sys_enter_openat { @[comm] = count(); } interval:ms:100 { exit() }
#
# Measured per run (wall clock from fork, in the Python driver below):
#   attached  until the tool says its probes are attached: the
#             `__BPFTRACE_NOTIFY_PROBES_ATTACHED` line (the variable is set
#             for both tools; both print it once every probe is attached),
#             else the `Attached N probes` line (bpftrace 0.17's
#             `Attaching N probes...` comes before it attaches anything)
#   exit      until the process has exited
#   peak RSS  the process's ru_maxrss (wait4)
# Reported: the median of each figure, and the median of the per-round
# ratios scorch/bpftrace. Also the binary sizes (bpftrace's with the shared
# libraries it loads that scorch does not need: LLVM, clang, BCC).
#
# Usage: bench/trace-startup.sh            (as root)
#   R=10 SCORCH=target/release/scorch BPFTRACE=/usr/bin/bpftrace bench/trace-startup.sh
# Prints a Markdown report; also writes it to bench/.work/trace-startup.md.
set -euo pipefail
cd "$(dirname "$0")/.."

R=${R:-10}
SCORCH=${SCORCH:-target/release/scorch}
BPFTRACE=${BPFTRACE:-/usr/bin/bpftrace}

if [[ $(id -u) != 0 ]]; then
    echo "bench/trace-startup.sh: tracing needs root" >&2
    exit 1
fi
if [[ ! -x $SCORCH ]]; then
    echo "bench/trace-startup.sh: no scorch binary at $SCORCH: run cargo build --release -p scorch" >&2
    exit 1
fi
if [[ ! -x $BPFTRACE ]]; then
    echo "bench/trace-startup.sh: no bpftrace at $BPFTRACE: apt-get install bpftrace" >&2
    exit 1
fi
mkdir -p bench/.work

# Shared libraries of bpftrace that scorch has no counterpart for.
bpftrace_libs=$(ldd "$BPFTRACE" | awk '/LLVM|clang|bcc|bpftrace/ {print $3}' | sort -u)

python3 - "$R" "$SCORCH" "$BPFTRACE" "$bpftrace_libs" <<'PY' | tee bench/.work/trace-startup.md
import os, select, statistics, subprocess, sys, time

rounds, scorch, bpftrace, libs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split()
programs = {
    "begin": "BEGIN { exit() }",
    "openat": "t:syscalls:sys_enter_openat { @[comm] = count(); } interval:ms:100 { exit() }",
}
tools = {"scorch": [scorch, "trace", "-e"], "bpftrace": [bpftrace, "-e"]}
NOTIFY, FALLBACK = b"__BPFTRACE_NOTIFY_PROBES_ATTACHED", b"Attached "

def run(argv):
    """(ms to attached, ms to exit, peak RSS MiB) of one run."""
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED="1")
    start = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seen, buffers, open_fds = {}, {}, {p.stdout.fileno(), p.stderr.fileno()}
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 30)
        if not ready:
            p.kill()
            raise SystemExit(f"{argv[0]} hung")
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            buffers[fd] = buffers.get(fd, b"") + chunk
            for marker in (NOTIFY, FALLBACK):
                if marker not in seen and marker in buffers[fd]:
                    seen[marker] = time.monotonic()
    _, status, usage = os.wait4(p.pid, 0)
    end = time.monotonic()
    attached = seen.get(NOTIFY, seen.get(FALLBACK))
    if attached is None or os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed (status {status}):\n{b''.join(buffers.values()).decode(errors='replace')}")
    return (attached - start) * 1e3, (end - start) * 1e3, usage.ru_maxrss / 1024

results = {(t, p): [] for t in tools for p in programs}
for round_ in range(rounds + 1):
    for prog, text in programs.items():
        for tool, argv in tools.items():
            figures = run(argv + [text])
            if round_ > 0:  # round 0 warms caches
                results[(tool, prog)].append(figures)

def med(xs):
    return statistics.median(xs)

print("## scorch trace start-up vs bpftrace\n")
print(f"machine: {os.cpu_count()} CPUs, Linux {os.uname().release}; "
      f"{subprocess.run([bpftrace, '--version'], capture_output=True, text=True).stdout.strip()}; "
      f"scorch: {scorch}; R={rounds} rounds after 1 warm-up, medians\n")
print("| program | tool | to attached ms | to exit ms | peak RSS MiB |")
print("|---|---|---:|---:|---:|")
for prog in programs:
    for tool in tools:
        rs = results[(tool, prog)]
        print(f"| {prog} | {tool} | {med([r[0] for r in rs]):.1f} | {med([r[1] for r in rs]):.1f} | {med([r[2] for r in rs]):.1f} |")
print()
print("| program | bpftrace/scorch: to attached | to exit | peak RSS |")
print("|---|---:|---:|---:|")
for prog in programs:
    pairs = list(zip(results[("bpftrace", prog)], results[("scorch", prog)]))
    ratio = lambda i: med([b[i] / s[i] for b, s in pairs])
    print(f"| {prog} | {ratio(0):.1f}x | {ratio(1):.1f}x | {ratio(2):.1f}x |")
print()
mib = lambda n: n / 2**20
size_s = os.path.getsize(scorch)
size_b = os.path.getsize(bpftrace)
size_libs = sum(os.path.getsize(os.path.realpath(l)) for l in libs)
print(f"binary size: scorch {mib(size_s):.1f} MiB (everything: profiler, agent, web, tracer); "
      f"bpftrace {mib(size_b):.1f} MiB + {mib(size_libs):.1f} MiB of LLVM/clang/BCC libraries "
      f"({', '.join(os.path.basename(l) for l in libs)})")
PY
