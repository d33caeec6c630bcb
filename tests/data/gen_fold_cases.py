#!/usr/bin/env python3
"""Write or check tests/data/fold_cases.txt: what the value-level folds
(harness/fold.c) are tested against, all of it produced by CPython.

    gen_fold_cases.py > tests/data/fold_cases.txt
    gen_fold_cases.py --check tests/data/fold_cases.txt

Two kinds of entries:

* values: each Python value of VALUES is pickled at every protocol by every
  CPython found here (2.7 and 3.6+; C and Python picklers), and every pickle
  is loaded by brine's oracle (this interpreter's C unpickler, every global
  stubbed) into raw canonical text. The distinct raw texts of one value are
  recorded with the producers (`cpython-X.Y-c:P`) that gave each. The test
  (tests/test_fold.c) checks that they all fold to one value-level text,
  that this text is the raw text of the newest protocol's pickle (5, where
  bytearray is native; 4 on interpreters without 5), and that different
  values keep different texts. Producers whose pickle CPython itself loads
  to another value (DEVIANT: a pickler bug or a protocol that drops data)
  are listed as `deviant`; their texts must fold to something else.
* crafted: a hand-written pickle (CRAFTED) that no pickler writes, paired
  with the Python expression that performs with real built-ins what the
  pickle asks of stubs. The expression is evaluated here (it is this
  script's own code, never anything read from a pickle): if it returns, the
  expected value text is the oracle's raw text of
  pickle.dumps(result, REF_PROTOCOL);
  if it raises, CPython would refuse the load, and the fold must leave the
  raw text unchanged (`expect unchanged`).

--check regenerates everything with the interpreters found here and
compares: every producer found here must give the recorded text; producers
recorded but absent here are listed as not re-derived (they are kept, not
counted as checked). Exit 0 when all re-derived texts match, 1 otherwise.

Runs on Python 3.6+ (the generator) and 2.7/3.6+ (the pickling helper).
Standard library only. The oracle is imported from this source tree's
`oracle` folder unless already importable.
"""

import argparse
import codecs
import glob
import json
import os
import subprocess
import sys
import pickle
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "oracle"))

from brine_oracle.loader import load_result  # noqa: E402

# The protocol whose raw text is the reference value text: 5 writes every
# built-in natively (bytearray only from 5 on), 4 where 5 does not exist.
REF_PROTOCOL = min(5, pickle.HIGHEST_PROTOCOL)

# Classes and helpers the values use. Runs in the helper's __main__ under
# Python 2.7 and 3.6+, so the classes pickle as __main__.<name> everywhere.
PRELUDE = r'''
import sys, types
PY2 = sys.version_info[0] == 2
TEXT = unicode if PY2 else str

class O(object): pass
class I(int): pass
class S(TEXT): pass
class L(list): pass
class D(dict): pass
class T(tuple): pass
class F(float): pass
class CX(complex): pass
if not PY2:
    class B(bytes): pass
    class NX(object):
        def __getnewargs_ex__(self):
            return ((1,), {"k": u"v"})
    class NX0(object):
        def __getnewargs_ex__(self):
            return ((1,), {})

def with_attrs(o, **kw):
    o.__dict__.update(kw)
    return o

def rec_set(kind):
    o = O()
    s = kind([o])
    o.s = s
    return s

# a global named `set` that is not the built-in
_mod = types.ModuleType("brine_fold_mod")
sys.modules["brine_fold_mod"] = _mod
def _fake_set(*a):
    raise AssertionError("never called")
_fake_set.__module__ = "brine_fold_mod"
_fake_set.__name__ = "set"
if not PY2:
    _fake_set.__qualname__ = "set"
_mod.set = _fake_set

class FakeSet(object):
    def __reduce__(self):
        return (_fake_set, ([1, 2],))
'''

# (name, expression, py3 only). Expressions are Python 2 and 3 source.
VALUES = [
    ("int", "5", False),
    ("bigint", "2 ** 70", False),
    ("str", "u'abc'", False),
    ("scalars", "[None, True, 1.5, u'\\xe9']", False),
    ("list_nested", "[[], [1, [2]]]", False),
    ("dict_plain", "{u'a': [1, 2], u'b': (3,)}", False),
    ("bytes", "b'abc'", True),
    ("bytes_binary", "b'a\\xff\\x00'", True),
    ("bytes_empty", "b''", True),
    ("bytes_shared", "(lambda b: [b, b])(b'xy')", True),
    ("bytes_empty_shared", "(lambda b: [b, b])(b'')", True),
    ("bytearray_empty", "bytearray()", False),
    ("bytearray", "bytearray(b'abc')", False),
    ("bytearray_binary", "bytearray(b'a\\xff\\x00')", False),
    ("bytearray_shared", "(lambda b: [b, b])(bytearray(b'q'))", False),
    ("set_empty", "set()", False),
    ("set_12", "set([1, 2])", False),
    ("set_mixed", "set([1, u'a', (2, 3), frozenset([4]), 2 ** 70])", False),
    ("set_shared", "(lambda s: [s, s])(set([1]))", False),
    ("set_of_bytes", "set([b'a', b'b'])", True),
    ("set_tuple_frozenset", "set([(frozenset([1]), 2)])", False),
    ("frozenset_empty", "frozenset()", False),
    ("frozenset_12", "frozenset([1, 2])", False),
    ("frozenset_nested", "frozenset([frozenset([1]), frozenset(), (frozenset([2]),)])", False),
    ("frozenset_shared", "(lambda s: (s, s))(frozenset([1]))", False),
    ("frozenset_key", "{frozenset([1, 2]): u'v'}", False),
    ("dict_bytes_keys", "{b'a': 1, b'b': set([2])}", True),
    ("obj_empty", "O()", False),
    ("obj_attr", "with_attrs(O(), x=1)", False),
    ("obj_set_attr", "with_attrs(O(), s=set([1]), f=frozenset([2]))", False),
    ("int_sub", "I(5)", False),
    ("str_sub", "S(u'ab')", False),
    ("list_sub", "with_attrs(L([1, 2]), a=3)", False),
    ("dict_sub", "D({1: 2})", False),
    ("tuple_sub", "T((1, 2))", False),
    ("float_sub", "F(1.5)", False),
    ("complex_sub", "CX(1, 2)", False),
    ("bytes_sub", "B(b'x')", True),
    ("newargs_ex", "with_attrs(NX(), z=1)", True),
    ("newargs_ex_no_kwargs", "NX0()", True),
    ("rec_set", "rec_set(set)", False),
    ("rec_frozenset", "rec_set(frozenset)", False),
    ("fake_set_12", "FakeSet()", False),
]

# Producers whose pickle of a value does not load to that value in CPython:
# the test checks that their texts fold to something else (the fold keeps a
# real difference), not that they fold to the value's text.
DEVIANT = {
    "bytearray_shared": (lambda ver, kind, proto: ver in ("3.8", "3.9") and kind == "py" and proto == 5,
                         "pickle.py 3.8/3.9 save_bytearray does not memoize: two bytearrays"),
    "newargs_ex": (lambda ver, kind, proto: proto < 2,
                   "copyreg's protocol 0-1 reduce ignores __getnewargs_ex__: the arguments are lost"),
    "newargs_ex_no_kwargs": (lambda ver, kind, proto: proto < 2,
                             "copyreg's protocol 0-1 reduce ignores __getnewargs_ex__: the arguments are lost"),
}


def deviant_producers(name, producers):
    if name not in DEVIANT:
        return []
    out = []
    for p in producers:
        head, proto = p.rsplit(":", 1)
        _c, ver, kind = head.split("-")
        if DEVIANT[name][0](ver, kind, int(proto)):
            out.append(p)
    return out

# (name, pickle bytes, expression with real built-ins). The comment says
# what the pickle asks for.
CRAFTED = [
    # set([1, 1]): equal elements merge
    ("set_dup", b"c__builtin__\nset\n(](K\x01K\x01etR.", "set([1, 1])"),
    # set([[]]): a list is not hashable
    ("set_unhashable", b"cbuiltins\nset\n(](]etR.", "set([[]])"),
    # set([list()]): the inner call would build a list
    ("set_of_list_call", b"cbuiltins\nset\n(](cbuiltins\nlist\n)RetR.", "set([list()])"),
    # set([tuple([[]])]): the inner tuple holds a list
    ("set_of_tuple_call_with_list", b"cbuiltins\nset\n(](cbuiltins\ntuple\n(](]etRetR.",
     "set([tuple([[]])])"),
    # set([tuple([1]), (1,)]): equal once the call folds
    ("set_tuple_call_dup", b"cbuiltins\nset\n(](cbuiltins\ntuple\n(](K\x01etR(K\x01tetR.",
     "set([tuple([1]), (1,)])"),
    # set([frozenset([1]), frozenset([1])])
    ("set_frozenset_calls_dup",
     b"cbuiltins\nset\n(](cbuiltins\nfrozenset\n(](K\x01etRcbuiltins\nfrozenset\n(](K\x01etRetR.",
     "set([frozenset([1]), frozenset([1])])"),
    # bytearray([1, 255]), bytearray([1, 256])
    ("bytearray_ints", b"cbuiltins\nbytearray\n(](K\x01K\xffetR.", "bytearray([1, 255])"),
    ("bytearray_int_256", b"cbuiltins\nbytearray\n(](K\x01M\x00\x01etR.", "bytearray([1, 256])"),
    # bytearray(); then APPEND 5 on it
    ("bytearray_append", b"cbuiltins\nbytearray\n)R(K\x05e.",
     "(lambda b: (b.append(5), b)[1])(bytearray())"),
    # bytes([0, 127]); bytes((True,))
    ("bytes_ints", b"cbuiltins\nbytes\n(](K\x00K\x7fetR.", "bytes([0, 127])"),
    ("bytes_bool", b"cbuiltins\nbytes\n((\x88ttR.", "bytes((True,))"),
    # _codecs.encode(u'\xe9', 'latin-1'); _codecs.encode(u'\u0100', 'latin1')
    ("encode_latin_dash", b"c_codecs\nencode\n(X\x02\x00\x00\x00\xc3\xa9X\x07\x00\x00\x00latin-1tR.",
     "codecs.encode(u'\\xe9', 'latin-1')"),
    ("encode_not_latin", b"c_codecs\nencode\n(X\x02\x00\x00\x00\xc4\x80X\x06\x00\x00\x00latin1tR.",
     "codecs.encode(u'\\u0100', 'latin1')"),
    # dict([(1, 2), (1, 3)]): the last value wins, the first key stays
    ("dict_pairs", b"cbuiltins\ndict\n(]((K\x01K\x02t(K\x01K\x03tetR.", "dict([(1, 2), (1, 3)])"),
    # dict([[1, 2]]): a pair may be a list
    ("dict_list_pair", b"cbuiltins\ndict\n(]((lK\x01aK\x02aetR.", "dict([[1, 2]])"),
    # dict(); SETITEMS {1: 2}; then SETITEM [] -> 2
    ("dict_setitem", b"cbuiltins\ndict\n)R(K\x01K\x02u.", "{1: 2}"),
    ("dict_unhashable_setitem", b"cbuiltins\ndict\n)R(]K\x02u.", "{}.__setitem__([], 2)"),
    # list((1, 2)); list(); APPENDS 1 2
    ("list_from_tuple", b"cbuiltins\nlist\n((K\x01K\x02ttR.", "list((1, 2))"),
    ("list_append", b"cbuiltins\nlist\n)R(K\x01K\x02e.", "[1, 2]"),
    # tuple([1])
    ("tuple_from_list", b"cbuiltins\ntuple\n(](K\x01etR.", "tuple([1])"),
    # set(); ADDITEMS 2
    ("set_additems", b"\x80\x04cbuiltins\nset\n)R(K\x02\x90.", "set([2])"),
    # set(); APPENDS 1: a set has neither extend nor append
    ("set_append", b"cbuiltins\nset\n)R(K\x01e.", "set().append(1)"),
    # set(); BUILD None: load_build does nothing for a None state
    ("set_build_none", b"\x80\x02cbuiltins\nset\n)RNb.", "set()"),
    # set(); BUILD {'a': 1}: a set has no __dict__ to update
    ("set_build_state", b"\x80\x02cbuiltins\nset\n)R}X\x01\x00\x00\x00aK\x01sb.",
     "setattr(set(), 'a', 1)"),
    # (__builtin__.set, builtins.set): one global after renaming
    ("globals_merge", b"c__builtin__\nset\nq\x00cbuiltins\nset\nq\x01\x86.", "(set, set)"),
    # {__builtin__.set: 1, builtins.set: 2}: one key after renaming, last value
    ("globals_merge_dict_keys", b"(dc__builtin__\nset\nI1\nscbuiltins\nset\nI2\ns.", "{set: 1, set: 2}"),
    # bytes via copy_reg._reconstructor of builtins.object with a state
    ("reconstructor_object_state",
     b"ccopyreg\n_reconstructor\n(cbuiltins\nset\ncbuiltins\nobject\nK\x01tR.",
     "copyreg._reconstructor(set, object, 1)"),
]

HELPER = r'''
import json, sys
PY2 = sys.version_info[0] == 2
if PY2:
    import cPickle, pickle
    picklers = [("c", cPickle.dumps), ("py", pickle.dumps)]
else:
    import pickle
    picklers = [("c", pickle.dumps), ("py", pickle._dumps)]
import binascii
spec = json.loads(sys.stdin.read())
exec(spec["prelude"])
out = []
for name, expr, py3only in spec["values"]:
    if py3only and PY2:
        continue
    value = eval(expr)
    for pname, dumps in picklers:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            data = dumps(value, proto)
            out.append([name, pname, proto, binascii.hexlify(data).decode("ascii")])
sys.stdout.write(json.dumps({"version": "%d.%d" % sys.version_info[:2], "pickles": out}))
'''


def interpreters():
    """Every distinct CPython X.Y found: pyenv's, then Debian's python3."""
    found = {}
    cands = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python")))
    cands += ["/usr/bin/python3", sys.executable]
    for c in cands:
        if not os.access(c, os.X_OK):
            continue
        try:
            v = subprocess.check_output([c, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                        stderr=subprocess.DEVNULL).decode().strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if v == "2.7" or tuple(int(x) for x in v.split(".")) >= (3, 6):
            found.setdefault(v, c)
    return sorted(found.items(), key=lambda kv: tuple(int(x) for x in kv[0].split(".")))


def raw_text(data, what):
    r = load_result(data, "c")
    if not r.ok:
        raise SystemExit("gen_fold_cases: the oracle rejects %s: %s" % (what, r.message()))
    lines = r.text.split("\n", 1)
    if lines[0] != "brine-canonical 1 raw":
        raise SystemExit("gen_fold_cases: unexpected header for %s" % what)
    return lines[1]


def pickle_everywhere():
    """{value name: {producer: raw text}} and the producers' versions."""
    texts = {name: {} for name, _e, _p in VALUES}
    versions = []
    spec = json.dumps({"prelude": PRELUDE, "values": VALUES})
    for version, exe in interpreters():
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(HELPER)
            helper = f.name
        try:
            # a set pickled at protocol 0-3 lists its elements in iteration
            # order, which depends on str/bytes hashing: pin the seed
            env = dict(os.environ, PYTHONHASHSEED="0")
            p = subprocess.run([exe, helper], input=spec.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
        finally:
            os.unlink(helper)
        if p.returncode != 0:
            raise SystemExit("gen_fold_cases: pickling under %s failed:\n%s"
                             % (exe, p.stderr.decode(errors="replace")))
        res = json.loads(p.stdout.decode())
        versions.append(res["version"])
        for name, pname, proto, hexdata in res["pickles"]:
            producer = "cpython-%s-%s:%d" % (res["version"], pname, proto)
            texts[name][producer] = raw_text(bytes.fromhex(hexdata), "%s by %s" % (name, producer))
    return texts, versions


def crafted_entries():
    import copyreg  # noqa: F401  (expressions use it)
    env = {"codecs": codecs, "copyreg": copyreg}
    out = []
    for name, data, expr in CRAFTED:
        raw = raw_text(data, "crafted %s" % name)
        try:
            value = eval(expr, env)
        except Exception as e:  # noqa: B902 - the point: does CPython refuse it?
            out.append((name, data, expr, raw, None, type(e).__name__))
            continue
        out.append((name, data, expr, raw, raw_text(pickle.dumps(value, REF_PROTOCOL),
                                                     "reference pickle of " + expr), None))
    return out


def escape(data):
    out = []
    for b in bytearray(data):
        if 0x20 <= b < 0x7f and b not in (0x5c,):
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def body_lines(text):
    return ["| " + l for l in text.split("\n")[:-1]]


def render(texts, versions, crafted):
    w = []
    w.append("# Fold cases for tests/test_fold.c. GENERATED by tests/data/gen_fold_cases.py:")
    w.append("# do not edit; regenerate with that script (see its docstring).")
    w.append("# oracle: brine_oracle, C unpickler, CPython %d.%d.%d" % sys.version_info[:3])
    w.append("# picklers: CPython %s (C and Python picklers, every protocol)" % ", ".join(versions))
    w.append("#")
    w.append("# == <name>         one entry; `expr` the Python value or expression")
    w.append("# kind value|crafted; crafted entries add `pickle` (escaped bytes) and")
    w.append("# `expect value` (fold must give the `-- value` text) or `expect unchanged")
    w.append("# <exception>` (CPython raises; the fold must leave the raw text as it is)")
    w.append("# deviant <producers>: <why>   their pickle loads to another value in CPython")
    w.append("# crafted reference texts: pickle.dumps(result, %d)" % REF_PROTOCOL)
    w.append("# -- <producers>    a raw text (lines after it, each prefixed `| `) and who")
    w.append("#                   gave it: cpython-X.Y-c|py:<protocols, e.g. 0-2,4>, or")
    w.append("#                   `crafted` / `value`")
    for name, expr, _p in VALUES:
        w.append("")
        w.append("== %s" % name)
        w.append("kind value")
        w.append("expr %s" % expr)
        dev = deviant_producers(name, texts[name])
        if dev:
            w.append("deviant %s: %s" % (compact(dev), DEVIANT[name][1]))
        by_text = {}
        for producer, text in texts[name].items():
            by_text.setdefault(text, []).append(producer)
        for text in sorted(by_text, key=lambda t: min(producer_key(p) for p in by_text[t])):
            w.append("-- %s" % compact(by_text[text]))
            w.extend(body_lines(text))
    for name, data, expr, raw, value, exc in crafted:
        w.append("")
        w.append("== crafted_%s" % name)
        w.append("kind crafted")
        w.append("expr %s" % expr)
        w.append("pickle %s" % escape(data))
        w.append("expect value" if exc is None else "expect unchanged %s" % exc)
        w.append("-- crafted")
        w.extend(body_lines(raw))
        if value is not None:
            w.append("-- value")
            w.extend(body_lines(value))
    return "\n".join(w) + "\n"


def producer_key(p):
    head, proto = p.rsplit(":", 1)
    _c, ver, kind = head.split("-")
    return (tuple(int(x) for x in ver.split(".")), kind, int(proto))


def compact(producers):
    """cpython-3.8-c:0 ... cpython-3.8-c:5 -> cpython-3.8-c:0-5 (runs of
    protocols joined with '-', others with ',')."""
    groups = {}
    for p in producers:
        head, proto = p.rsplit(":", 1)
        groups.setdefault(head, []).append(int(proto))
    out = []
    for head in sorted(groups, key=lambda h: producer_key(h + ":0")):
        ps = sorted(groups[head])
        runs, start = [], ps[0]
        for a, b in zip(ps, ps[1:] + [None]):
            if b != a + 1:
                runs.append(str(start) if start == a else "%d-%d" % (start, a))
                start = b
        out.append("%s:%s" % (head, ",".join(runs)))
    return " ".join(out)


def expand(token):
    head, protos = token.rsplit(":", 1)
    out = []
    for part in protos.split(","):
        a, _, b = part.partition("-")
        out.extend("%s:%d" % (head, p) for p in range(int(a), int(b or a) + 1))
    return out


def parse(text):
    """{entry name: {producer: raw text}} of a rendered file (crafted entries
    keyed by their whole block)."""
    entries, cur, prod, lines = {}, None, None, []

    def flush():
        if cur is not None and prod is not None:
            for p in prod:
                entries[cur][p] = "".join(lines)

    for l in text.split("\n"):
        if l.startswith("== "):
            flush()
            cur, prod, lines = l[3:], None, []
            entries[cur] = {}
        elif l.startswith("-- "):
            flush()
            prod, lines = [], []
            for tok in l[3:].split():
                prod.extend(expand(tok) if ":" in tok else [tok])
        elif l.startswith("| "):
            lines.append(l[2:] + "\n")
        elif cur is not None and l and not l.startswith("#"):
            flush()
            entries[cur][l.split(" ", 1)[0]] = l
            prod, lines = None, []
    flush()
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", metavar="FILE")
    a = ap.parse_args()
    texts, versions = pickle_everywhere()
    fresh = render(texts, versions, crafted_entries())
    if not a.check:
        sys.stdout.write(fresh)
        return 0
    with open(a.check) as f:
        old = parse(f.read())
    new = parse(fresh)
    bad = checked = 0
    kept = set()
    for name, prods in sorted(new.items()):
        if name not in old:
            print("FAIL entry %s is not in %s" % (name, a.check))
            bad += 1
            continue
        for p, t in sorted(prods.items()):
            if p not in old[name]:
                print("note %s: producer %s is not recorded (a newer interpreter?)" % (name, p))
                continue
            checked += 1
            if old[name][p] != t:
                print("FAIL %s: %s now gives another text" % (name, p))
                bad += 1
        kept.update(p for p in old[name] if p not in prods)
    for name in sorted(set(old) - set(new)):
        print("FAIL entry %s is recorded but no longer generated" % name)
        bad += 1
    if kept:
        print("not re-derived here (kept as recorded): %s" % " ".join(sorted(kept, key=str)))
    print("%d texts re-derived, %d differ" % (checked, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
