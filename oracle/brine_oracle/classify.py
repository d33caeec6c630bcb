"""Map an exception from CPython's unpicklers to brine's error taxonomy.

The classes are those of docs/canonical-form.md section 1 (libpkl's
``pkl_code`` names).  The mapping is built from the messages of
``Modules/_pickle.c`` (C unpickler) and ``Lib/pickle.py`` (``_Unpickler``)
of CPython 3.6 ... 3.13, each triggered by tests/oracle/test_oracle.py.

Two steps:

1. **Context rules** (:func:`_context_rule`) for faults that the two
   unpicklers report differently, or that one of them reports with an
   exception that cannot be told apart by its message alone.  They use what
   the loader observed (see :class:`LoadInfo`): for the Python unpickler the
   pickle.py function the exception came from, whether a read came back short
   and the last text line read; for the C unpickler a rerun (through a
   plain file, for the input position, or with the Python unpickler).
2. **The table** (:data:`TABLE`): exception type + message pattern -> class,
   first match wins.  Anything unmatched is ``internal`` (and the loader says
   which exception it was, so the table can be extended).

Where the C and Python unpicklers raise different exceptions for the same
fault, both land in the same class; the comments say which is which.
"""

import pickle
import re
import struct

from .stubs import StubBug

try:
    RecursionError
except NameError:  # Python 2.7 (which classifies with brine_oracle.py27)
    RecursionError = RuntimeError

TRUNCATED = "truncated"
BAD_OPCODE = "bad-opcode"
STACK_UNDERFLOW = "stack-underflow"
MARK_MISSING = "mark-missing"
MEMO_MISSING = "memo-missing"
BAD_ARGUMENT = "bad-argument"
UNSUPPORTED_PROTOCOL = "unsupported-protocol"
TYPE_ERROR = "type-error"
UNKNOWN_EXTENSION = "unknown-extension"
NO_BUFFERS = "no-buffers"
RESOURCE_LIMIT = "resource-limit"
FORBIDDEN = "forbidden"
INTERNAL = "internal"

CLASSES = (TRUNCATED, BAD_OPCODE, STACK_UNDERFLOW, MARK_MISSING, MEMO_MISSING,
           BAD_ARGUMENT, UNSUPPORTED_PROTOCOL, TYPE_ERROR, UNKNOWN_EXTENSION,
           NO_BUFFERS, RESOURCE_LIMIT, FORBIDDEN, INTERNAL)

UE = pickle.UnpicklingError   # the C module raises the very same class


class LoadInfo(object):
    """What the loader saw of a failed load (all optional).

    unpickler   "c" or "py"
    data        the pickle bytes
    rerun       c: rerun(data, plain_file) loads again to disambiguate a
                message (see loader._c_rerun): with plain_file=True it
                returns (exception, input offset after the failure), else
                (exception, LoadResult) of the Python unpickler
    short_read  py: a read returned fewer bytes than asked, or a text line
                ended at EOF without its newline (C fails right there with
                "pickle data was truncated"; the Python unpickler carries on
                with the short data and fails later, or not at all)
    last_line   py: the last line the unpickler read, newline included
    """

    def __init__(self, unpickler="c", data=b"", rerun=None,
                 short_read=False, last_line=None):
        self.unpickler = unpickler
        self.data = data
        self.rerun = rerun
        self.short_read = short_read
        self.last_line = last_line


# --------------------------------------------------------------------------
# The table.  (exception types, message regex or None, class, note)
# Messages are matched with re.search against str(exception).  Patterns
# for ValueError are anchored at the start: int()/float() echo their
# argument in the message ("invalid literal for int() with base 10:
# 'unsupported pickle protocol'"), so an unanchored pattern would let a
# pickle choose its own class.

TABLE = [
    # ---- truncated ------------------------------------------------------
    ((EOFError,), None, TRUNCATED,
     "C: 'Ran out of input' when the input ends at an opcode boundary; "
     "py: bare EOFError from load()"),
    ((UE,), r"pickle data was truncated", TRUNCATED,
     "C: input ended inside an opcode's argument, or an empty text line "
     "where a line argument is needed (len < 2 checks)"),
    ((UE,), r"pickle exhausted before end of frame", TRUNCATED,
     "py only: a read crossed the end of the current FRAME (the C unpickler "
     "does not track frame ends)"),
    ((struct.error,), None, TRUNCATED,
     "py: struct.unpack of a short read (normally caught by short_read)"),
    ((IndexError,), r"^index out of range$", TRUNCATED,
     "py: self.read(1)[0] on an empty read (normally caught by short_read)"),

    # ---- bad-opcode -----------------------------------------------------
    ((UE,), r"^invalid load key", BAD_OPCODE,
     "C: a byte that is not an opcode (py: KeyError from dispatch, see the "
     "context rules)"),

    # ---- stack-underflow / mark-missing ---------------------------------
    ((UE,), r"unpickling stack underflow|unexpected MARK found",
     STACK_UNDERFLOW,
     "C: Pdata_stack_underflow (the second when a mark fences the stack)"),
    ((UE,), r"odd number of items for (DICT|SETITEMS)", STACK_UNDERFLOW,
     "C: the last key has no value above the mark (py: IndexError "
     "'list index out of range' in load_dict/load_setitems)"),
    ((UE,), r"could not find MARK", MARK_MISSING,
     "C: marker() with no mark open (py: IndexError from metastack.pop() "
     "in pop_mark, see the context rules)"),
    ((IndexError,), r"pop from empty list|list index out of range",
     STACK_UNDERFLOW,
     "py: self.stack.pop() / self.stack[-1] on an empty stack (above the "
     "mark); pop_mark's metastack.pop() is caught earlier as mark-missing"),

    # ---- memo-missing ---------------------------------------------------
    ((UE,), r"Memo value not found", MEMO_MISSING,
     "C 3.12+ and py 3.12+"),
    ((KeyError,), None, MEMO_MISSING,
     "C and py before 3.12: KeyError(index) from the memo (py's dispatch "
     "KeyError is caught earlier as bad-opcode)"),

    # ---- unsupported-protocol / unknown-extension / no-buffers ----------
    ((ValueError,), r"^unsupported pickle protocol", UNSUPPORTED_PROTOCOL,
     "C and py: PROTO above 5 (above 4 before 3.8)"),
    ((ValueError,), r"^unregistered extension code", UNKNOWN_EXTENSION,
     "C and py: EXT code not in copyreg's registry"),
    ((UE,), r"out-of-band|out of band", NO_BUFFERS,
     "C and py: NEXT_BUFFER without buffers= or with too few"),

    # ---- type-error -----------------------------------------------------
    ((UE,), r"STACK_GLOBAL requires str", TYPE_ERROR, "C and py"),
    ((UE,), r"state is not a dictionary", TYPE_ERROR,
     "C: BUILD's default setstate with a non-dict state or slot state"),
    ((UE,), r"^NEWOBJ", TYPE_ERROR,
     "C: NEWOBJ/NEWOBJ_EX class not a type, args not a tuple, kwargs not a "
     "dict (py: TypeError/AttributeError from cls.__new__(cls, *args))"),

    # ---- bad-argument ---------------------------------------------------
    ((UE,), r"STRING opcode argument must be quoted", BAD_ARGUMENT,
     "C and py: STRING without matching quotes"),
    ((UE,), r"negative byte count", BAD_ARGUMENT,
     "C and py: LONG4 (C and py) / BINSTRING (py only: C reads the count "
     "unsigned and then runs out of input) with a negative count"),
    ((UE,), r"EXT specifies code <= 0", BAD_ARGUMENT, "C and py"),
    ((UE,), r"persistent IDs in protocol 0 must be ASCII", BAD_ARGUMENT,
     "C and py 3.12+: non-ASCII PERSID (older: UnicodeDecodeError)"),
    ((UE,), r"beginning of a new frame before end of current frame",
     BAD_ARGUMENT, "py only: FRAME inside a frame (C does not check)"),
    ((ValueError,), r"^negative (LONG_BIN|BIN)?PUT argument", BAD_ARGUMENT,
     "C and py"),
    ((UnicodeError,), None, BAD_ARGUMENT,
     "C and py: invalid UTF-8 (BINUNICODE, GLOBAL names), non-ASCII STRING "
     "with the default encoding, bad raw-unicode-escape (UNICODE)"),
    ((ValueError,), r"^Exceeds the limit \(\d+( digits)?\) for integer string",
     RESOURCE_LIMIT,
     "C and py 3.11+ (and late 3.7-3.10 patch releases): int_max_str_digits "
     "exceeded by INT/LONG text (libpkl: max_digits)"),
    ((ValueError,),
     r"^(invalid literal for int|could not convert string to|"
     r"invalid \\x escape|Trailing \\ in string|"
     r"byte must be in range|invalid escape)|is not a valid",
     BAD_ARGUMENT,
     "C and py: malformed INT/LONG/FLOAT/GET/PUT digits, STRING escapes "
     "(codecs.escape_decode), a bytearray item outside 0..255"),
    ((OverflowError,), r"too large to convert to float", BAD_ARGUMENT,
     "C only: FLOAT text out of range ('1e999'); py returns inf"),
    ((IndexError,), r"assignment index out of range|"
     r"^bytearray index out of range|"
     r"cannot fit 'int' into an index-sized integer", BAD_ARGUMENT,
     "C and py: SETITEM(S) on a list/bytearray with an index out of range "
     "(or beyond ssize_t)"),

    # ---- resource-limit -------------------------------------------------
    ((UE, OverflowError), r"exceeds system's maximum|exceeds the maximum",
     RESOURCE_LIMIT,
     "C (OverflowError) and py (UnpicklingError): a 64-bit length or FRAME "
     "size above sys.maxsize"),
    ((ValueError,), r"^frame size > sys\.maxsize", RESOURCE_LIMIT, "py"),
    ((OverflowError,), r"^byte string is too large", RESOURCE_LIMIT,
     "C: a BINBYTES8 length just below sys.maxsize: the bytes object is "
     "allocated before the input is read and cannot be (py: truncated)"),
    ((UE,), r"^read would overflow", RESOURCE_LIMIT,
     "C: a FRAME or read length that overflows the input position "
     "(py: truncated)"),
    ((OverflowError,), r"too large to convert to C ssize_t", RESOURCE_LIMIT,
     "C: PUT with an index beyond ssize_t (GET is caught earlier as "
     "memo-missing; py accepts the PUT)"),
    ((MemoryError,), None, RESOURCE_LIMIT,
     "C and py: e.g. LONG_BINPUT 2**31 grows the C memo array to 2**32 "
     "slots (libpkl's sparse memo loads it); counted arguments longer than "
     "the input are caught earlier as truncated"),
    ((RecursionError,), None, RESOURCE_LIMIT,
     "hashing or comparing very deep structures"),

    # ---- type-error, the general case -----------------------------------
    ((TypeError, AttributeError), None, TYPE_ERROR,
     "C and py: unhashable key, calling a non-callable, REDUCE args not a "
     "tuple (C), append/extend/add/__dict__ missing, memoryview of a "
     "non-buffer, item assignment on a tuple ..."),
]

_COMPILED = [(types, re.compile(rx) if rx else None, cls, note)
             for types, rx, cls, note in TABLE]


# --------------------------------------------------------------------------
# Context rules

# C: opcodes whose decimal line argument goes through PyLong_AsSsize_t.
_DIGITS = frozenset(b"0123456789_+- \t\r\n\x0b\x0c")

# py: load_* functions where C rejects an empty line ("X\n") as truncation
# (`if (len < 2) return bad_readline()`), while the Python unpickler calls
# int()/float() on b"" / b"\n" and raises ValueError.
_PY_LEN2_LINE_OPS = frozenset(["load_int", "load_long", "load_float",
                               "load_get", "load_put"])


def _pickle_frames(exc):
    """Names of the pickle.py functions on the traceback, outermost first."""
    names = []
    tb = exc.__traceback__
    pyfile = getattr(pickle, "__file__", "") or ""
    base = pyfile[:-1] if pyfile.endswith(".pyc") else pyfile
    while tb is not None:
        code = tb.tb_frame.f_code
        fn = code.co_filename
        if fn == pyfile or fn == base or fn.endswith("/pickle.py"):
            names.append(code.co_name)
        tb = tb.tb_next
    return names


def _c_opcode_before_line(data, position):
    """C unpickler: the opcode of a decimal line that ended at `position`
    (the C unpickler reads a file exactly: no prefetch without peek())."""
    if position is None or position > len(data) or position < 1:
        return None
    i = position - 1
    if data[i:i + 1] != b"\n":
        return None
    i -= 1
    while i >= 0 and data[i] in _DIGITS:
        i -= 1
    return data[i:i + 1] if i >= 0 else None


def _c_digits_before_line(data, position, opcode):
    """Number of decimal digits in a well-formed decimal line of `opcode`
    that ended at `position`, else None."""
    if _c_opcode_before_line(data, position) != opcode:
        return None
    i = position - 2
    n = 0
    while i >= 0 and data[i] in _DIGITS:
        if 0x30 <= data[i] <= 0x39:
            n += 1
        i -= 1
    return n


def _int_max_str_digits():
    get = getattr(__import__("sys"), "get_int_max_str_digits", None)
    return get() if get is not None else 0


_FRAME = 0x95

_OVERRUN = re.compile(r"expected (\d+) bytes in a (\w+), but only (\d+) "
                      r"remain")


def _overrun_start(data):
    """Input offset of the opcode on which pickletools' static parse of
    `data` first fails, when that fault is a counted argument longer than
    the rest of the input; else None.  CPython allocates BINBYTES,
    BINBYTES8 and BYTEARRAY8 buffers (C) and BYTEARRAY8 (py) *before*
    reading them, so such an opcode raises MemoryError when the count is
    huge and 'pickle data was truncated' when it merely exceeds the input:
    with enough memory the answer is truncation, whatever the machine."""
    import io
    import pickletools
    f = io.BytesIO(data)
    at = 0
    try:
        for _ in pickletools.genops(f):
            at = f.tell()       # where the next opcode starts
    except ValueError as e:
        return at if _OVERRUN.search(str(e)) else None
    except Exception:
        return None
    return None


def _memory_error_is_overrun(exc, info):
    """A MemoryError that truncation explains: the input has an over-long
    counted argument and the load did not fail before reaching it (the C
    unpickler can also run out earlier, e.g. growing its memo array to a
    huge PUT index, and that is CPython's own resource limit)."""
    if _overrun_start(info.data) is None:
        return False
    if info.unpickler == "c":
        pos, data = _c_position(exc, info)
        if pos is not None:
            at = _overrun_start(data)
            if at is not None and pos <= at:
                return False
    return True


def _context_rule(exc, info):
    if isinstance(exc, StubBug):
        return INTERNAL, "oracle bug: " + str(exc)
    if info is None:
        return None
    if isinstance(exc, MemoryError) and info.data \
            and _memory_error_is_overrun(exc, info):
        return TRUNCATED, ("%s: MemoryError allocating a counted argument "
                           "longer than the remaining input (with enough "
                           "memory CPython reports truncation)"
                           % info.unpickler)
    if info.unpickler == "py":
        if isinstance(exc, (MemoryError, RecursionError)):
            return None
        if info.short_read:
            return TRUNCATED, ("py: the input ended inside an opcode (a read "
                               "came back short) before %s"
                               % type(exc).__name__)
        frames = _pickle_frames(exc)
        inner = frames[-1] if frames else None
        dispatched = None
        if "load" in frames:
            i = len(frames) - 1 - frames[::-1].index("load")
            if i + 1 < len(frames):
                dispatched = frames[i + 1]
        if isinstance(exc, KeyError) and inner == "load":
            return BAD_OPCODE, "py: KeyError from the dispatch table"
        if isinstance(exc, IndexError) and inner == "pop_mark":
            if dispatched == "load_pop":
                # POP on an empty stack falls back to pop_mark() in py; C
                # reports "unpickling stack underflow".
                return STACK_UNDERFLOW, "py: POP with nothing to pop"
            return MARK_MISSING, "py: metastack.pop() in pop_mark"
        if (isinstance(exc, ValueError) and dispatched in _PY_LEN2_LINE_OPS
                and info.last_line in (b"\n", b"")):
            return TRUNCATED, ("py: %s on an empty line (C: 'pickle data was "
                               "truncated')" % dispatched)
        return None
    # C unpickler
    if (isinstance(exc, ValueError)
            and str(exc) == "could not convert string to int"):
        # load_int replaces PyLong_FromString's message, so an INT line with
        # more digits than int_max_str_digits looks malformed; py reports
        # "Exceeds the limit" for the same line.
        limit = _int_max_str_digits()
        pos, data = _c_position(exc, info) if limit else (None, b"")
        digits = _c_digits_before_line(data, pos, b"I")
        if digits is not None and digits > limit:
            return RESOURCE_LIMIT, ("C: INT with %d digits, above "
                                    "int_max_str_digits" % digits)
    if isinstance(exc, OverflowError) and re.search(
            r"too large to convert to C ssize_t", str(exc)):
        pos, data = _c_position(exc, info)
        op = _c_opcode_before_line(data, pos)
        if op == b"g":
            return MEMO_MISSING, ("C: GET index beyond ssize_t (py: memo "
                                  "KeyError)")
    if (isinstance(exc, UE) and str(exc) == "STACK_GLOBAL requires str"
            and info.rerun is not None):
        # Before 3.11.x the C unpickler's load_stack_global overwrote the
        # stack-underflow error of its second pop with this message.  The
        # Python unpickler tells the two faults apart.
        pexc, r = info.rerun(info.data, False)
        if r.error == STACK_UNDERFLOW and "load_stack_global" in \
                _pickle_frames(pexc):
            return STACK_UNDERFLOW, ("C: STACK_GLOBAL with fewer than two "
                                     "items (old CPython says 'requires "
                                     "str')")
    return None


def _deframed(data):
    """`data` without its FRAME opcodes, or None when it has none.  The C
    unpickler's frames only say how much to read ahead (it checks nothing
    about their boundaries), so a copy without them fails at the same
    opcode, with the same error, wherever a frame is not the fault."""
    from .trace import iter_ops
    parts = []
    last = 0
    for op, start, end in iter_ops(data):
        if op == _FRAME:
            parts.append(data[last:start])
            last = end
    if not parts:
        return None
    parts.append(data[last:])
    return b"".join(parts)


def _c_position(exc, info):
    """(input offset where the C unpickler failed, the bytes it is an
    offset in), from a rerun through a plain file; offset None when the
    rerun does not fail the same way.  A frame is read whole, so with
    frames the file position would be the end of the frame, not of the
    failing opcode: the rerun loads a copy without FRAME opcodes."""
    data = info.data
    if info.rerun is None:
        return None, data
    data = _deframed(data) or data
    e2, pos = info.rerun(data, True)
    if type(e2) is not type(exc) or str(e2) != str(exc):
        return None, data
    return pos, data


def classify(exc, info=None):
    """(class, reason) for an exception raised by ``Unpickler.load()``."""
    ctx = _context_rule(exc, info)
    if ctx is not None:
        return ctx
    msg = str(exc)
    for types, rx, cls, note in _COMPILED:
        if isinstance(exc, types) and (rx is None or rx.search(msg)):
            return cls, note
    return INTERNAL, ("unclassified %s: %s (extend brine_oracle/classify.py)"
                      % (type(exc).__name__, msg))
