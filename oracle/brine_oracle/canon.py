"""Canonical text v1 emitter for what CPython's unpicklers built.

Follows docs/canonical-form.md to the byte; libpkl's pkl/canon.c is the
other reference emitter and both must agree.  The emitter is iterative (a
1,000,000-deep list is fine), linear in the graph size plus the sorting of
set elements, and bounded by an output limit (:class:`OutputLimitExceeded`).

The input is the object graph one of the oracle's unpicklers returned: only
built-in values (None, bool, int, float, str, bytes, bytearray, list, tuple,
dict, set, frozenset, memoryview) and the stubs of :mod:`brine_oracle.stubs`
can occur there; anything else is an oracle bug (:class:`CanonBug`).
"""

import hashlib
import re
import struct

from . import stubs

__all__ = ["HEADER", "render", "render_error", "OutputLimitExceeded",
           "CanonBug", "DEFAULT_MAX_OUTPUT", "quote_str", "quote_bytes",
           "scalar_line"]

HEADER = "brine-canonical 1 raw\n"
DEFAULT_MAX_OUTPUT = 1 << 30      # bytes of canonical text, like libpkl
DIGEST_DEPTH = 8
MAX_SPACE_DEPTH = 32              # deeper lines use "@<depth> "
INT64_MIN = -(1 << 63)
INT64_LIMIT = 1 << 63


class OutputLimitExceeded(Exception):
    """The canonical text would be longer than the output limit."""

    def __init__(self, limit):
        Exception.__init__(self, "canonical text exceeds the output limit of "
                                 "%d bytes" % limit)
        self.limit = limit


class CanonBug(Exception):
    """The graph holds something the oracle cannot have produced."""


def render_error(cls):
    """The document of a failed load."""
    return HEADER + "error " + cls + "\n"


# --------------------------------------------------------------------------
# Section 3: quoting

# Everything except 0x20-0x7e minus '"' (0x22) and '\' (0x5c) is escaped.
_NEEDS_ESCAPE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _escape(m):
    c = ord(m.group())
    if c == 0x22:
        return '\\"'
    if c == 0x5c:
        return "\\\\"
    if c < 0x100:
        return "\\x%02x" % c
    if c < 0x10000:
        return "\\u%04x" % c
    return "\\U%08x" % c


def quote_str(s):
    """A str payload: one escape per code point (lone surrogates too)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, s) + '"'


def quote_bytes(b):
    """A bytes/bytearray payload: one escape per byte."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, bytes(b).decode("latin-1")) + '"'


def _int_payload(v):
    if INT64_MIN <= v < INT64_LIMIT:
        return "%d" % v
    if v < 0:
        return "-0x%x" % -v
    return "0x%x" % v


def _float_payload(v):
    return struct.pack(">d", v).hex()


# --------------------------------------------------------------------------
# Node kinds

_SCALAR = 0      # none bool int float str bytes: never labelled
_UNLABELLED = 1  # empty tuple, empty frozenset: printed in full, no label
_NODE = 2        # everything else: labelled when shared


def _kind(o):
    """(kind name, class) of an object in the loaded graph."""
    t = type(o)
    if o is None:
        return "none", _SCALAR
    if t is bool:
        return "bool", _SCALAR
    if t is int:
        return "int", _SCALAR
    if t is float:
        return "float", _SCALAR
    if t is str:
        return "str", _SCALAR
    if t is bytes:
        return "bytes", _SCALAR
    if t is list:
        return "list", _NODE
    if t is tuple:
        return "tuple", (_NODE if o else _UNLABELLED)
    if t is dict:
        return "dict", _NODE
    if t is set:
        return "set", _NODE
    if t is frozenset:
        return "frozenset", (_NODE if o else _UNLABELLED)
    if t is bytearray:
        return "bytearray", _NODE
    if t is stubs.StubObj:
        return o._brine_rec.kind, _NODE
    if isinstance(o, stubs.StubMeta):
        return "global", _NODE
    if t is memoryview:
        return "memoryview", _NODE
    raise CanonBug("unexpected %s object in a loaded graph" % t.__name__)


def scalar_line(o):
    """H(n) of a scalar, e.g. 'int 5', 'str "a"' (None when not scalar)."""
    t = type(o)
    if o is None:
        return "none"
    if t is bool:
        return "bool true" if o else "bool false"
    if t is int:
        return "int " + _int_payload(o)
    if t is float:
        return "float " + _float_payload(o)
    if t is str:
        return "str " + quote_str(o)
    if t is bytes:
        return "bytes " + quote_bytes(o)
    return None


class _Slot(object):
    """A slot line (.args, .kwargs, .build, .append, .setitem, .add) and its
    children.  ``key`` identifies it for the digest memo: (id(owner), i)."""

    __slots__ = ("name", "children", "key")

    def __init__(self, name, children, key):
        self.name = name
        self.children = children
        self.key = key


_MUT_SLOT = {"build": ".build", "append": ".append", "setitem": ".setitem",
             "add": ".add"}


class _Emitter(object):

    def __init__(self, max_output):
        self.max_output = max_output
        self.dmemo = {}          # (id or slot key, depth) -> digest bytes
        self.hmemo = {}          # id -> H(n) of str/bytes/bytearray/int...
        self.set_orders = {}     # id(set) -> ordered element list
        self.keep = []           # objects whose id() we key on, kept alive

    # ---- structure ------------------------------------------------------

    def head(self, o):
        """H(n): the line of a node without indentation and label."""
        if type(o) is _Slot:
            return o.name
        k = id(o)
        h = self.hmemo.get(k)
        if h is not None:
            return h
        h = scalar_line(o)
        if h is None:
            kind, _ = _kind(o)
            if kind == "global":
                rec = stubs.stub_record(o)
                h = "global %s %s" % (quote_str(rec.module),
                                      quote_str(rec.name))
            elif kind == "bytearray":
                h = "bytearray " + quote_bytes(o)
            else:
                h = kind
        if type(o) in (str, bytes, bytearray, int) and len(h) > 64:
            self.hmemo[k] = h
            self.keep.append(o)
        return h

    def children(self, o):
        """What is printed under a node or slot, in output order."""
        t = type(o)
        if t is _Slot:
            return o.children
        if t is list or t is tuple:
            return o
        if t is dict:
            out = []
            for k, v in o.items():
                out.append(k)
                out.append(v)
            return out
        if t is set or t is frozenset:
            return self.set_order(o)
        if t is memoryview:
            return [o.obj]
        rec = stubs.stub_record(o)
        if rec is None:
            return ()
        out = []
        oid = id(o)
        if rec.kind != "global":
            out.append(rec.target)
            if rec.kind != "persid":
                if rec.args:
                    out.append(_Slot(".args", list(rec.args), (oid, -1)))
                if rec.kwargs:
                    kw = []
                    for k, v in rec.kwargs.items():
                        kw.append(k)
                        kw.append(v)
                    out.append(_Slot(".kwargs", kw, (oid, -2)))
        for i, m in enumerate(rec.muts):
            out.append(_Slot(_MUT_SLOT[m[0]], list(m[1:]), (oid, i)))
        return out

    # ---- section 5: set order -------------------------------------------

    def set_order(self, s):
        order = self.set_orders.get(id(s))
        if order is None:
            order = self.sorted_elements(s, 1)
            self.set_orders[id(s)] = order
        return order

    def sorted_elements(self, s, level):
        scal = []
        other = []
        for e in s:
            h = scalar_line(e)
            if h is not None:
                scal.append((h, e))
            else:
                other.append((self.digest(e, level), e))
        scal.sort(key=lambda p: p[0])
        other.sort(key=lambda p: p[0])
        return [e for _, e in scal] + [e for _, e in other]

    def digest(self, n, d):
        """D(n, d) of section 5 (bytes).  Recursion is bounded by 8."""
        key = ((n.key if type(n) is _Slot else id(n)), d)
        dg = self.dmemo.get(key)
        if dg is not None:
            return dg
        text = self.head(n)
        if d < DIGEST_DEPTH:
            t = type(n)
            if t is set or t is frozenset:
                kids = self.sorted_elements(n, d + 1) if n else ()
            else:
                kids = self.children(n)
            if kids:
                parts = []
                for c in kids:
                    h = scalar_line(c) if type(c) is not _Slot else None
                    if h is None:
                        h = self.digest(c, d + 1).hex()
                    parts.append(h)
                text = text + "(" + ",".join(parts) + ")"
        dg = hashlib.sha256(text.encode("ascii")).digest()
        self.dmemo[key] = dg
        if type(n) is not _Slot:
            self.keep.append(n)
        return dg

    # ---- sections 2 and 4: count, then print ----------------------------

    def count(self, root):
        """In-degree of every labellable node, saturating at 2."""
        indeg = {}
        stack = [root]
        while stack:
            o = stack.pop()
            if type(o) is not _Slot:
                if _kind(o)[1] != _NODE:
                    continue
                k = id(o)
                n = indeg.get(k, 0)
                if n >= 2:
                    continue
                indeg[k] = n + 1
                if n:
                    continue
            stack.extend(self.children(o))
        return indeg

    def emit(self, root):
        indeg = self.count(root)
        labels = {}
        out = [HEADER]
        size = len(HEADER)
        limit = self.max_output
        if size > limit:
            raise OutputLimitExceeded(limit)
        next_label = 0
        # Stack of (object, depth), children pushed in reverse.
        stack = [(root, 0)]
        while stack:
            o, depth = stack.pop()
            if depth <= MAX_SPACE_DEPTH:
                ind = "  " * depth
            else:
                ind = "@%d " % depth
            is_slot = type(o) is _Slot
            walk = True
            if is_slot:
                line = o.name
            else:
                h = scalar_line(o)
                if h is not None:
                    line = h
                    walk = False
                else:
                    kind, cls = _kind(o)
                    line = self.head(o)
                    if cls == _NODE:
                        k = id(o)
                        lab = labels.get(k)
                        if lab is not None:
                            line = "ref #%d" % lab
                            walk = False
                        elif indeg.get(k, 0) >= 2:
                            next_label += 1
                            labels[k] = next_label
                            line = "%s #%d" % (line, next_label)
            text = ind + line + "\n"
            size += len(text)
            if size > limit:
                raise OutputLimitExceeded(limit)
            out.append(text)
            if walk:
                kids = self.children(o)
                if kids:
                    d1 = depth + 1
                    for c in reversed(kids):
                        stack.append((c, d1))
        return "".join(out)


def render(root, max_output=DEFAULT_MAX_OUTPUT):
    """The canonical text (raw level) of a loaded object graph."""
    return _Emitter(max_output).emit(root)
