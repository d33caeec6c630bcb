#!/usr/bin/env python3
"""Edge-value object-graph generator (DESIGN section 6).

    python3 generators/edge_values.py OUTDIR [--no-optimize] [--list]

Builds a fixed, named set of object graphs with edge values (integer
boundaries of every integer opcode, special floats, strings and bytes at the
SHORT_/long length boundaries, every container, shared references, cycles,
instances pickled through __reduce__/__reduce_ex__/__getstate__/__slots__,
copyreg extension codes, persistent ids, PickleBuffer) and pickles each one
at every protocol this interpreter supports, with the C pickler
(``pickle.dumps``) and the Python pickler (``pickle._dumps``), plus the C
output run through ``pickletools.optimize``.  Files are written as
``OUTDIR/<case>-p<proto>-<c|py|opt>.pkl``; a byte string already written
(under any name) is not written again.  A graph that a protocol cannot
pickle (e.g. __slots__ without __getstate__ at protocol 0/1 before 3.11) is
skipped for that protocol.

Deterministic: no randomness, and the generator re-executes itself with
PYTHONHASHSEED=0 so that set and frozenset pickle in the same order on every
run of the same interpreter.  Different CPython versions may still produce
different bytes (that is part of the point).

Python 3.6 and later (protocol 5 and PickleBuffer from 3.8), and 2.7: there
the same graphs are written in their py2 forms (``str`` is a byte string,
text is ``unicode``, big numbers are ``long``; protocols 0-2; ``c`` is
cPickle, ``py`` is pickle.py), plus graphs only Python 2 has (non-ASCII
byte strings, small ``long`` values, str/unicode keys, classic-class
instances pickled with INST/OBJ).  Graphs a Python cannot pickle are
skipped (``-v`` says which).

The classes pickled here live in a synthetic module ``brine_edge`` that is
registered in ``sys.modules`` so that their pickled names do not depend on
how this file is run.  Extension codes are registered in this process only:
an oracle or implementation that loads the EXT pickles without the same
registration reports ``error unknown-extension`` (a real case).
"""

import functools
import hashlib
import io
import os
import pickle
import pickletools
import struct
import sys
import types

PY2 = sys.version_info[0] < 3
if PY2:
    import binascii
    import copy_reg as copyreg
    import cPickle
else:
    import copyreg

HIGHEST = pickle.HIGHEST_PROTOCOL
HAVE_P5 = HIGHEST >= 5 and hasattr(pickle, "PickleBuffer")


def _reexec_with_fixed_hash_seed():
    if os.environ.get("PYTHONHASHSEED") == "0":
        return
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


# --------------------------------------------------------------------------
# The synthetic module holding every class the graphs use

MOD = types.ModuleType("brine_edge")
MOD.__doc__ = "classes of brine's edge-value generator"
sys.modules["brine_edge"] = MOD


def _export(obj):
    obj.__module__ = "brine_edge"
    if isinstance(obj, type):
        obj.__qualname__ = obj.__name__
    setattr(MOD, obj.__name__, obj)
    return obj


@_export
class Plain(object):
    """A plain __dict__ instance."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


@_export
class Hashable(object):
    """Hash by a field, so sets of instances pickle in a fixed order."""

    def __init__(self, key):
        self.key = key

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return self is other


@_export
class Slotted(object):
    __slots__ = ("a", "b")

    def __init__(self, a, b=None):
        self.a = a
        if b is not None:
            self.b = b


@_export
class SlottedDict(object):
    """__slots__ plus a __dict__: state is (dict, slotstate)."""

    __slots__ = ("s", "__dict__")

    def __init__(self):
        self.s = 1
        self.d = 2


@_export
class WithReduce(object):
    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (WithReduce, self.args)


@_export
class WithReduceEx(object):
    """__reduce_ex__ returning the 5-tuple form: state, list items and dict
    items are applied to the stub (BUILD, APPENDS, SETITEMS on a `call`)."""

    def __init__(self, items=(), pairs=()):
        self.items = list(items)
        self.pairs = list(pairs)

    def __reduce_ex__(self, proto):
        return (WithReduceEx, (), {"proto_seen": proto},
                iter(self.items), iter(self.pairs))


@_export
class WithStateSetter(object):
    """6-tuple __reduce__ with a state setter (pickled as REDUCE + POP)."""

    def __reduce__(self):
        return (WithStateSetter, (), {"x": 1}, None, None, _set_state)


@_export
def _set_state(obj, state):
    obj.__dict__.update(state)


@_export
class WithGetState(object):
    def __init__(self, v):
        self.v = v

    def __getstate__(self):
        return ("state", self.v)

    def __setstate__(self, state):
        self.v = state[1]


@_export
class FalsyState(object):
    """__getstate__ returning a false value: no BUILD is written."""

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        pass


@_export
class NewArgs(object):
    def __new__(cls, *args):
        self = object.__new__(cls)
        self.args = args
        return self

    def __getnewargs__(self):
        return self.args


@_export
class NewArgsEx(object):
    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.args = args
        self.kwargs = kwargs
        return self

    def __getnewargs_ex__(self):
        return self.args, self.kwargs

    def __getstate__(self):
        return None


@_export
class ListSub(list):
    pass


@_export
class DictSub(dict):
    pass


@_export
class SetSub(set):
    pass


@_export
class Named(object):
    """__reduce__ returning a string: pickled as a global reference."""

    def __reduce__(self):
        return "SINGLETON"


MOD.SINGLETON = Named()


@_export
class Exploit(object):
    """The classic: REDUCE of os.system.  The oracle never runs it."""

    def __reduce__(self):
        return (os.system, ("echo brine-edge-exploit-must-not-run",))


@_export
class PersistentRef(object):
    """Marker object pickled by persistent id."""

    def __init__(self, pid):
        self.pid = pid


# Extension codes: one per EXT1/EXT2/EXT4 boundary.
EXT_CODES = [1, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff]
EXT_CLASSES = []
for _code in EXT_CODES:
    _cls = type("Ext%x" % _code, (object,), {})
    _export(_cls)
    EXT_CLASSES.append(_cls)


def _register_extensions():
    for code, cls in zip(EXT_CODES, EXT_CLASSES):
        key = ("brine_edge", cls.__name__)
        if copyreg._extension_registry.get(key) != code:
            copyreg.add_extension("brine_edge", cls.__name__, code)


# --------------------------------------------------------------------------
# Persistent-id picklers

def _persistent_id(obj):
    if type(obj) is PersistentRef:
        return obj.pid
    return None


if PY2:
    # cPickle.Pickler is a factory (no subclassing): the hook is an
    # attribute; pickle.py's Pickler is the Python one.
    def _CPersPickler(f, proto):
        p = cPickle.Pickler(f, proto)
        p.persistent_id = _persistent_id
        return p

    class _PyPersPickler(pickle.Pickler):
        def persistent_id(self, obj):
            return _persistent_id(obj)
else:
    class _CPersPickler(pickle.Pickler):
        def persistent_id(self, obj):
            return _persistent_id(obj)

    class _PyPersPickler(pickle._Pickler):
        def persistent_id(self, obj):
            return _persistent_id(obj)


def _dumps_pers(cls, obj, proto):
    f = io.BytesIO()
    cls(f, proto).dump(obj)
    return f.getvalue()


# --------------------------------------------------------------------------
# The graphs

def f64(hexbits):
    raw = binascii.unhexlify(hexbits) if PY2 else bytes.fromhex(hexbits)
    return struct.unpack(">d", raw)[0]


def _utf8_len(n):
    """A non-ASCII str whose UTF-8 encoding is exactly n bytes."""
    s = u"\xe9" * (n // 2) + u"a" * (n % 2)
    assert len(s.encode("utf-8")) == n
    return s


def cases():
    """[(name, graph, kind)]; kind: 'plain', 'pers' (persistent ids),
    'p5' (protocol 5 only)."""
    out = []

    def add(name, obj, kind="plain"):
        out.append((name, obj, kind))

    # ---- singletons
    add("none", None)
    add("true", True)
    add("false", False)
    add("bools-in-list", [True, False, True])

    # ---- integers: every integer opcode boundary
    ints = [
        ("zero", 0), ("one", 1), ("minus-one", -1),
        ("0xff", 0xff), ("0x100", 0x100), ("0xffff", 0xffff),
        ("0x10000", 0x10000),
        ("2p31-minus-1", 2 ** 31 - 1), ("2p31", 2 ** 31),
        ("2p31-plus-1", 2 ** 31 + 1),
        ("minus-2p31", -2 ** 31), ("minus-2p31-minus-1", -2 ** 31 - 1),
        ("minus-2p31-plus-1", -2 ** 31 + 1),
        ("2p63-minus-1", 2 ** 63 - 1), ("2p63", 2 ** 63),
        ("minus-2p63", -2 ** 63), ("minus-2p63-minus-1", -2 ** 63 - 1),
        ("2p64-minus-1", 2 ** 64 - 1), ("2p64", 2 ** 64),
        ("minus-2p64", -2 ** 64), ("2p64-plus-1", 2 ** 64 + 1),
        ("minus-0x80", -0x80), ("0x7f", 0x7f), ("0x80", 0x80),
        ("minus-0x8000", -0x8000), ("minus-0x8001", -0x8001),
        # LONG1 holds at most 255 bytes; LONG4 above.
        ("long1-255-bytes-max", 2 ** (255 * 8 - 1) - 1),
        ("long1-255-bytes-min", -2 ** (255 * 8 - 1)),
        ("long4-256-bytes-pos", 2 ** (255 * 8 - 1)),
        ("long4-256-bytes-neg", -2 ** (255 * 8 - 1) - 1),
        ("long1-254-bytes-edge", 2 ** (254 * 8 - 1)),
        ("huge-4000-bits", 2 ** 4000 + 12345),
    ]
    for name, v in ints:
        add("int-" + name, v)
    add("int-all-boundaries", [v for _, v in ints])

    # ---- floats
    floats = [
        ("zero", 0.0), ("minus-zero", -0.0), ("one", 1.0),
        ("inf", float("inf")), ("minus-inf", float("-inf")),
        ("nan", float("nan")), ("minus-nan", -float("nan")),
        ("nan-payload", f64("7ff8000000000001")),
        ("nan-payload-neg", f64("fff80000deadbeef")),
        ("snan", f64("7ff0000000000001")),
        ("min-subnormal", f64("0000000000000001")),
        ("max-subnormal", f64("000fffffffffffff")),
        ("min-normal", f64("0010000000000000")),
        ("max", f64("7fefffffffffffff")),
        ("minus-max", -f64("7fefffffffffffff")),
        ("tenth", 0.1), ("third", 1.0 / 3), ("1e16", 1e16),
        ("1e22", 1e22), ("2p53-plus-1", float(2 ** 53 + 1)),
        ("repr-17-digits", 0.30000000000000004),
    ]
    for name, v in floats:
        add("float-" + name, v)

    # ---- strings
    strs = [
        ("empty", u""), ("ascii", u"hello"),
        ("latin1", u"caf\xe9"), ("bmp", u"\u20ac\u4e2d"),
        ("astral", u"\U0001f600\U0010ffff"),
        ("surrogate-lone-high", u"\ud800"),
        ("surrogate-lone-low", u"\udfff"),
        ("surrogate-pair-as-two", u"\ud83d\ude00"),
        ("nul", u"a\x00b"), ("newline", u"a\nb\r\n"),
        ("backslash", u"a\\b\\u0041"), ("quotes", u"'\"'"),
        ("controls", u"".join(chr(i) for i in range(0x20)) + u"\x7f"),
        ("c1-and-seps", u"\x85\xa0\u2028\u2029\ufeff"),
        ("noncharacters", u"\ufffe\uffff"),
        ("raw-unicode-escape-lookalike", u"\\u00e9 \\U0001F600"),
    ]
    for name, v in strs:
        add("str-" + name, v)
    for n in (0, 1, 255, 256, 65535, 65536):
        add("str-ascii-len-%d" % n, u"a" * n)
    for n in (255, 256, 65535, 65536):
        add("str-utf8-bytes-%d" % n, _utf8_len(n))
    add("str-astral-len-256", u"\U0001f600" * 64)  # 256 UTF-8 bytes

    # ---- bytes and bytearray
    for n in (0, 1, 255, 256, 65535, 65536):
        add("bytes-len-%d" % n, bytes(bytearray(i % 256 for i in range(n))))
        add("bytearray-len-%d" % n, bytearray(b"\xff" * n))
    add("bytes-all-values", bytes(bytearray(range(256))))
    add("bytes-quote-backslash", b'"\\\'\n')
    add("bytearray-all-values", bytearray(range(256)))

    # ---- containers, empty and not
    add("list-empty", [])
    add("tuple-empty", ())
    add("dict-empty", {})
    add("set-empty", set())
    add("frozenset-empty", frozenset())
    add("tuple-1", (1,))
    add("tuple-2", (1, 2))
    add("tuple-3", (1, 2, 3))
    add("tuple-4", (1, 2, 3, 4))
    add("list-of-empties", [[], (), {}, set(), frozenset(), u"", b""])
    add("list-1000", list(range(1000)))
    add("list-1001", list(range(1001)))
    add("dict-1000", dict((i, -i) for i in range(1000)))
    add("dict-1001", dict((i, -i) for i in range(1001)))
    add("set-1000", set(range(1000)))
    add("set-1001", set(range(1001)))
    add("frozenset-1001", frozenset(range(1001)))
    add("dict-key-types", {None: 1, True: 2, 3: 3, 4.5: 4, u"s": 5,
                           b"b": 6, (1, 2): 7, frozenset([1]): 8,
                           -0.0: 9, 2 ** 70: 10})
    add("set-mixed-scalars", set([None, True, -1, 10, 9, 2.5, u"a", u"b",
                                  b"a", 2 ** 64, -2 ** 64, u"", b""]))
    add("set-of-tuples", set([(1, 2), (2, 1), (u"a",), (), (1, (2, 3))]))
    add("set-of-frozensets", set([frozenset(), frozenset([1]),
                                  frozenset([1, 2]), frozenset([u"x"])]))
    add("frozenset-nested", frozenset([frozenset([frozenset([1])]),
                                       (frozenset([2]),)]))
    add("set-int-vs-str-order", set([1, 10, 9, -1, -10, u"1", b"1"]))
    add("set-of-instances", set([Hashable(i) for i in range(5)]))
    add("nested-containers", [{u"a": (1, [2, {3: frozenset([4])}])},
                              ({u"b": set([5])},)])
    deep = []
    cur = deep
    for _ in range(200):
        nxt = []
        cur.append(nxt)
        cur = nxt
    add("list-nested-200", deep)
    deep_t = ()
    for _ in range(100):
        deep_t = (deep_t,)
    add("tuple-nested-100", deep_t)

    # ---- shared references
    t = (1, 2)
    add("shared-tuple", [t, t])
    big = (2 ** 64, -2 ** 63)
    add("shared-bigint-tuple", [big, big])
    lst = [1]
    add("shared-list-in-dict", {u"a": lst, u"b": lst, u"c": [lst]})
    s = u"shared string"
    add("shared-str", [s, s, s])
    b = b"shared bytes"
    add("shared-bytes", [b, b])
    ba = bytearray(b"xy")
    add("shared-bytearray", [ba, ba])
    et = ()
    add("shared-empty-tuple", [et, et, (et,)])
    ef = frozenset()
    add("shared-empty-frozenset", [ef, ef])
    fs = frozenset([1, 2])
    add("shared-frozenset", [fs, fs, set([fs])])
    p = Plain(x=1)
    add("shared-instance", [p, p, {u"p": p}])
    tt = (1, (2,))
    add("shared-tuple-in-set", [tt, set([tt]), frozenset([tt])])

    # ---- cycles
    a = []
    a.append(a)
    add("cycle-list-self", a)
    d = {}
    d[u"self"] = d
    add("cycle-dict-self", d)
    l2 = []
    d2 = {u"l": l2}
    l2.append(d2)
    add("cycle-list-dict", l2)
    l3 = []
    t3 = (l3,)
    l3.append(t3)
    add("cycle-recursive-tuple", t3)
    add("cycle-recursive-tuple-via-list", l3)
    p2 = Plain()
    p2.me = p2
    add("cycle-instance-self", p2)
    h = Hashable(u"h")
    sset = set([h])
    h.s = sset
    add("cycle-set-instance", sset)
    ls = ListSub()
    ls.append(ls)
    add("cycle-listsub-self", ls)
    ds = DictSub()
    ds[u"me"] = ds
    add("cycle-dictsub-self", ds)

    # ---- instances
    add("inst-plain", Plain(a=1, b=u"two", c=[3]))
    add("inst-plain-empty", Plain())
    add("inst-slots", Slotted(1, [2]))
    add("inst-slots-partial", Slotted(1))
    add("inst-slots-and-dict", SlottedDict())
    add("inst-reduce", WithReduce(1, u"a", (2,)))
    add("inst-reduce-noargs", WithReduce())
    add("inst-reduce-ex", WithReduceEx([1, 2, 3], [(u"k", u"v"), (1, 2)]))
    add("inst-reduce-ex-empty", WithReduceEx())
    if sys.version_info >= (3, 8):  # 6-tuple __reduce__ (state setter)
        add("inst-state-setter", WithStateSetter())
    add("inst-getstate", WithGetState([1, 2]))
    add("inst-falsy-state", FalsyState())
    add("inst-newargs", NewArgs(1, u"x"))
    add("inst-newargs-empty", NewArgs())
    add("inst-newargs-ex", NewArgsEx(1, k=u"v", z=2))
    add("inst-newargs-ex-kwonly", NewArgsEx(k=1))
    ls2 = ListSub([1, 2, 3])
    ls2.attr = u"a"
    add("inst-list-subclass", ls2)
    ds2 = DictSub(a=1)
    ds2.attr = 2
    add("inst-dict-subclass", ds2)
    add("inst-set-subclass", SetSub([1, 2]))
    add("inst-reduce-to-global", MOD.SINGLETON)
    add("global-class", Plain)
    add("global-function", _set_state)
    add("global-builtin", len)
    add("global-builtin-type", (int, str, bytes, type(None)))
    add("global-method-descriptor", pickle.Pickler.dump)
    add("exploit-os-system", Exploit())
    add("inst-functools-partial", functools.partial(max, 1, key=None))
    if PY2:
        _py2_cases(add)

    # ---- extension codes (registered in this process only)
    for code, cls in zip(EXT_CODES, EXT_CLASSES):
        add("ext-code-0x%x" % code, cls)
    add("ext-all-codes", list(EXT_CLASSES))

    # ---- persistent ids
    add("persid-str", PersistentRef(u"key"), "pers")
    add("persid-in-list", [PersistentRef(u"a"), PersistentRef(u"b"), 3],
        "pers")
    add("persid-int", PersistentRef(42), "pers")
    add("persid-tuple", PersistentRef((u"t", 1)), "pers")
    shared_ref = PersistentRef(u"shared")
    add("persid-shared-marker", [shared_ref, shared_ref], "pers")

    # ---- PickleBuffer (protocol 5, in-band)
    if HAVE_P5:
        PB = pickle.PickleBuffer
        add("picklebuffer-bytes", PB(b"abc"), "p5")
        add("picklebuffer-bytearray", PB(bytearray(b"abc")), "p5")
        add("picklebuffer-empty", PB(b""), "p5")
        add("picklebuffer-in-list", [PB(bytearray(b"x")), PB(b"y")], "p5")
        add("picklebuffer-memoryview-ro", PB(memoryview(b"ro")), "p5")
    return out


def _py2_cases(add):
    """Graphs only Python 2 can write (run under 2.7 only)."""
    long_ = long  # noqa: F821
    add("py2-str-non-ascii", b"caf\xe9")
    add("py2-str-all-bytes", bytes(bytearray(range(256))))
    add("py2-str-and-unicode", [b"abc", u"abc", b"", u""])
    add("py2-long-small", [long_(0), long_(1), long_(-1), long_(255),
                           long_(2 ** 31), long_(-2 ** 31 - 1)])
    add("py2-int-vs-long-keys", {1: b"int", long_(2): b"long"})
    add("py2-dict-str-unicode-keys", {b"a": 1, u"b": 2})
    add("py2-nested-str", {b"k": [b"v", (b"t", u"u")]})
    old = types.ClassType("OldStyle", (), {"__module__": "brine_edge"})
    _export(old)
    o = old()
    o.a = 1
    o.s = b"x"
    add("py2-classic-instance", o)
    add("py2-classic-instance-empty", old())
    init = types.ClassType("OldInitArgs", (), {
        "__module__": "brine_edge",
        "__init__": lambda self, *a: setattr(self, "a", a),
        "__getinitargs__": lambda self: self.a})
    _export(init)
    add("py2-classic-initargs", init(1, b"two", u"three"))
    add("py2-classic-class", old)
    add("py2-unicode-and-high-str", [u"\u20ac", b"\x80"])


# --------------------------------------------------------------------------

def _variants(obj, kind, proto):
    """[(tag, bytes or exception)] for one graph at one protocol."""
    res = []
    if kind == "pers":
        makers = [("c", lambda: _dumps_pers(_CPersPickler, obj, proto)),
                  ("py", lambda: _dumps_pers(_PyPersPickler, obj, proto))]
    elif PY2:
        makers = [("c", lambda: cPickle.dumps(obj, proto)),
                  ("py", lambda: pickle.dumps(obj, proto))]
    else:
        makers = [("c", lambda: pickle.dumps(obj, proto)),
                  ("py", lambda: pickle._dumps(obj, proto))]
    for tag, fn in makers:
        try:
            res.append((tag, fn()))
        except Exception as e:  # this protocol cannot pickle this graph
            res.append((tag, e))
    return res


def generate(outdir, optimize=True, log=None):
    """Write every case; return (written, duplicates, skipped)."""
    _register_extensions()
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    seen = set()
    written = dup = skipped = 0
    for name, obj, kind in cases():
        protos = range(5, HIGHEST + 1) if kind == "p5" else \
            range(0, HIGHEST + 1)
        for proto in protos:
            got = _variants(obj, kind, proto)
            items = []
            for tag, data in got:
                if isinstance(data, BaseException):
                    skipped += 1
                    if log:
                        log("skip %s p%d %s: %s: %s" % (
                            name, proto, tag, type(data).__name__, data))
                    continue
                items.append((tag, data))
            c_data = dict(items).get("c")
            if optimize and c_data is not None:
                try:
                    items.append(("opt", pickletools.optimize(c_data)))
                except Exception as e:
                    skipped += 1
                    if log:
                        log("skip %s p%d opt: %s" % (name, proto, e))
            for tag, data in items:
                h = hashlib.sha256(data).digest()
                if h in seen:
                    dup += 1
                    continue
                seen.add(h)
                fn = os.path.join(outdir, "%s-p%d-%s.pkl" % (name, proto, tag))
                with open(fn, "wb") as f:
                    f.write(data)
                written += 1
    return written, dup, skipped


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--no-optimize", action="store_true",
                    help="do not add pickletools.optimize variants")
    ap.add_argument("--list", action="store_true",
                    help="list the case names and exit")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="say which (case, protocol) pairs were skipped")
    args = ap.parse_args(argv)
    if args.list:
        for name, _, kind in cases():
            print(name if kind == "plain" else "%s (%s)" % (name, kind))
        return 0
    if args.outdir is None:
        ap.error("give OUTDIR")
    log = (lambda m: sys.stderr.write(m + "\n")) if args.verbose else None
    written, dup, skipped = generate(args.outdir, not args.no_optimize, log)
    print("%d pickles written to %s (%d duplicates not written, %d "
          "unpicklable variants skipped; Python %d.%d, protocols 0-%d)"
          % (written, args.outdir, dup, skipped, sys.version_info[0],
             sys.version_info[1], HIGHEST))
    return 0


if __name__ == "__main__":
    _reexec_with_fixed_hash_seed()
    sys.exit(main(sys.argv[1:]))
