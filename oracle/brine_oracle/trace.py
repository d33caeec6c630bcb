"""The safety trace of a load, rendered as docs/adapter-protocol.md says.

    lines = render_trace(result.trace, data)       # "1 global ..." lines

The input is the ordered event list a :class:`brine_oracle.stubs.Session`
kept during the load (also when the load failed later).  One line per
event, numbered from 1 in the order the load performed them::

    N global "module" "name" [as "module" "name"]
    N call T          N new T          N persid
    N build T         N append T       N setitem T       N add T

``T`` is the number of the event that produced the object acted on.  A
global is one stub per distinct (module, name) within a load, so when the
same global is resolved more than once its object is named by the *first*
event that resolved it.

The ``as`` clause names what CPython's own ``find_class`` would really have
imported when that differs from what the pickle spelled: the py2 -> py3
renaming of ``_compat_pickle`` (``NAME_MAPPING``, else ``IMPORT_MAPPING``),
which CPython applies only while the protocol in effect is below 3
(``fix_imports`` is on by default).  EXT codes are reported with the
(module, name) the extension registry gave find_class (the ``as`` clause then
only appears if the py2 renaming applies on top).  A dotted name at protocol
4+ is imported as the module then walked attribute by attribute: the module
and the dotted name are exactly what the line shows, so it takes no ``as``.

The protocol in effect: the pure-Python unpickler exposes it (``self.proto``,
recorded with each global event); the C unpickler does not, so it is
recovered from the input.  A pickle executes linearly, so the k-th
find_class call is made by the k-th global-resolving opcode in stream order
(GLOBAL, INST, STACK_GLOBAL, and EXT1/2/4 with a registered code not already
resolved earlier in the same load: CPython caches EXT results in
``copyreg._extension_cache``).  :func:`scan_protocols` walks the opcodes --
parsing argument *lengths* only, never decoding or loading anything, so it
gets as far as the unpicklers do on malformed input -- and returns the
protocol in effect at each of them; should it ever see fewer such opcodes
than there were calls, the last PROTO it saw stands in.  The scan only runs
when some global of the load has a py2 name, i.e. when the protocol can
change the line.

Under Python 2.7 (brine_oracle.py27) no line takes an ``as`` clause: 2.7
imports exactly the (module, name) it is given, and it has no
``_compat_pickle`` (so the scan never runs there; scan_protocols itself is
Python 3 only).
"""

import pickletools
import struct

from .canon import quote_str

try:
    import copyreg
except ImportError:  # Python 2.7
    import copy_reg as copyreg

try:
    if str is bytes:    # Python 2.7 renames nothing, whatever is installed
        raise ImportError("no py2 -> py3 renaming under Python 2")
    import _compat_pickle
    _NAME_MAPPING = _compat_pickle.NAME_MAPPING
    _IMPORT_MAPPING = _compat_pickle.IMPORT_MAPPING
except ImportError:  # Python 2.7: no renaming, hence no `as` clause
    _NAME_MAPPING = {}
    _IMPORT_MAPPING = {}

try:
    _TEXT = unicode  # noqa: F821 - Python 2.7
except NameError:
    _TEXT = str

__all__ = ["render_trace", "render_trace_lines", "scan_protocols",
           "iter_ops", "py3_name", "TraceBug", "TRACE_MARKER"]

TRACE_MARKER = "--- trace\n"


class TraceBug(Exception):
    """An event names an object no earlier event produced (oracle bug)."""


# --------------------------------------------------------------------------
# Argument lengths, from pickletools' opcode table (the interpreter's own)

_SKIP_NONE = 0        # no argument
_SKIP_FIXED = 1       # n bytes
_SKIP_LINE = 2        # up to and including "\n"
_SKIP_TWO_LINES = 3   # GLOBAL, INST
_SKIP_COUNTED = 4     # a length of n bytes (little-endian) then that many

_PROTO = 0x80
_STOP = 0x2e
_RESOLVING = frozenset([ord("c"), ord("i"), 0x93])   # GLOBAL INST STACK_GLOBAL
_EXT = {0x82: (1, False), 0x83: (2, False), 0x84: (4, True)}


def _build_table():
    table = {}
    for op in pickletools.opcodes:
        code = ord(op.code)
        a = op.arg
        if a is None:
            table[code] = (_SKIP_NONE, 0, False)
        elif a.n >= 0:
            table[code] = (_SKIP_FIXED, a.n, False)
        elif a.n == pickletools.UP_TO_NEWLINE:
            if a.name == "stringnl_noescape_pair":
                table[code] = (_SKIP_TWO_LINES, 0, False)
            else:
                table[code] = (_SKIP_LINE, 0, False)
        elif a.n == pickletools.TAKEN_FROM_ARGUMENT1:
            table[code] = (_SKIP_COUNTED, 1, False)
        elif a.n == pickletools.TAKEN_FROM_ARGUMENT4:
            table[code] = (_SKIP_COUNTED, 4, True)
        elif a.n == pickletools.TAKEN_FROM_ARGUMENT4U:
            table[code] = (_SKIP_COUNTED, 4, False)
        elif a.n == pickletools.TAKEN_FROM_ARGUMENT8U:
            table[code] = (_SKIP_COUNTED, 8, False)
        else:  # pragma: no cover - a pickletools we do not know
            raise RuntimeError("unknown argument length %r of %s"
                               % (a.n, op.name))
    return table


_TABLE = _build_table()


def _uint(data, pos, n, signed):
    return int.from_bytes(data[pos:pos + n], "little", signed=signed)


def iter_ops(data):
    """(opcode byte, start, end) of each whole opcode of `data`, argument
    included, in stream order.  Parses argument lengths only; stops after
    STOP, at a byte that is no opcode, or at an opcode the input cuts short
    (the load stops there too)."""
    n = len(data)
    pos = 0
    table = _TABLE
    while pos < n:
        op = data[pos]
        spec = table.get(op)
        if spec is None:
            return
        start = pos
        pos += 1
        how, size, signed = spec
        if how == _SKIP_FIXED:
            pos += size
        elif how == _SKIP_LINE:
            nl = data.find(b"\n", pos)
            if nl < 0:
                return
            pos = nl + 1
        elif how == _SKIP_TWO_LINES:
            nl = data.find(b"\n", pos)
            if nl >= 0:
                nl = data.find(b"\n", nl + 1)
            if nl < 0:
                return
            pos = nl + 1
        elif how == _SKIP_COUNTED:
            if pos + size > n:
                return
            length = _uint(data, pos, size, signed)
            if length < 0:
                return
            pos += size + length
        if pos > n:
            return
        yield op, start, pos
        if op == _STOP:
            return


def scan_protocols(data, need=None):
    """(protocols, last_proto): the protocol in effect at each opcode of
    `data` that makes the unpickler call find_class, in stream order, and the
    last PROTO seen (0 if none).  Stops where iter_ops stops, or once `need`
    such opcodes are found."""
    protos = []
    proto = 0
    seen_ext = set()
    inverted = copyreg._inverted_registry
    for op, start, end in iter_ops(data):
        if op == _PROTO:
            proto = data[start + 1]
        elif op in _RESOLVING:
            protos.append(proto)
        elif op in _EXT:
            size, signed = _EXT[op]
            code = _uint(data, start + 1, size, signed)
            if code in inverted and code not in seen_ext:
                seen_ext.add(code)
                protos.append(proto)
            else:
                continue
        else:
            continue
        if need is not None and len(protos) >= need:
            break
    return protos, proto


def _quick_scan(data):
    """scan_protocols' answer when it is obvious, else None: no 0x80 byte
    at all means no PROTO (protocol 0 throughout); a single 0x80, at offset
    0, is the PROTO every later opcode runs under."""
    i = data.find(b"\x80")
    if i < 0:
        return (), 0
    if i == 0 and data.find(b"\x80", 1) < 0:
        return (), (data[1] if len(data) > 1 else 0)
    return None


def py3_name(module, name):
    """(module, name) CPython's find_class imports for a py2 name below
    protocol 3, or None when the renaming leaves it unchanged."""
    try:
        key = (module, name)
        if key in _NAME_MAPPING:
            mapped = _NAME_MAPPING[key]
        elif module in _IMPORT_MAPPING:
            mapped = (_IMPORT_MAPPING[module], name)
        else:
            return None
    except TypeError:  # unhashable: find_class got something odd
        return None
    if tuple(mapped) == key:
        return None
    return mapped


def _q(s):
    if type(s) is not _TEXT:
        s = _TEXT(s)
    return quote_str(s)


def render_trace_lines(events, data=b""):
    """The trace lines (without newlines) of a Session's event list.
    `data` is the pickle (needed for the C unpickler's global events, which
    carry no protocol)."""
    out = []
    num = {}                  # id(object) -> number of the event making it
    nglobal = 0
    scanned = None
    for i, ev in enumerate(events, 1):
        kind = ev[0]
        if kind == "global":
            module, name, cls = ev[1], ev[2], ev[3]
            k = id(cls)
            if k not in num:
                num[k] = i
            line = "%d global %s %s" % (i, _q(module), _q(name))
            mapped = py3_name(module, name)
            if mapped is not None:
                proto = ev[4] if len(ev) > 4 else None
                if proto is None:
                    if scanned is None:
                        need = sum(1 for e in events if e[0] == "global")
                        scanned = _quick_scan(data) or \
                            scan_protocols(data, need)
                    protos, last = scanned
                    proto = protos[nglobal] if nglobal < len(protos) \
                        else last
                if proto < 3:
                    line = "%s as %s %s" % (line, _q(mapped[0]),
                                            _q(mapped[1]))
            nglobal += 1
        elif kind == "call" or kind == "new":
            t = num.get(id(ev[1]))
            if t is None:
                raise TraceBug("event %d: %s of an unknown object" % (i, kind))
            num[id(ev[2])] = i
            line = "%d %s %d" % (i, kind, t)
        elif kind == "persid":
            num[id(ev[2])] = i
            line = "%d persid" % i
        elif kind == "mutate":
            t = num.get(id(ev[2]))
            if t is None:
                raise TraceBug("event %d: %s on an unknown object"
                               % (i, ev[1]))
            line = "%d %s %d" % (i, ev[1], t)
        else:
            raise TraceBug("event %d: unknown kind %r" % (i, kind))
        out.append(line)
    return out


def render_trace(events, data=b""):
    """The trace as text: one line per event, each ending in a newline."""
    lines = render_trace_lines(events, data)
    if not lines:
        return ""
    return "\n".join(lines) + "\n"
