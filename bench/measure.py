#!/usr/bin/env python3
"""Measurement helper for bench/profile-overhead.sh.

Two sub-commands:

  run    Run one command (a profiler, or a post-processing pipeline under
         `bash -c`) and append one JSON line describing its cost:
           wall_ms    wall-clock time from fork to reap
           user_ms, sys_ms, maxrss_kb
                      wait4() rusage of the command: its own CPU time plus the
                      CPU time of every descendant it reaped (a whole pipeline
                      under bash -c), and the largest RSS any one of them had
           bpf_ns, bpf_cnt, progs
                      run_time_ns / run_cnt of every BPF program that a process
                      of the command's tree holds an fd to, read from
                      /proc/PID/fdinfo (needs kernel.bpf_stats_enabled=1).
                      BPF programs attached to perf events run in the
                      interrupted task's context, so this time is charged to
                      the *workload*, not to the tool: it is invisible in the
                      rusage above and must be added separately. The values
                      are polled every POLL_S (5 ms) and the last reading per program
                      is kept, i.e. the value shortly before the tool closed it.
           map_bytes  memlock (allocated bytes) of every BPF map the tree held
           mark_ms    (with --mark STREAM:REGEX) ms from start until a line of
                      the command's stdout or stderr first matched
           prog_ms    ms from start until a perf_event BPF program fd was first seen in
                      the tree (+ at most one 5 ms poll): sampling starts right after
           comm_ms    (with --comm NAME) ms until a process named NAME was
                      first seen in the tree (perf's `sleep D` workload)
           samples    (with --samples KIND:FILE) samples in the tool's output

  report Read the JSON lines of a run and print the markdown tables.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

POLL_S = 0.005   # re-read known processes (start-up detection, BPF stats)
RESCAN_S = 0.1  # rescan /proc for new descendants


# ---------------------------------------------------------------- run

def process_tree(root):
    """{pid: comm} of root and all its live descendants (scan of /proc/*/stat)."""
    parent, comm = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the comm field may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(name)] = int(fields[1])
        comm[int(name)] = stat[stat.find("(") + 1:stat.rfind(")")]
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return {p: comm.get(p, "") for p in tree}


PERF_EVENT_PROG = 7  # BPF_PROG_TYPE_PERF_EVENT: the samplers' programs


def bpf_progs_of(pid):
    """{prog_id: (run_time_ns, run_cnt, prog_type)} for the BPF program fds of pid."""
    progs = {}
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return progs
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        prog_id = int(info.get("prog_id", "0"))
        progs[prog_id] = (int(info.get("run_time_ns", "0")), int(info.get("run_cnt", "0")),
                          int(info.get("prog_type", "0")))
    return progs


def bpf_maps_of(pid):
    """{map_id: memlock bytes} for the BPF map fds of pid."""
    maps = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return maps
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if "map_id" in info:
            maps[int(info["map_id"])] = int(info.get("memlock", "0"))
    return maps


def prog_name(prog_id):
    """The program's name as bpftool shows it ("?" if bpftool can't tell);
    asked while the program is alive, i.e. during the run."""
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                             capture_output=True, text=True, timeout=5).stdout
        return json.loads(out).get("name", "?")
    except (OSError, ValueError, subprocess.SubprocessError):
        return "?"


def count_samples(kind, path):
    """Samples in a tool's output file: svg (root frame title), bpftrace (sum
    of the printed map's counts), perfrecord (perf record's own "(N samples)"
    line on stderr; inferno's folded counts from perf are period-weighted)."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    if kind == "svg":
        m = re.search(r"<title>all \(([\d,]+) samples?", text)
        return int(m.group(1).replace(",", "")) if m else None
    if kind == "perfrecord":
        m = re.search(r"\((\d+) samples\)", text)
        return int(m.group(1)) if m else None
    if kind == "bpftrace":
        return sum(int(n) for n in re.findall(r"\]: (\d+)$", text, re.M))
    raise SystemExit(f"unknown sample kind {kind}")


def cmd_run(a):
    stdout = open(a.stdout, "wb") if a.stdout else subprocess.DEVNULL
    stderr = open(a.stderr, "wb") if a.stderr else subprocess.DEVNULL
    mark_stream, mark_rx = (a.mark.split(":", 1) + [""])[:2] if a.mark else (None, "")
    start = time.monotonic()
    proc = subprocess.Popen(
        a.cmd,
        stdout=subprocess.PIPE if mark_stream == "stdout" else stdout,
        stderr=subprocess.PIPE if mark_stream == "stderr" else stderr)
    mark = {}
    if a.mark:
        # copy that stream of the child to its file, noting when a line first
        # matches (the tool's own "sampling started/data written" message)
        rx = re.compile(mark_rx.encode())
        src, dst = (proc.stdout, stdout) if mark_stream == "stdout" else (proc.stderr, stderr)

        def pump():
            for line in src:
                if "t" not in mark and rx.search(line):
                    mark["t"] = time.monotonic()
                dst.write(line)
            dst.flush()
        pumper = threading.Thread(target=pump, daemon=True)
        pumper.start()

    # A poller thread watches the tree while the main thread blocks in wait4,
    # so the end time is exact. Every POLL_S it re-reads the known processes
    # (comm, BPF prog fds); every RESCAN_S it rescans /proc for new ones.
    last = {}   # prog_id -> (run_time_ns, run_cnt, type), last reading seen
    maps = {}   # map_id -> memlock bytes
    names = {}  # prog_id -> name
    seen = {}   # "prog"/"comm" -> first time seen
    done = threading.Event()

    def poll():
        tree, rescan = {}, 0.0
        while not done.is_set():
            now = time.monotonic()
            if now >= rescan:
                tree, rescan = process_tree(proc.pid), now + RESCAN_S
            for pid in list(tree):
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        tree[pid] = f.read().strip()
                except OSError:
                    continue
                last.update(bpf_progs_of(pid))
                maps.update(bpf_maps_of(pid))
            now = time.monotonic()
            # start of sampling: a perf_event program (libbpf's feature probes,
            # loaded and closed at start-up, are socket filters: not these)
            if "prog" not in seen and any(v[2] == PERF_EVENT_PROG for v in last.values()):
                seen["prog"] = now
            if a.comm and "comm" not in seen and a.comm in tree.values():
                seen["comm"] = now
            for prog_id in last.keys() - names.keys():
                names[prog_id] = prog_name(prog_id)
            time.sleep(POLL_S)

    # Ctrl-C / kill: pass the signal on to the tool (so it stops and cleans
    # up its probes), still reap it, then leave without writing a record
    interrupted = []

    def forward(sig, _frame):
        interrupted.append(sig)
        try:
            proc.send_signal(sig)
        except OSError:
            pass
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, status, ru = os.wait4(proc.pid, 0)  # retried after a handler (PEP 475)
    end = time.monotonic()
    done.set()
    poller.join(5)
    if a.mark:
        pumper.join(5)
    for f in (stdout, stderr):
        if f is not subprocess.DEVNULL:
            f.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if interrupted:
        return 128 + interrupted[0]

    rec = dict(tag.split("=", 1) for tag in a.tag)
    rec.update(
        exit=proc.returncode,
        wall_ms=round((end - start) * 1e3, 1),
        user_ms=round(ru.ru_utime * 1e3, 1),
        sys_ms=round(ru.ru_stime * 1e3, 1),
        maxrss_kb=ru.ru_maxrss,
        bpf_ns=sum(v[0] for v in last.values()),
        bpf_cnt=sum(v[1] for v in last.values()),
        progs=sorted({n for i, n in names.items() if last[i][1] > 0}),  # the ones that ran
        map_bytes=sum(maps.values()),
    )
    if "t" in mark:
        rec["mark_ms"] = round((mark["t"] - start) * 1e3, 1)
    for what, t in seen.items():
        rec[f"{what}_ms"] = round((t - start) * 1e3, 1)
    if a.samples:
        kind, path = a.samples.split(":", 1)
        rec["samples"] = count_samples(kind, path)
    with open(a.result, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def cmd_report(a):
    recs = [json.loads(l) for l in open(a.result) if l.strip()]
    D = float(a.duration) * 1e3

    # one "row instance" per (row, rep): the figures a table row is a median of
    rows = {}  # row key -> {rep: figures}

    def put(key, rep, **fig):
        rows.setdefault(key, {})[rep] = fig

    by = {}
    for r in recs:
        by[(r["tool"], r["freq"], r["phase"], r["rep"])] = r

    def cpu(r):
        return r["user_ms"] + r["sys_ms"]

    for (tool, freq, phase, rep), r in sorted(by.items()):
        if r.get("exit", 0) != 0:
            print(f"warning: {tool} F{freq} {phase} rep {rep} exited {r['exit']}", file=sys.stderr)
        # start-up: exec → sampling begins; post-proc: sampling ends → output
        # written, i.e. wall − start-up − D (the tools sample for D seconds
        # counted from their attach)
        if tool in ("scorch", "bpftrace"):
            # both: the first BPF program fd appears right before the perf
            # events are attached (for bpftrace after its LLVM compile; note
            # that bpftrace prints "Attaching N probes..." ~50 ms *before*
            # loading anything, so that message is not the start of sampling)
            t0 = r.get("prog_ms")
            put((tool, freq), rep, cpu=cpu(r), bpf=r["bpf_ns"] / 1e6, rss=r["maxrss_kb"],
                startup=t0, post=r["wall_ms"] - (t0 or 0) - D, samples=r.get("samples"),
                runs=r["bpf_cnt"], progs=r["progs"])
        elif tool == "perf" and phase == "record":
            post = by.get(("perf", freq, "post", rep))
            # perf record: sampling starts when its `sleep D` child is exec'd
            # and ends when it exits; perf.data is complete when perf prints
            # "Captured and wrote" (after the build-id pass over the samples).
            # exit_lag: how much longer the process lived (side-band thread join)
            t0 = r.get("comm_ms")
            done = r.get("mark_ms", r["wall_ms"])
            wind = done - (t0 or 0) - D
            put(("perf record", freq), rep, cpu=cpu(r), bpf=r["bpf_ns"] / 1e6,
                rss=r["maxrss_kb"], startup=t0, post=wind, exit_lag=r["wall_ms"] - done,
                samples=r.get("samples"), runs=r["bpf_cnt"])
            if post:
                # whole pipeline: record + script | collapse + flamegraph;
                # post-proc = record's wind-down + the script|collapse|flamegraph wall
                put(("perf pipeline", freq), rep, cpu=cpu(r) + cpu(post),
                    bpf=(r["bpf_ns"] + post["bpf_ns"]) / 1e6,
                    rss=max(r["maxrss_kb"], post["maxrss_kb"]), startup=t0,
                    post=wind + post["wall_ms"], script=post["wall_ms"],
                    samples=r.get("samples"), runs=r["bpf_cnt"])

    order = [("scorch", "49"), ("perf record", "49"), ("perf pipeline", "49"),
             ("bpftrace", "49"), ("scorch", "999"), ("perf record", "999"),
             ("perf pipeline", "999")]
    label = {"scorch": "scorch profile → svg",
             "perf record": "perf record (alone)",
             "perf pipeline": "perf record+script+collapse+flamegraph",
             "bpftrace": "bpftrace profile:hz map"}
    out = []
    out.append("| tool | F (Hz) | tool CPU ms | BPF CPU ms | total CPU ms | peak RSS MiB "
               "| start-up ms | post-proc ms | samples | BPF runs |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        if key not in rows:
            continue
        reps = rows[key].values()
        m = {f: med([x.get(f) for x in reps]) for f in ("cpu", "bpf", "rss", "startup", "post", "samples", "runs")}
        tot = med([x["cpu"] + x["bpf"] for x in reps])
        out.append(f"| {label[key[0]]} | {key[1]} | {fmt(m['cpu'])} | {fmt(m['bpf'], 1)} "
                   f"| {fmt(tot)} | {fmt(m['rss'] / 1024 if m['rss'] else None, 1)} "
                   f"| {fmt(m['startup'])} | {fmt(m['post'])} | {fmt(m['samples'])} | {fmt(m['runs'])} |")

    # ratios: median over reps of the paired ratio (same rep = same minute of
    # machine time, so drift cancels), scorch row over peer row at the same F
    out.append("")
    out.append("| ratio (median of per-run pairs) | F | total CPU | tool CPU | peak RSS | post-proc |")
    out.append("|---|---:|---:|---:|---:|---:|")

    def ratio(a_, b_, f):
        rs = []
        for rep, x in a_.items():
            y = b_.get(rep)
            if y is None:
                continue
            xv = x["cpu"] + x["bpf"] if f == "total" else x[f]
            yv = y["cpu"] + y["bpf"] if f == "total" else y[f]
            if xv is not None and yv:
                rs.append(xv / yv)
        return f"{med(rs):.2f}x" if rs else "–"

    for freq in ("49", "999"):
        s = rows.get(("scorch", freq))
        if not s:
            continue
        for peer in ("perf pipeline", "perf record", "bpftrace"):
            p = rows.get((peer, freq))
            if not p:
                continue
            name = {"perf pipeline": "scorch / perf (record+script+collapse+flamegraph)",
                    "perf record": "scorch / perf record alone",
                    "bpftrace": "scorch / bpftrace"}[peer]
            # perf record alone writes perf.data, not a flame graph: its
            # wind-down is near 0 and no fair denominator for post-processing
            post = "n/a" if peer == "perf record" else ratio(s, p, 'post')
            out.append(f"| {name} | {freq} | {ratio(s, p, 'total')} | {ratio(s, p, 'cpu')} "
                       f"| {ratio(s, p, 'rss')} | {post} |")

    # details that explain the figures
    out.append("")
    for key in (("scorch", "49"), ("bpftrace", "49")):
        if key in rows:
            progs = sorted({p for x in rows[key].values() for p in x.get("progs", [])})
            out.append(f"- BPF programs counted for {key[0]}: {', '.join(progs) or 'none'}")
    scr = {k[1]: fmt(med([x.get("script") for x in v.values()]))
           for k, v in rows.items() if k[0] == "perf pipeline"}
    if scr:
        out.append("- perf post-proc = perf record's wind-down (sampling end → \"Captured and wrote\", "
                   "incl. its build-id pass over perf.data) + the script|collapse + flamegraph wall; "
                   "that pipeline alone: " + ", ".join(f"{v} ms at F={k}" for k, v in sorted(scr.items())))
    lags = [x.get("exit_lag") for k, v in rows.items() if k[0] == "perf record" for x in v.values()]
    if lags:
        out.append(f"- perf record exits {fmt(med(lags))} ms (median) after printing \"Captured and "
                   f"wrote\": perf 6.1 joins its side-band thread, which sits in a 1000 ms poll(); "
                   f"this wait is in no post-proc figure above")
    print("\n".join(out))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="sub", required=True)
    r = sub.add_parser("run")
    r.add_argument("--result", required=True, help="JSON-lines file to append to")
    r.add_argument("--tag", action="append", default=[], help="key=value stored in the record")
    r.add_argument("--stdout")
    r.add_argument("--stderr")
    r.add_argument("--mark", help="stdout|stderr:REGEX: note when a line first matches")
    r.add_argument("--comm", help="note when a process of this name appears in the tree")
    r.add_argument("--samples", help="KIND:FILE with KIND svg|bpftrace|perfrecord")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("report")
    p.add_argument("--result", required=True)
    p.add_argument("--duration", required=True)
    a = ap.parse_args()
    if a.sub == "run":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        return cmd_run(a)
    return cmd_report(a)


if __name__ == "__main__":
    sys.exit(main())
