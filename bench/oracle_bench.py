#!/usr/bin/env python3
"""Oracle worker throughput through the adapter protocol (a benchmark, not a
test: nothing here asserts anything timed).

    bench/oracle_bench.py [--python PATH]... [--corpus DIR] [--count N]
                          [--protocols 0,2,4] [--unpickler c|py|c,py]
                          [--min-time S] [--rounds N] [--window N]
                          [--cpu N] [--no-pin] [--quick]

Driver: brine_oracle.client.Adapter (this process).  Worker:
``PY -m brine_oracle serve --unpickler U`` for every interpreter found
(``~/.pyenv/versions/3.*/bin/python3`` and ``/usr/bin/python3``, each by
absolute path; none is required; --python chooses instead).  Inputs: the
small-pN.pkls containers of bench/make_corpus.py (generated into a
temporary directory unless --corpus names one), one request per pickle.

Columns, in cases per second (best of --rounds rounds, each running full
passes over the file for at least --min-time seconds, after one untimed
warm-up pass):

  in-proc     brine_oracle.worker.respond() in a loop inside the worker's
              interpreter: no protocol, no IPC (the ceiling)
  sync        one request at a time (run(): write, wait for the answer)
  pipe        run_many(window=N): up to N requests outstanding
  sync/pin    sync, driver and worker pinned to the same CPU (taskset -c)
  pipe/pin    pipe, both pinned to the same CPU

Target (issue 3): >= 20,000 small cases/s for one worker.
"""

import argparse
import glob
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ORACLE = os.path.join(REPO, "oracle")
sys.path.insert(0, ORACLE)

from brine_oracle.client import Adapter  # noqa: E402

MAGIC = b"\xffPKLSEQ1"

IN_PROC = r"""
import struct, sys, time
sys.path.insert(0, sys.argv[1])
from brine_oracle.worker import respond
d = open(sys.argv[2], "rb").read()
cases = []
i = 8
while i < len(d):
    n = struct.unpack_from("<I", d, i)[0]
    cases.append(d[i + 4:i + 4 + n])
    i += 4 + n
u, min_time, rounds = sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
clock = getattr(time, "perf_counter", time.time)   # 2.7: time.time
for c in cases:
    respond(c, u)
best = 0.0
for _ in range(rounds):
    n = 0
    t0 = clock()
    while True:
        for c in cases:
            respond(c, u)
        n += len(cases)
        dt = clock() - t0
        if dt >= min_time:
            break
    best = max(best, n / dt)
print(best)
"""


def find_pythons():
    found = []
    pats = sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/3.*/bin/python3")))

    def key(p):
        v = os.path.basename(os.path.dirname(os.path.dirname(p)))
        try:
            return tuple(int(x) for x in v.split("."))
        except ValueError:
            return (99,)
    for p in sorted(pats, key=key) + ["/usr/bin/python3"]:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            real = os.path.realpath(p)
            if real not in [os.path.realpath(f) for f in found]:
                found.append(p)
    return found


def read_container(path):
    with open(path, "rb") as f:
        d = f.read()
    if not d.startswith(MAGIC):
        return [d]
    out = []
    i = len(MAGIC)
    while i < len(d):
        n = struct.unpack_from("<I", d, i)[0]
        out.append(d[i + 4:i + 4 + n])
        i += 4 + n
    return out


def make_corpus(outdir, count, pythons):
    gen = None
    for p in [sys.executable] + pythons:
        try:
            ok = subprocess.call([p, "-c", "import sys; "
                                  "sys.exit(sys.version_info < (3, 8))"]) == 0
        except OSError:
            ok = False
        if ok:
            gen = p
            break
    if gen is None:
        sys.exit("oracle_bench.py: make_corpus.py needs a Python 3.8+")
    subprocess.check_call([gen, os.path.join(HERE, "make_corpus.py"), outdir,
                           "--count", str(count), "--big-mb", "0.05"],
                          stdout=subprocess.DEVNULL)


def worker_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ORACLE + (os.pathsep + env["PYTHONPATH"]
                                  if env.get("PYTHONPATH") else "")
    return env


def time_adapter(argv, cases, window, min_time, rounds, env):
    """Best cases/s over `rounds`; also (name, version, failures)."""
    a = Adapter(argv, timeout=60.0, env=env)
    try:
        a.start()
        fails = 0
        for r in _drive(a, cases, window):       # warm-up + check
            if not r.ok or r.text.endswith("error internal\n"):
                fails += 1
        best = 0.0
        for _ in range(rounds):
            n = 0
            t0 = time.perf_counter()
            while True:
                for r in _drive(a, cases, window):
                    pass
                n += len(cases)
                dt = time.perf_counter() - t0
                if dt >= min_time:
                    break
            best = max(best, n / dt)
        return best, a.name, a.version, fails + a.crashes + a.timeouts
    finally:
        a.close()


def _drive(a, cases, window):
    if window <= 1:
        run = a.run
        for c in cases:
            yield run(c)
    else:
        for r in a.run_many(cases, window=window):
            yield r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", action="append", default=None,
                    help="interpreter (absolute path); repeatable")
    ap.add_argument("--corpus", help="directory with small-pN.pkls")
    ap.add_argument("--count", type=int, default=5000,
                    help="pickles per generated file (default 5000)")
    ap.add_argument("--protocols", default="0,2,4")
    ap.add_argument("--unpickler", default="c")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--cpu", type=int, default=0,
                    help="CPU to pin to (default 0)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--no-in-proc", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="--min-time 0.2 --rounds 1")
    args = ap.parse_args(argv)
    if args.quick:
        args.min_time, args.rounds = 0.2, 1
    pythons = args.python or find_pythons()
    for p in pythons:
        if not os.path.isabs(p):
            sys.exit("oracle_bench.py: call interpreters by absolute path: %s"
                     % p)
    if not pythons:
        sys.exit("oracle_bench.py: no interpreter found")
    tmp = None
    corpus = args.corpus
    if corpus is None:
        tmp = tempfile.mkdtemp(prefix="brine-oracle-bench-")
        corpus = tmp
        make_corpus(corpus, args.count, pythons)
    protos = [int(x) for x in args.protocols.split(",") if x.strip()]
    unpicklers = [u for u in args.unpickler.split(",") if u]
    files = [(pn, os.path.join(corpus, "small-p%d.pkls" % pn))
             for pn in protos]
    env = worker_env()
    can_pin = (not args.no_pin and hasattr(os, "sched_setaffinity")
               and shutil.which("taskset") is not None)
    taskset = shutil.which("taskset")
    orig_aff = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") \
        else None

    cols = ["in-proc", "sync", "pipe%d" % args.window]
    if can_pin:
        cols += ["sync/pin", "pipe%d/pin" % args.window]
    print("oracle worker throughput, cases/s (best of %d x >= %.1f s); "
          "driver: %s %s; %d CPUs%s"
          % (args.rounds, args.min_time, sys.executable,
             sys.version.split()[0], os.cpu_count() or 0,
             ("; pinned to CPU %d" % args.cpu) if can_pin else
             "; no pinning"))
    head = "%-22s %-8s %8s %5s " % ("worker", "version", "file", "bytes") + \
        " ".join("%10s" % c for c in cols) + "  fails"
    print(head)
    print("-" * len(head))
    rows = []
    try:
        for py in pythons:
            for u in unpicklers:
                for pn, path in files:
                    cases = read_container(path)
                    avg = sum(len(c) for c in cases) / float(len(cases))
                    base = [py, "-m", "brine_oracle", "serve",
                            "--unpickler", u]
                    vals = []
                    if args.no_in_proc:
                        vals.append(None)
                    else:
                        try:
                            out = subprocess.check_output(
                                [py, "-c", IN_PROC, ORACLE, path, u,
                                 str(args.min_time), str(args.rounds)],
                                env=env)
                            vals.append(float(out.strip()))
                        except (subprocess.CalledProcessError, ValueError):
                            vals.append(None)
                    name = version = "?"
                    fails = 0
                    configs = [(False, 1), (False, args.window)]
                    if can_pin:
                        configs += [(True, 1), (True, args.window)]
                    for pin, window in configs:
                        argv_w = base
                        if pin:
                            argv_w = [taskset, "-c", str(args.cpu)] + base
                            os.sched_setaffinity(0, {args.cpu})
                        try:
                            v, name, version, f = time_adapter(
                                argv_w, cases, window, args.min_time,
                                args.rounds, env)
                        finally:
                            if pin and orig_aff is not None:
                                os.sched_setaffinity(0, orig_aff)
                        vals.append(v)
                        fails += f
                    line = "%-22s %-8s %8s %5.0f " % (
                        name, (version or "?").split()[0], "p%d" % pn,
                        avg) + " ".join(
                        "%10s" % ("-" if v is None else "%.0f" % v)
                        for v in vals) + "  %d" % fails
                    print(line)
                    sys.stdout.flush()
                    rows.append(line)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\ntarget: >= 20000 small cases/s for one worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
