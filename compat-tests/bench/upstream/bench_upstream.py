#!/usr/bin/env python3
"""Measures our executable against an upstream C build of skynet with the same workloads.

usage: bench_upstream.py --upstream DIR --ours BIN --moddir DIR --echo-load BIN [--out DIR]
                         [--rounds N] [--label TEXT]

  --upstream DIR   an upstream build: DIR/skynet, DIR/lualib, DIR/service, DIR/cservice,
                   DIR/luaclib (the executable that runs as "A")
  --ours BIN       our executable ("B"), built with the Lua version of that tree
  --moddir DIR     our C bench modules (bench_flood.so, bench_pingpong.so; `make bmods`)
  --echo-load BIN  our load generator (cargo build --release -p compat-tests --bin echo_load)
  --out DIR        where results.tsv and table.md go (default target/bench-upstream)
  --rounds N       runs per side, alternating A B A B ... per benchmark (default 3)
  --label TEXT     how the upstream build is named in the outputs (default: the directory's
                   name and the Lua version of its 3rd/lua/lua.h)

Every benchmark is our own code: Lua services in this directory that `require "skynet"` from
the upstream tree's unchanged lualib/ (up_bench.lua, up_trivial.lua, up_sock_echo.lua) and the
C modules of compat-tests/bench. Both nodes get the same config (thread = 2, harbor = 0,
bootstrap = "snlua bootstrap", the tree's service/, lualib/ and loader) except for the C paths:
A finds its C services and Lua C modules in the tree's cservice/ and luaclib/; ours has them
built in, so its lua_cpath points at an empty directory and its cpath holds only the bench
modules (which were built once with our headers and are loaded by both).

Prints, per metric, `BENCH upstream.<metric>.A|B|ratio <value> <unit>` (A and B are medians
over the rounds, ratio is B/A), then a table. Writes <out>/results.tsv (one row per metric, the
single runs included) and <out>/table.md (the same table in Markdown).

Knobs (environment): BENCH_UP_SCALE [1] multiplies every count (spawn 2000, send 1e6,
call 2e5, timer 1e5, C benches 1e6 messages); BENCH_UP_SOCK_SECS [5] measuring window of the
socket bench (100 connections, 64-byte requests, 1 s warm-up); BENCH_UP_THREAD [2] the
config's thread; BENCH_UP_TIMEOUT [120] seconds before a node is killed;
BENCH_UP_ONLY a space-separated subset of benchmark names (spawn send call timer sock flood
pairs pingpong pingpong_noprof).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# metric -> (unit, "higher" or "lower" is better)
METRICS = [
    ("spawn", "services/s", "higher"),
    ("rss_per_service", "KiB", "lower"),
    ("kill", "services/s", "higher"),
    ("send", "msgs/s", "higher"),
    ("call", "calls/s", "higher"),
    ("timer_late_mean", "cs", "lower"),
    ("timer_late_max", "cs", "lower"),
    ("sock_echo_rps", "req/s", "higher"),
    ("sock_echo_cpu_per_req", "us", "lower"),
    ("c_flood", "msgs/s", "higher"),
    ("c_pingpong_8pairs", "msgs/s", "higher"),
    ("c_pingpong", "msgs/s", "higher"),
    ("c_pingpong_noprof", "msgs/s", "higher"),
]
UNITS = {m: (u, b) for m, u, b in METRICS}

PREFIX = re.compile(r"^\[:[0-9a-fA-F]+\] ")


def die(msg):
    print("bench_upstream: " + msg, file=sys.stderr)
    sys.exit(2)


class Node:
    """One skynet process with its output collected line by line."""

    def __init__(self, binary, cfg, cwd):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [binary, cfg], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = PREFIX.sub("", raw.decode("utf-8", "replace").rstrip("\n"))
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, rx, timeout):
        """The first match of rx in the output, or None on timeout or exit."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for ln in self.lines[seen:]:
                    m = re.search(rx, ln)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    return None
                self.cond.wait(min(left, 0.2))

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.reader.join(2)

    def tail(self, n=15):
        with self.cond:
            return "\n".join(self.lines[-n:])


class Runner:
    def __init__(self, args):
        self.args = args
        self.scale = float(os.environ.get("BENCH_UP_SCALE", "1"))
        self.sock_secs = float(os.environ.get("BENCH_UP_SOCK_SECS", "5"))
        self.thread = int(os.environ.get("BENCH_UP_THREAD", "2"))
        self.timeout = float(os.environ.get("BENCH_UP_TIMEOUT", "120"))
        self.tmp = tempfile.mkdtemp(prefix="skynet-benchup.")
        self.empty = os.path.join(self.tmp, "no-luaclib")
        os.mkdir(self.empty)
        self.seq = 0

    def count(self, n):
        return max(1, int(n * self.scale))

    def config(self, side, extra):
        up = self.args.upstream
        mods = self.args.moddir
        if side == "A":
            cpath = "%s/?.so;%s/cservice/?.so" % (mods, up)
            lua_cpath = "%s/luaclib/?.so" % up
        else:
            cpath = "%s/?.so" % mods
            lua_cpath = "%s/?.so" % self.empty
        text = [
            "-- written by compat-tests/bench/upstream/bench_upstream.py (side %s)" % side,
            'root = "%s/"' % up,
            "thread = %d" % self.thread,
            "harbor = 0",
            'cpath = "%s"' % cpath,
            'lua_cpath = "%s"' % lua_cpath,
            'luaservice = root.."service/?.lua;%s/?.lua"' % HERE,
            'lualoader = root.."lualib/loader.lua"',
            'lua_path = root.."lualib/?.lua;"..root.."lualib/?/init.lua"',
        ]
        for k, v in extra.items():
            text.append('%s = "%s"' % (k, v))
        self.seq += 1
        path = os.path.join(self.tmp, "%03d-%s.config" % (self.seq, side))
        with open(path, "w") as f:
            f.write("\n".join(text) + "\n")
        return path

    def binary(self, side):
        return os.path.join(self.args.upstream, "skynet") if side == "A" else self.args.ours

    def start(self, side, extra):
        return Node(self.binary(side), self.config(side, extra), self.tmp)

    def lua(self, side, mode, n):
        node = self.start(side, {"bootstrap": "snlua bootstrap", "start": "up_bench",
                                 "bench_mode": mode, "bench_n": n})
        try:
            if not node.wait_for(r"^BENCHUP_DONE$", self.timeout):
                raise RuntimeError("%s: no result\n%s" % (mode, node.tail()))
            out = {}
            for ln in node.lines:
                m = re.match(r"^BENCHUP (\S+) (\S+) \S+$", ln)
                if m:
                    out[m.group(1)] = float(m.group(2))
            return out
        finally:
            node.stop()

    def cmod(self, side, name, boot, metric=None, extra=None):
        node = self.start(side, dict({"bootstrap": boot}, **(extra or {})))
        try:
            m = node.wait_for(r"^BENCH %s (\S+) msgs/s$" % re.escape(name), self.timeout)
            if not m:
                raise RuntimeError("%s: no result\n%s" % (name, node.tail()))
            return {metric or name: float(m.group(1))}
        finally:
            node.stop()

    def sock(self, side):
        node = self.start(side, {"bootstrap": "snlua bootstrap", "start": "up_sock_echo"})
        try:
            m = node.wait_for(r"^LISTEN \S+ (\d+)$", 20)
            if not m:
                raise RuntimeError("sock: the server did not report its port\n" + node.tail())
            cmd = [self.args.echo_load, "--port", m.group(1), "--conns", "100",
                   "--secs", str(self.sock_secs), "--size", "64", "--pid", str(node.proc.pid)]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=self.sock_secs + 40)
            text = r.stdout.decode()
            if r.returncode != 0:
                raise RuntimeError("sock: echo_load failed: %s\n%s" % (r.stderr.decode(), node.tail()))
            fields = dict(re.findall(r"(\w+)=(\S+)", text))
            reqs = float(fields["reqs"])
            cpu = float(fields["cpu_s"])
            if reqs <= 0:
                raise RuntimeError("sock: no request completed")
            return {"sock_echo_rps": float(fields["rps"]),
                    "sock_echo_cpu_per_req": cpu / reqs * 1e6}
        finally:
            node.stop()

    def benches(self):
        n = self.count
        return [
            ("spawn", lambda s: self.lua(s, "spawn", n(2000))),
            ("send", lambda s: self.lua(s, "send", n(1000000))),
            ("call", lambda s: self.lua(s, "call", n(200000))),
            ("timer", lambda s: self.lua(s, "timer", n(100000))),
            ("sock", self.sock),
            ("flood", lambda s: self.cmod(s, "c_flood", "bench_flood %d 1000" % n(1000000))),
            ("pairs", lambda s: self.cmod(s, "c_pingpong_8pairs",
                                          "bench_pingpong 8 %d" % n(1000000))),
            ("pingpong", lambda s: self.cmod(s, "c_pingpong", "bench_pingpong 1 %d" % n(1000000))),
            # The same with `profile = false` (no per-message clock reads on either side).
            ("pingpong_noprof", lambda s: self.cmod(s, "c_pingpong", "bench_pingpong 1 %d"
                                                    % n(1000000), "c_pingpong_noprof",
                                                    {"profile": "false"})),
        ]


def lua_version(upstream):
    try:
        with open(os.path.join(upstream, "3rd", "lua", "lua.h")) as f:
            h = f.read()
    except OSError:
        return None
    parts = []
    for key in ("MAJOR", "MINOR", "RELEASE"):
        m = re.search(r'#define LUA_VERSION_%s_N\s+(\d+)' % key, h) or \
            re.search(r'#define LUA_VERSION_%s\s+"(\d+)"' % key, h)
        if not m:
            break
        parts.append(m.group(1))
    return ".".join(parts) if len(parts) >= 2 else None


def fmt(v):
    if v != v:  # nan
        return "-"
    if v == int(v) and abs(v) < 1e15:
        return "%d" % v
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--ours", required=True)
    p.add_argument("--moddir", required=True)
    p.add_argument("--echo-load", required=True)
    p.add_argument("--out", default="target/bench-upstream")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--label")
    args = p.parse_args()
    args.upstream = os.path.abspath(args.upstream)
    args.ours = os.path.abspath(args.ours)
    args.moddir = os.path.abspath(args.moddir)
    args.echo_load = os.path.abspath(args.echo_load)
    for d in ("lualib", "service", "cservice", "luaclib"):
        if not os.path.isdir(os.path.join(args.upstream, d)):
            die("%s has no %s/ (UPSTREAM must be a built upstream tree)" % (args.upstream, d))
    for f in (os.path.join(args.upstream, "skynet"), args.ours, args.echo_load):
        if not os.access(f, os.X_OK):
            die("%s is not executable" % f)
    for m in ("bench_flood.so", "bench_pingpong.so"):
        if not os.path.isfile(os.path.join(args.moddir, m)):
            die("no %s in %s (make bmods)" % (m, args.moddir))
    luav = lua_version(args.upstream)
    label = args.label or "%s (Lua %s)" % (os.path.basename(args.upstream), luav or "?")

    runner = Runner(args)
    only = os.environ.get("BENCH_UP_ONLY", "").split()
    runs = {m: {"A": [], "B": []} for m, _, _ in METRICS}
    failed = []
    started = time.monotonic()
    try:
        for name, bench in runner.benches():
            if only and name not in only:
                continue
            for r in range(args.rounds):
                for side in ("A", "B"):
                    t = time.monotonic()
                    try:
                        res = bench(side)
                    except (RuntimeError, KeyError, ValueError, subprocess.TimeoutExpired) as e:
                        print("bench_upstream: %s round %d side %s FAILED: %s"
                              % (name, r + 1, side, e), file=sys.stderr)
                        failed.append("%s/%s" % (name, side))
                        continue
                    for k, v in res.items():
                        if k in runs:
                            runs[k][side].append(v)
                    print("bench_upstream: %s round %d %s (%.1fs): %s" % (
                        name, r + 1, side, time.monotonic() - t,
                        " ".join("%s=%s" % (k, fmt(v)) for k, v in sorted(res.items()))),
                        file=sys.stderr)
    finally:
        shutil.rmtree(runner.tmp, ignore_errors=True)

    rows = []
    for m, unit, better in METRICS:
        a, b = runs[m]["A"], runs[m]["B"]
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        ratio = mb / ma if ma != 0 else float("nan")
        rows.append((m, unit, better, ma, mb, ratio, a, b))
        print("BENCH upstream.%s.A %s %s" % (m, fmt(ma), unit))
        print("BENCH upstream.%s.B %s %s" % (m, fmt(mb), unit))
        print("BENCH upstream.%s.ratio %s B/A" % (m, fmt(ratio)))

    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = ["| metric | unit | better | A: upstream %s | B: ours | B/A |" % label,
            "|---|---|---|---:|---:|---:|"]
    table = head + ["| %s | %s | %s | %s | %s | %s |" % (m, u, b, fmt(ma), fmt(mb), fmt(r))
                    for m, u, b, ma, mb, r, _, _ in rows]
    print()
    print("upstream: %s, %s; A = %s, B = %s; medians of %d runs each, %s"
          % (label, args.upstream, os.path.join(args.upstream, "skynet"), args.ours,
             args.rounds, date))
    for ln in table:
        print(ln)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.tsv"), "w") as f:
        f.write("# upstream\t%s\n# date\t%s\n# rounds\t%d\n# scale\t%g\n# thread\t%d\n"
                "# cpus\t%d\n" % (label, date, args.rounds, runner.scale, runner.thread,
                                  os.cpu_count() or 0))
        f.write("metric\tunit\tbetter\tA\tB\tratio\tA_runs\tB_runs\n")
        for m, u, b, ma, mb, r, ra, rb in rows:
            f.write("%s\t%s\t%s\t%r\t%r\t%r\t%s\t%s\n" % (
                m, u, b, ma, mb, r, ",".join(repr(x) for x in ra),
                ",".join(repr(x) for x in rb)))
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("\n".join(table) + "\n")
    print("bench_upstream: %d metrics, %.0fs, results in %s/results.tsv"
          % (len(rows), time.monotonic() - started, args.out), file=sys.stderr)
    if failed:
        print("bench_upstream: failed runs: " + " ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
