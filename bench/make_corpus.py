#!/usr/bin/env python3
"""Generate the libpkl decode-benchmark corpus (deterministic, seeded).

    make_corpus.py OUTDIR [--seed S] [--count N] [--big-mb M]

Writes into OUTDIR:

  small-p0.pkls ... small-p5.pkls
      N (default 10,000) small mixed pickles each, the same N objects dumped
      at protocol 0..5, in the brine pickle-sequence container (below).
  big-listdict-p4.pickle, big-listdict-p5.pickle
      one ~M MB (default 50) list-of-dicts pickle, a raw pickle file.
  MANIFEST.txt
      what was generated, with which Python and seed, and per-file sizes.

Container format (".pkls"): the 8-byte magic b"\\xffPKLSEQ1" (0xFF is not a
pickle opcode, so a container can never be mistaken for a pickle), then
records until end of file, each a u32 little-endian length followed by that
many bytes of one complete pickle. Any file not starting with the magic is
one raw pickle. bench/pkl_bench.c and bench/cpython_bench.py read both.

Small objects: ints of varied sizes (1 byte to ~100 bits, both signs),
floats (incl. 0.0, -0.0, inf), short str (ASCII, Latin-1, CJK, emoji) and
bytes, None/True/False, lists/tuples/dicts/sets/frozensets nested 1-3
levels, a few objects with shared references (memo GETs), and a minority
(~4%) of instances of classes from the synthetic module
"brine_bench_model" (plain __dict__ class: NEWOBJ/BUILD, or
copyreg._reconstructor at protocols 0-1; __slots__ class: BUILD with slot
state; __reduce__ class: REDUCE). Sets at protocols 0-3 and bytes at 0-2
are themselves pickled through globals (builtins.set, _codecs.encode), as
CPython does.

Determinism: same seed + same CPython minor version -> byte-identical
files. String hashing is randomised per process and decides set iteration
order, so the script re-executes itself with PYTHONHASHSEED=0. Needs
Python 3.8+ (protocol 5).
"""

import argparse
import os
import pickle
import random
import struct
import sys
import types

MAGIC = b"\xffPKLSEQ1"

if sys.version_info < (3, 8):
    sys.exit("make_corpus.py needs Python 3.8+ (pickle protocol 5)")

# ---------------------------------------------------------------------------
# The synthetic module whose classes appear in a minority of small pickles.
# Registered in sys.modules so pickle can name them "brine_bench_model.X"
# rather than "__main__.X". Only the generator ever defines or imports it;
# the benchmarks never resolve it (libpkl makes stubs, cpython_bench.py
# returns stub classes from find_class).
# ---------------------------------------------------------------------------
MODEL = types.ModuleType("brine_bench_model")
sys.modules[MODEL.__name__] = MODEL


class Point:
    """Plain class: NEWOBJ + BUILD(dict) at protocol 2+."""

    def __init__(self, x, y, label=None):
        self.x = x
        self.y = y
        self.label = label


class Slotted:
    """__slots__ class: BUILD with (None, slotstate) at protocol 2+."""

    __slots__ = ("key", "value")

    def __init__(self, key, value):
        self.key = key
        self.value = value


class Money:
    """__reduce__ class: GLOBAL/STACK_GLOBAL + REDUCE."""

    def __init__(self, amount, currency):
        self.amount = amount
        self.currency = currency

    def __reduce__(self):
        return (Money, (self.amount, self.currency))


for _cls in (Point, Slotted, Money):
    _cls.__module__ = MODEL.__name__
    setattr(MODEL, _cls.__name__, _cls)

# ---------------------------------------------------------------------------
# Small mixed objects
# ---------------------------------------------------------------------------
KEYS = ["id", "name", "type", "value", "count", "items", "tags", "meta",
        "created", "updated", "enabled", "score", "x", "y", "z", "data",
        "user", "email", "status", "parent", "children", "size", "kind",
        "version", "path", "url", "lang", "ratio", "ok", "err", "clé",
        "名前", "größe"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "foo", "bar",
         "hello world", "lorem ipsum", "", "a", "OK", "None", "true",
         "naïve", "café", "Ærøskøbing", "東京", "日本語のテキスト", "Ωmega",
         "emoji 🎉", "mixed é 東 🐍", "tab\tand\nnewline", "back\\slash",
         "quote'\"", "Привет", "مرحبا"]
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-. "
NONASCII = "éèüößñçøåæ東京日本語中文한국어ΩπΣЖЯ🎉🐍€"


class SmallGen:
    def __init__(self, rng):
        self.r = rng

    # -- scalars
    def int_(self):
        r = self.r
        k = r.random()
        if k < 0.35:
            v = r.randrange(0, 256)                  # BININT1
        elif k < 0.55:
            v = r.randrange(256, 65536)              # BININT2
        elif k < 0.75:
            v = r.randrange(-2**31, 2**31)           # BININT
        elif k < 0.92:
            v = r.randrange(-2**63, 2**63)           # LONG1 (8 bytes)
        else:
            v = r.randrange(-2**100, 2**100)         # LONG1, bigger
        return v

    def float_(self):
        r = self.r
        k = r.random()
        if k < 0.05:
            return r.choice([0.0, -0.0, 1.0, -1.0, 0.5, float("inf"), 1e300, 5e-324])
        if k < 0.40:
            return round(r.uniform(-1000, 1000), r.randrange(0, 4))
        return r.uniform(-1e6, 1e6) * 10.0 ** r.randrange(-10, 10)

    def str_(self):
        r = self.r
        k = r.random()
        if k < 0.40:
            return r.choice(WORDS)
        n = r.randrange(0, 24)
        if k < 0.80:
            return "".join(r.choice(ALNUM) for _ in range(n))
        return "".join(r.choice(ALNUM if r.random() < 0.5 else NONASCII)
                       for _ in range(n))

    def bytes_(self):
        r = self.r
        n = r.randrange(0, 32)
        return bytes(r.randrange(256) for _ in range(n))

    def scalar(self):
        r = self.r
        k = r.random()
        if k < 0.30:
            return self.int_()
        if k < 0.45:
            return self.float_()
        if k < 0.75:
            return self.str_()
        if k < 0.83:
            return self.bytes_()
        if k < 0.90:
            return None
        return r.random() < 0.5

    def hashable(self):
        r = self.r
        k = r.random()
        if k < 0.45:
            return self.int_()
        if k < 0.85:
            return self.str_()
        if k < 0.95:
            return (self.int_(), self.str_())
        return self.float_()

    # -- containers, depth = levels of nesting still allowed
    def value(self, depth):
        if depth <= 0 or self.r.random() < 0.55:
            return self.scalar()
        return self.container(depth)

    def container(self, depth):
        r = self.r
        k = r.random()
        if k < 0.38:
            return {r.choice(KEYS): self.value(depth - 1)
                    for _ in range(r.randrange(0, 8))}
        if k < 0.68:
            return [self.value(depth - 1) for _ in range(r.randrange(0, 8))]
        if k < 0.85:
            return tuple(self.value(depth - 1) for _ in range(r.randrange(0, 5)))
        if k < 0.88:
            return {self.int_(): self.value(depth - 1)
                    for _ in range(r.randrange(1, 5))}
        if k < 0.96:
            return {self.hashable() for _ in range(r.randrange(0, 6))}
        return frozenset(self.hashable() for _ in range(r.randrange(0, 5)))

    def record(self):
        """A JSON-like record, the most common small pickle in practice."""
        r = self.r
        d = {"id": r.randrange(0, 10**6), "name": self.str_()}
        for key in r.sample(KEYS, r.randrange(0, 6)):
            d[key] = self.value(2)
        return d

    def instance(self):
        r = self.r
        k = r.random()
        if k < 0.5:
            return Point(self.int_(), self.float_(),
                         self.str_() if r.random() < 0.5 else None)
        if k < 0.75:
            return Slotted(r.choice(KEYS), self.value(1))
        return Money(r.randrange(0, 10**7), r.choice(["EUR", "USD", "JPY"]))

    def shared(self):
        """An object with shared references (memo GET at every protocol)."""
        r = self.r
        part = self.container(1) if r.random() < 0.7 else [self.str_()]
        if isinstance(part, (set, frozenset)):
            part = list(part)
        s = self.str_() * 2 or "shared"
        return {"a": part, "b": part, "names": [s, s, s],
                "pair": (part, self.int_())}

    def top(self, allow_instances):
        r = self.r
        k = r.random()
        if k < 0.04:
            if allow_instances:
                inst = self.instance()
                return inst if r.random() < 0.5 else [inst, self.scalar()]
            return self.record()
        if k < 0.09:
            return self.shared()
        if k < 0.45:
            return self.record()
        if k < 0.85:
            return self.container(3)
        return self.scalar()


def small_objects(seed, count):
    g = SmallGen(random.Random(seed))
    return [g.top(allow_instances=True) for _ in range(count)]


def dumps_all(objs, proto):
    out = []
    for o in objs:
        if proto < 2:
            o = unslot(o)
        out.append(pickle.dumps(o, protocol=proto))
    return out


def unslot(o):
    """A __slots__ instance without __getstate__ cannot be pickled at
    protocols 0-1; there (only) its slots are pickled as a plain dict, so
    every protocol still has the same number of pickles."""
    if isinstance(o, Slotted):
        return {"key": o.key, "value": o.value}
    if isinstance(o, list) and o and isinstance(o[0], Slotted):
        return [unslot(o[0])] + o[1:]
    return o


def write_container(path, pickles):
    with open(path, "wb") as f:
        f.write(MAGIC)
        for p in pickles:
            f.write(struct.pack("<I", len(p)))
            f.write(p)


# ---------------------------------------------------------------------------
# The big list-of-dicts pickle
# ---------------------------------------------------------------------------
BIG_FIRST = ["Ana", "Bo", "Chen", "Dmitri", "Élodie", "Fatima", "Günter",
             "Hiro", "Ingrid", "José", "Kwame", "Lena", "Mateus", "Noor",
             "Olek", "Priya", "Quinn", "Rosa", "Søren", "Tomasz", "美咲"]
BIG_LAST = ["Smith", "García", "Müller", "Nguyen", "Kowalski", "Okafor",
            "Rossi", "Sato", "Ivanova", "Haddad", "O'Brien", "Novák", "田中"]
BIG_CITY = ["Berlin", "São Paulo", "Tokyo", "Lagos", "Montréal", "Kraków",
            "Reykjavík", "Chennai", "Austin", "Zürich", "Seoul"]


def big_record(r, i):
    first, last = r.choice(BIG_FIRST), r.choice(BIG_LAST)
    return {
        BIG_KEYS[0]: i,
        BIG_KEYS[1]: "%s %s" % (first, last),
        BIG_KEYS[2]: "%s.%s%d@example.org" % (first.lower(), last.lower(),
                                              r.randrange(1000)),
        BIG_KEYS[3]: r.choice(BIG_CITY),
        BIG_KEYS[4]: r.randrange(18, 99),
        BIG_KEYS[5]: round(r.uniform(-5000, 250000), 2),
        BIG_KEYS[6]: r.random(),
        BIG_KEYS[7]: r.randrange(0, 2**31),
        BIG_KEYS[8]: r.uniform(0, 1) * 10.0 ** r.randrange(-5, 5),
        BIG_KEYS[9]: "".join(r.choice(ALNUM) for _ in range(r.randrange(0, 12))),
    }


# The same str objects are the keys of every record so that, as with real
# data, the pickler memoizes them and later records refer to them by BINGET.
BIG_KEYS = ["id", "user", "email", "city", "age", "balance", "score",
            "visits", "ratio", "note"]


def make_big(seed, target_bytes):
    """A list of dicts (str keys; int/float/str values) whose protocol-4
    pickle is about target_bytes long: the record count is extrapolated
    from the first 2,000 records, all drawn from one seeded stream."""
    r = random.Random(seed)
    recs = [big_record(r, i) for i in range(2000)]
    per_rec = (len(pickle.dumps(recs, protocol=4)) -
               len(pickle.dumps(recs[:1000], protocol=4))) / 1000.0
    n = max(1, int(target_bytes / per_rec))
    recs.extend(big_record(r, i) for i in range(len(recs), n))
    del recs[n:]
    return recs


# ---------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--count", type=int, default=10000,
                    help="small pickles per protocol (default 10000)")
    ap.add_argument("--big-mb", type=float, default=50.0,
                    help="size of the list-of-dicts pickle in MB (default 50; 0 = skip)")
    args = ap.parse_args(argv)

    os.makedirs(args.outdir, exist_ok=True)
    manifest = ["brine bench corpus",
                "python %s" % sys.version.split()[0],
                "seed %d" % args.seed,
                "count %d" % args.count,
                "big-mb %g" % args.big_mb]

    objs = small_objects(args.seed, args.count)
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        pickles = dumps_all(objs, proto)
        path = os.path.join(args.outdir, "small-p%d.pkls" % proto)
        write_container(path, pickles)
        total = sum(len(p) for p in pickles)
        manifest.append("%s pickles=%d bytes=%d" % (os.path.basename(path),
                                                    len(pickles), total))
        print("wrote %s: %d pickles, %d bytes" % (path, len(pickles), total))

    if args.big_mb > 0:
        recs = make_big(args.seed + 1, int(args.big_mb * 1e6))
        for proto in (4, 5):
            data = pickle.dumps(recs, protocol=proto)
            path = os.path.join(args.outdir, "big-listdict-p%d.pickle" % proto)
            with open(path, "wb") as f:
                f.write(data)
            manifest.append("%s pickles=1 bytes=%d records=%d" % (
                os.path.basename(path), len(data), len(recs)))
            print("wrote %s: 1 pickle (%d records), %d bytes" % (
                path, len(recs), len(data)))

    with open(os.path.join(args.outdir, "MANIFEST.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Set iteration order of str/bytes/tuple elements depends on the hash
        # seed; fix it so the corpus is byte-for-byte reproducible.
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    sys.exit(main())
