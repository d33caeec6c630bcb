"""Canonical text v1 emitter for what CPython's unpicklers built.

Follows docs/canonical-form.md to the byte; libpkl's pkl/canon.c is the
other reference emitter and both must agree.  The emitter is iterative (a
1,000,000-deep list is fine), linear in the graph size plus the sorting of
set elements, and bounded by an output limit (:class:`OutputLimitExceeded`).

The input is the object graph one of the oracle's unpicklers returned: only
built-in values (None, bool, int, float, str, bytes, bytearray, list, tuple,
dict, set, frozenset, memoryview) and the stubs of :mod:`brine_oracle.stubs`
can occur there; anything else is an oracle bug (:class:`CanonBug`).

Also runs under Python 2.7 (brine_oracle.py27), where the py2 types map to
the canonical kinds as Python 3 would name them: ``unicode`` is ``str``,
``str`` is ``bytes`` and ``long`` is ``int`` (docs/oracle-py27.md).
"""

import hashlib
import itertools
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

try:  # Python 2.7: a py2 str is canonical bytes, unicode is str
    _TEXT = unicode      # noqa: F821
    _LONG = long         # noqa: F821
except NameError:
    _TEXT = str

    class _LONG(object):
        """Stands for py2's long: no Python 3 object has this type."""

# A 2.7 dict has no insertion order (it iterates in hash-table order, and
# stub keys hash by address): its keys are ordered like set elements
# instead (docs/oracle-py27.md).  Python 3: insertion order, section 2.
_UNORDERED_DICTS = _TEXT is not str

_hex = getattr(bytes, "hex", None)
if _hex is None:  # Python 2.7
    import binascii
    _hex = binascii.hexlify


class OutputLimitExceeded(Exception):
    """The canonical text would be longer than the output limit."""

    def __init__(self, limit):
        Exception.__init__(self, "canonical text exceeds the output limit of "
                                 "%d bytes" % limit)
        self.limit = limit


class CanonBug(Exception):
    """The graph holds something the oracle cannot have produced.
    ``obj`` is that object when known (brine_oracle.py27 recognises the
    mark object 2.7's pure-Python unpickler can leave in a graph)."""

    obj = None


def render_error(cls):
    """The document of a failed load."""
    return HEADER + "error " + cls + "\n"


# --------------------------------------------------------------------------
# Section 3: quoting

# Everything except 0x20-0x7e minus '"' (0x22) and '\' (0x5c) is escaped.
_NEEDS_ESCAPE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _escape(m):
    return _escape_cp(ord(m.group()))


def _escape_cp(c):
    if c == 0x22:
        return '\\"'
    if c == 0x5c:
        return "\\\\"
    if c < 0x100:
        return "\\x%02x" % c
    if c < 0x10000:
        return "\\u%04x" % c
    return "\\U%08x" % c


# Fast path (same output as _NEEDS_ESCAPE.sub(_escape, s)): the ASCII
# characters that need an escape go through str.translate, everything at or
# above 0x80 through the "backslashreplace" error handler, whose \\xNN,
# \\uNNNN and \\UNNNNNNNN escapes (lowercase hex, lone surrogates included)
# are exactly section 3's.
_ASCII_ESCAPES = dict((c, _escape_cp(c)) for c in
                      list(range(0x20)) + [0x22, 0x5c, 0x7f])
_isascii = getattr(str, "isascii", None)    # Python 3.7+


def quote_str(s):
    """A str payload: one escape per code point (lone surrogates too)."""
    if not s.isprintable() or '"' in s or "\\" in s:
        s = s.translate(_ASCII_ESCAPES)
    if _isascii is None or not _isascii(s):
        s = s.encode("ascii", "backslashreplace").decode("ascii")
    return '"' + s + '"'


if not hasattr(_TEXT, "isprintable"):
    # Python 2.7: unicode has no isprintable(); the regex path.  (A narrow
    # 2.7 build holds astral characters as surrogate pairs and prints them
    # so; pyenv's and Debian's builds are wide.)
    def quote_str(s):   # noqa: F811
        """A str payload: one escape per code point (lone surrogates too)."""
        return '"' + _NEEDS_ESCAPE.sub(_escape, s) + '"'


def quote_bytes(b):
    """A bytes/bytearray payload: one escape per byte."""
    if type(b) is not bytes and type(b) is not bytearray:
        b = bytes(b)
    return quote_str(b.decode("latin-1"))


def _int_payload(v):
    if INT64_MIN <= v < INT64_LIMIT:
        return "%d" % v
    if v < 0:
        return "-0x%x" % -v
    return "0x%x" % v


_pack_double = struct.Struct(">d").pack


def _float_payload(v):
    return _hex(_pack_double(v))


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
    if t is int or t is _LONG:
        return "int", _SCALAR
    if t is float:
        return "float", _SCALAR
    if t is _TEXT:
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
    bug = CanonBug("unexpected %s object in a loaded graph" % t.__name__)
    bug.obj = o
    raise bug


def scalar_line(o):
    """H(n) of a scalar, e.g. 'int 5', 'str "a"' (None when not scalar)."""
    t = type(o)
    if o is None:
        return "none"
    if t is bool:
        return "bool true" if o else "bool false"
    if t is int or t is _LONG:
        return "int " + _int_payload(o)
    if t is float:
        return "float " + _float_payload(o)
    if t is _TEXT:
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
        self.dict_orders = {}    # id(dict) -> key, value ... (2.7 only)
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
        if type(o) in (_TEXT, bytes, bytearray, int, _LONG) and len(h) > 64:
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
            if _UNORDERED_DICTS:
                return self.dict_order(o)
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

    def dict_order(self, d):
        """Key, value ... of a 2.7 dict, keys in set-element order (level
        1); see _UNORDERED_DICTS."""
        order = self.dict_orders.get(id(d))
        if order is None:
            scal = []
            other = []
            for k, v in d.items():
                h = scalar_line(k)
                if h is not None:
                    scal.append((h, k, v))
                else:
                    other.append((self.digest(k, 1), k, v))
            scal.sort(key=lambda p: p[0])
            other.sort(key=lambda p: p[0])
            order = []
            for _, k, v in scal + other:
                order.append(k)
                order.append(v)
            self.dict_orders[id(d)] = order
            self.keep.append(d)
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
                        h = _hex(self.digest(c, d + 1))
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
        """The document, in one walk.

        Same output as counting in-degrees first and labelling on the way
        (section 4): the walk is the pre-order of the output, which expands
        every node's children exactly once, so a node is shared exactly when
        the walk meets it a second time.  Its first line (already written)
        and its ref lines are then patched at the end: labels are numbered
        in the order of those first lines.  The output size is checked every
        _CHECK_EVERY lines on the way, as a lower bound (labels not yet
        counted), and exactly at the end."""
        limit = self.max_output
        out = [HEADER]
        if len(HEADER) > limit:
            raise OutputLimitExceeded(limit)
        size = 0            # of out[:checked], plus the refs' minimum
        checked = 0
        check_at = _CHECK_EVERY
        first = {}          # id(node) -> index in out of its first line
        refs = []           # (index in out, id(node)) of ref lines
        head = self.head
        children = self.children
        append = out.append
        indents = _INDENTS
        n_indents = len(indents)
        int_min = INT64_MIN
        int_limit = INT64_LIMIT
        slot_t = _Slot
        text_t = _TEXT
        unordered = _UNORDERED_DICTS
        qcache = _QUOTE_CACHE
        # Each stack entry: (iterator over the children, their depth).  The
        # inner loop prints the scalars in place and descends (break) at
        # the first child that has children of its own.
        stack = [(iter((root,)), 0)]
        push = stack.append
        while stack:
            if len(out) >= check_at:
                size += sum(map(len, out[checked:]))
                checked = len(out)
                check_at = checked + _CHECK_EVERY
                if size > limit:
                    raise OutputLimitExceeded(limit)
            it, depth = stack[-1]
            ind = indents[depth] if depth < n_indents else "@%d " % depth
            for o in it:
                t = type(o)
                if t is text_t:
                    q = qcache.get(o)
                    if q is None:
                        q = quote_str(o)
                        if len(o) <= 64:
                            if len(qcache) >= _QUOTE_CACHE_MAX:
                                qcache.clear()
                            qcache[o] = q
                    append(ind + "str " + q + "\n")
                elif t is int:
                    if int_min <= o < int_limit:
                        append("%sint %d\n" % (ind, o))
                    else:
                        append(ind + "int " + _int_payload(o) + "\n")
                elif t is slot_t:
                    append(ind + o.name + "\n")
                    if o.children:
                        push((iter(o.children), depth + 1))
                        break
                elif t is float:
                    append(ind + "float " + _hex(_pack_double(o)) + "\n")
                elif o is None:
                    append(ind + "none\n")
                elif t is bool:
                    append(ind + ("bool true\n" if o else "bool false\n"))
                elif t is bytes:
                    append(ind + "bytes " + quote_bytes(o) + "\n")
                elif t is _LONG:
                    append(ind + "int " + _int_payload(o) + "\n")
                elif (t is tuple or t is frozenset) and not o:
                    # never labelled (section 4)
                    append(ind + ("tuple\n" if t is tuple else "frozenset\n"))
                else:
                    k = id(o)
                    if k in first:
                        refs.append((len(out), k))
                        append(ind)
                        size += 7       # "ref #" digit(s) "\n"
                        continue
                    first[k] = len(out)
                    if t is list:
                        append(ind + "list\n")
                        kids = o
                    elif t is dict:
                        append(ind + "dict\n")
                        kids = self.dict_order(o) if unordered else \
                            _chain_items(o.items())
                    elif t is tuple:
                        append(ind + "tuple\n")
                        kids = o
                    else:
                        append(ind + head(o) + "\n")
                        kids = children(o)
                    if kids:
                        push((iter(kids), depth + 1))
                        break
                if len(out) >= check_at:
                    break       # check the size (the while loop resumes it)
            else:
                stack.pop()
        size += sum(map(len, out[checked:]))
        if size > limit:
            raise OutputLimitExceeded(limit)
        if refs:
            shared = sorted(set(k for _, k in refs), key=first.__getitem__)
            labels = {}
            for n, k in enumerate(shared, 1):
                labels[k] = n
                i = first[k]
                line = out[i]
                lab = " #%d\n" % n
                out[i] = line[:-1] + lab
                size += len(lab) - 1
            for i, k in refs:
                text = "%sref #%d\n" % (out[i], labels[k])
                size += len(text) - len(out[i]) - 7
                out[i] = text
            if size > limit:
                raise OutputLimitExceeded(limit)
        return "".join(out)

# quote_str of short strings seen recently (dict keys repeat a lot)
_QUOTE_CACHE = {}
_QUOTE_CACHE_MAX = 4096
_CHECK_EVERY = 512        # lines between two output size checks
_INDENTS = tuple("  " * d for d in range(MAX_SPACE_DEPTH + 1))


# key, value, key, value ... of dict items (an iterator, always truthy)
_chain_items = itertools.chain.from_iterable


def render(root, max_output=DEFAULT_MAX_OUTPUT):
    """The canonical text (raw level) of a loaded object graph."""
    return _Emitter(max_output).emit(root)
