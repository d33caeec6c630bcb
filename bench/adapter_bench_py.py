#!/usr/bin/env python3
"""The Python adapter client's throughput on the cases bench/adapter_bench.c
uses, for a side-by-side comparison (a benchmark, not a test).

    adapter_bench_py.py [--cases DIR] [--count N] [--window W]...
                        [--min-time S] [--rounds R] [--env KEY=VALUE]...
                        [--exclude SUBSTRING]... -- PROGRAM [ARG...]

Same selection (every *.pkl under DIR, default corpus/cases, sorted by
path, minus paths containing an --exclude substring, repeated to N = 5000), same method (per window, default 1 and 32: a
fresh adapter, one untimed pass, best of R rounds of at least S seconds).
Driver: brine_oracle.client.Adapter, run_many(window=W) (window 1: run()).
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "oracle"))

from brine_oracle.client import Adapter  # noqa: E402


def select_cases(root, count, exclude):
    paths = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if f.endswith(".pkl") and not any(x in p for x in exclude):
                paths.append(p)
    paths.sort()
    if not paths:
        sys.exit("adapter_bench_py.py: no *.pkl under %s" % root)
    files = []
    for p in paths:
        with open(p, "rb") as f:
            files.append(f.read())
    return [files[i % len(files)] for i in range(count)], len(paths)


def drive(a, cases, window):
    if window <= 1:
        for c in cases:
            a.run(c)
    else:
        for _ in a.run_many(cases, window=window):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="corpus/cases")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--window", type=int, action="append")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no adapter command")
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    cases, distinct = select_cases(args.cases, args.count,
                                    args.exclude)
    print("python client throughput, cases/s (best of %d x >= %.1f s); %d "
          "cases (%d distinct *.pkl under %s, mean %.0f bytes); driver %s"
          % (args.rounds, args.min_time, len(cases), distinct, args.cases,
             sum(len(c) for c in cases) / float(len(cases)),
             sys.version.split()[0]))
    print("%-24s %7s %10s %6s" % ("adapter", "window", "cases/s", "fails"))
    for window in args.window or [1, 32]:
        a = Adapter(argv, timeout=60.0, env=env)
        try:
            a.start()
            drive(a, cases, window)
            best = 0.0
            for _ in range(args.rounds):
                n = 0
                t0 = time.perf_counter()
                while True:
                    drive(a, cases, window)
                    n += len(cases)
                    dt = time.perf_counter() - t0
                    if dt >= args.min_time:
                        break
                best = max(best, n / dt)
            print("%-24s %7d %10.0f %6d" % (a.name, window, best,
                                            a.crashes + a.timeouts))
            sys.stdout.flush()
        finally:
            a.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
