#!/usr/bin/env python3
"""CPython C-unpickler decode throughput on the files pkl_bench times.

    cpython_bench.py [--variant mixed|stubbed|plain]... [--min-time S]
                     [--rounds N] [--no-gc] [--tsv] FILE...

FILE: a brine pickle-sequence container (.pkls, see make_corpus.py) or one
raw pickle. Same repetition policy as bench/pkl_bench.c: one untimed pass
that decodes every pickle (checks + warm-up), then N rounds (default 3),
each repeating full passes over the file's pickles until at least S seconds
(default 1.0) have elapsed, timed with time.perf_counter (CLOCK_MONOTONIC on
Linux); the BEST round is reported, the median for information ("cpu%":
process CPU time over wall time in that round; well under 100 = noisy). Each
decoded object is dropped right away (its deallocation is timed, as
pkl_doc_free is for libpkl). MB = 10^6 bytes of pickle data.

SAFETY (non-negotiable): nothing a pickle names is ever imported or called.

  * A pickle is "plain" when pickletools.genops -- which only parses --
    finds no GLOBAL, STACK_GLOBAL, INST, EXT1/2/4, PERSID, BINPERSID or
    NEXT_BUFFER opcode before STOP. Without those opcodes nothing callable
    can reach the unpickler's stack, so plain pickle.loads can neither
    import nor call anything. Only plain pickles are given to pickle.loads.
  * Every other pickle is decoded by StubUnpickler, a subclass of the C
    pickle.Unpickler whose find_class returns a stub class (one per
    (module, name), cached) and whose persistent_load returns a stub. This
    is reported as "CPython C unpickler, stubbed globals".
  * Belt and braces: an audit hook makes the C unpickler's own find_class
    (the only way pickle.loads could import anything) raise, should a
    pickle ever be misjudged plain.

Variants (default: all three):

  mixed    every pickle: pickle.loads on the plain ones, StubUnpickler on
           the rest. The fastest safe way to decode the whole file; this is
           the baseline bench/run.sh divides by.
  stubbed  every pickle through StubUnpickler(reader).load(): shows the
           per-call cost of building an Unpickler object (about 1 us a
           pickle on 3.13, which pickle.loads does not pay).
  plain    pickle.loads on the plain pickles only; compare with
           `pkl_bench --subset plain` (same pickles).

StubUnpickler reads from _WholeReader, whose peek() hands the unpickler the
whole pickle at once (io.BytesIO has no peek(), so the C unpickler would
make one read() call per opcode on protocols 0-3, which is slower and would
flatter libpkl).
"""

import argparse
import gc
import io
import pickle
import pickletools
import statistics
import struct
import sys
import time

try:
    import _pickle
except ImportError:  # pragma: no cover
    sys.exit("cpython_bench.py: this Python has no C _pickle module")

if pickle.Unpickler is not _pickle.Unpickler or pickle.loads is not _pickle.loads:
    sys.exit("cpython_bench.py: pickle is not using the C unpickler")

MAGIC = b"\xffPKLSEQ1"


def _refuse_real_globals(event, args):
    """Defence in depth: the C unpickler's own find_class raises the
    "pickle.find_class" audit event before it imports anything. Only
    pickle.loads could reach it (StubUnpickler overrides find_class), and
    only if genops and the C unpickler disagreed about a plain pickle; then
    the load fails instead of importing."""
    if event == "pickle.find_class":
        raise RuntimeError("cpython_bench.py: refusing to resolve global %r" % (args,))


sys.addaudithook(_refuse_real_globals)

NOT_PLAIN = frozenset(["GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4",
                       "PERSID", "BINPERSID", "NEXT_BUFFER"])


# ---------------------------------------------------------------------------
# Stubs: stand-ins for whatever a pickle names. Never the real thing.
# ---------------------------------------------------------------------------
class _Stub:
    """Accepts any construction, call, state, item or append; does nothing.
    Instances have a __dict__, so BUILD takes CPython's default path
    (inst.__dict__.update / setattr for slot state), as it would for a real
    plain class."""

    # Overriding __init__ (and not __new__) lets object.__new__ accept and
    # ignore any arguments: REDUCE, NEWOBJ and NEWOBJ_EX all work, at the
    # cost of one Python-level call per object.
    def __init__(self, *args, **kwargs):
        pass

    # Targets of APPEND(S), SETITEM(S), ADDITEMS on a stub object.
    def append(self, item):
        pass

    def extend(self, items):
        pass

    def add(self, item):
        pass

    def __setitem__(self, key, value):
        pass


_STUBS = {}


class StubUnpickler(pickle.Unpickler):
    """The C unpickler with every global and persistent id stubbed out."""

    def find_class(self, module, name):
        try:
            return _STUBS[module, name]
        except KeyError:
            cls = type(name if name.isidentifier() else "Stub", (_Stub,),
                       {"__module__": "stub:" + module, "__qualname__": name})
            _STUBS[module, name] = cls
            return cls

    def persistent_load(self, pid):
        return _Stub()


class _WholeReader:
    """A minimal binary reader over one pickle: peek() returns everything
    that is left (allowed: peek may return more than asked), so the C
    unpickler makes one peek() and one read() per small pickle instead of
    one read() per opcode."""

    __slots__ = ("data", "pos")

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def peek(self, n=0):
        return self.data[self.pos:]

    def read(self, n=-1):
        start = self.pos
        end = len(self.data) if n is None or n < 0 else min(len(self.data), start + n)
        self.pos = end
        return self.data[start:end]

    def readinto(self, buf):
        chunk = self.read(len(buf))
        buf[:len(chunk)] = chunk
        return len(chunk)

    def readline(self):
        start = self.pos
        nl = self.data.find(b"\n", start)
        self.pos = len(self.data) if nl < 0 else nl + 1
        return self.data[start:self.pos]


# ---------------------------------------------------------------------------
def read_pickles(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        return [data]
    out, off, n = [], len(MAGIC), len(data)
    while off < n:
        if n - off < 4:
            sys.exit("cpython_bench.py: %s: truncated container record header" % path)
        (ln,) = struct.unpack_from("<I", data, off)
        off += 4
        if n - off < ln:
            sys.exit("cpython_bench.py: %s: truncated container record" % path)
        out.append(data[off:off + ln])
        off += ln
    return out


def is_plain(data):
    """True when the pickle reaches STOP without any opcode that could name
    or fetch an outside object. pickletools.genops only parses."""
    try:
        for op, _arg, _pos in pickletools.genops(data):
            if op.name in NOT_PLAIN:
                return False
            if op.name == "STOP":
                return True
    except Exception:
        return False
    return False


def pass_loads(items):
    loads = pickle.loads
    for b in items:
        loads(b)


def pass_stubbed(items):
    unpickler, reader = StubUnpickler, _WholeReader
    for b in items:
        unpickler(reader(b)).load()


def check_pass(path, plain, other):
    """Decode everything once (warm-up); a failure aborts the run. For plain
    pickles also check that the stubbed path decodes them identically."""
    for i, b in enumerate(plain):
        try:
            a = pickle.loads(b)
            s = StubUnpickler(_WholeReader(b)).load()
        except Exception as e:
            sys.exit("cpython_bench.py: %s: plain pickle #%d does not decode: %r"
                     % (path, i, e))
        if not (a == s or repr(a) == repr(s)):
            sys.exit("cpython_bench.py: %s: plain pickle #%d: stubbed decode differs"
                     % (path, i))
    for i, b in enumerate(other):
        try:
            StubUnpickler(_WholeReader(b)).load()
        except Exception as e:
            sys.exit("cpython_bench.py: %s: pickle #%d (with globals) does not "
                     "decode with stubs: %r" % (path, i, e))


def measure(one_pass, rounds, min_time):
    """Seconds per pass: best and median of `rounds` rounds, passes run, and
    the CPU-time / wall-time share of the best round (well under 1: other
    processes took the CPU, the figure is noisy), and the best CPU seconds
    per pass (steadier than wall time on a shared machine)."""
    per_pass, passes_total, best_share, best_cpu = [], 0, 1.0, None
    clock, cpu = time.perf_counter, time.process_time
    for _ in range(rounds):
        passes = 0
        c0 = cpu()
        t0 = clock()
        while True:
            one_pass()
            passes += 1
            el = clock() - t0
            if el >= min_time:
                break
        used = cpu() - c0
        share = used / el if el > 0 else 1.0
        if best_cpu is None or used / passes < best_cpu:
            best_cpu = used / passes
        if not per_pass or el / passes < min(per_pass):
            best_share = share
        per_pass.append(el / passes)
        passes_total += passes
    return (min(per_pass), statistics.median(per_pass), passes_total, best_share,
            best_cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Time CPython's C unpickler (stubbed globals) on pickle files.")
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--variant", action="append", choices=["mixed", "stubbed", "plain"],
                    help="variant(s) to run (repeatable; default: all)")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-gc", action="store_true",
                    help="disable the cyclic GC while timing (default: enabled, "
                         "as a program calling pickle.loads would have it)")
    ap.add_argument("--tsv", action="store_true")
    args = ap.parse_args(argv)
    variants = args.variant or ["mixed", "stubbed", "plain"]
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    if not args.tsv:
        print("CPython %s C unpickler (_pickle), stubbed globals; gc %s; best of %d "
              "rounds, each >= %.2f s of repeated passes"
              % (sys.version.split()[0], "disabled" if args.no_gc else "enabled",
                 args.rounds, args.min_time))
        print("%-24s %-8s %8s %11s %11s %13s %9s %9s %8s %5s" % (
            "file", "variant", "pickles", "bytes", "s/pass", "pickles/s", "MB/s",
            "med MB/s", "stubbed", "cpu%"))

    for path in args.files:
        pickles = read_pickles(path)
        if not pickles:
            sys.exit("cpython_bench.py: %s: no pickles" % path)
        flags = [is_plain(b) for b in pickles]
        plain = [b for b, ok in zip(pickles, flags) if ok]
        other = [b for b, ok in zip(pickles, flags) if not ok]
        check_pass(path, plain, other)
        name = path.rsplit("/", 1)[-1]
        done = {}
        for variant in variants:
            if variant == "mixed":
                items, nstub = pickles, len(other)

                def one_pass(plain=plain, other=other):
                    pass_loads(plain)
                    pass_stubbed(other)
            elif variant == "stubbed":
                items, nstub = pickles, len(pickles)

                def one_pass(pickles=pickles):
                    pass_stubbed(pickles)
            else:
                items, nstub = plain, 0
                if not plain:
                    print("cpython_bench.py: %s: no plain pickles" % path, file=sys.stderr)
                    continue

                def one_pass(plain=plain):
                    pass_loads(plain)
            nbytes = sum(len(b) for b in items)
            if variant in ("mixed", "plain") and not other and "loads" in done:
                # Every pickle is plain: "mixed" and "plain" are the same
                # pickle.loads loop over the same pickles; time it once.
                best, median, passes, share, cpu_pass = done["loads"]
            else:
                gc.collect()
                if args.no_gc:
                    gc.disable()
                try:
                    best, median, passes, share, cpu_pass = measure(
                        one_pass, args.rounds, args.min_time)
                finally:
                    gc.enable()
                if variant in ("mixed", "plain") and not other:
                    done["loads"] = (best, median, passes, share, cpu_pass)
            pps, mbs = len(items) / best, nbytes / best / 1e6
            med_mbs = nbytes / median / 1e6
            if args.tsv:
                print("cpython\t%s\t%s\t%d\t%d\t%.9f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t%.3f\t%.3f" % (
                    variant, name, len(items), nbytes, best, pps, mbs, med_mbs,
                    args.rounds, passes, nstub, share,
                    len(items) / cpu_pass if cpu_pass else 0.0))
            else:
                print("%-24s %-8s %8d %11d %11.6g %13.1f %9.2f %9.2f %8d %5.0f" % (
                    name, variant, len(items), nbytes, best, pps, mbs, med_mbs, nstub,
                    100.0 * share))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
