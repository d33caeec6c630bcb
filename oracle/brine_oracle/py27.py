"""Python 2.7 as an oracle: cPickle's and pickle.py's unpicklers with every
global stubbed (imported by the package in place of brine_oracle.loader when
it runs under 2.7; Python 3 never imports this module).

    text, trace = load(data, unpickler="c")   # "c": cPickle, "py": pickle

The stubs, the emitter, the trace and the worker are the Python 3 modules
(they run on both); what 2.7 needs of its own is here: driving cPickle
(``find_global`` and ``persistent_load`` attributes, since cPickle.Unpickler
is a factory that cannot be subclassed), decoding the byte-string names 2.7
hands to find_global, and the 2.7 exception classifier.

Semantics (docs/oracle-py27.md):

* a py2 ``str`` loads as canonical ``bytes``, ``unicode`` as ``str``,
  ``long`` and ``int`` as ``int`` (brine_oracle.canon maps the types);
* protocols 0-2 only: PROTO 3 and above is ``error unsupported-protocol``,
  and opcodes of protocol 3+ (BINBYTES, FRAME, STACK_GLOBAL ...) are
  ``error bad-opcode``, exactly as 2.7 itself says;
* INST and OBJ always *call* the stub (``call`` node, even without
  arguments): 2.7 bypasses ``__init__`` only for classic classes, and stubs
  are new-style classes (the only ones find_global can hand out safely);
* global names are byte strings in 2.7; they are printed as the UTF-8 text
  Python 3 would see, invalid bytes as U+DC80..U+DCFF (PEP 383), so no
  ``as`` clause ever appears (2.7 imports exactly what it is given).

Nothing a pickle names is imported or called: cPickle only calls
``find_global`` (set on every unpickler: when it is unset cPickle imports)
and ``persistent_load``; its EXT cache, ``copy_reg._extension_cache``, is
cleared before and after each load like the Python 3 loader does.
``inst_persistent_id`` is a pickler-side hook: unpickling never uses it.
"""

from __future__ import absolute_import

import codecs
import copy_reg
import cPickle
import io
import pickle
import re
import sys
from cStringIO import StringIO

from . import canon
from . import classify as _classify
from .stubs import Session, CaseTimeout, StubBug

__all__ = ["load", "load_result", "LoadResult", "UNPICKLERS", "classify",
           "SEMANTICS", "decode_name"]

UNPICKLERS = ("c", "py")
HAVE_C_UNPICKLER = True       # cPickle (see loader.py for PyPy)
DEFAULT_UNPICKLER = "c"
NO_C_UNPICKLER = ""

# One line for the adapter hello's `version` (after the interpreter's own).
SEMANTICS = ("(py2: str as bytes, unicode as str, long as int; protocols "
             "0-2; INST/OBJ call)")


# --------------------------------------------------------------------------
# Names

def _escape_bytes(err):
    # PEP 383's surrogateescape, which 2.7 lacks: one U+DCxx per bad byte
    bad = err.object[err.start:err.end]
    return u"".join(unichr(0xdc00 + ord(c)) for c in bad), err.end  # noqa


codecs.register_error("brine-surrogateescape", _escape_bytes)


def decode_name(s):
    """The text a global's module or name prints as (see the module doc)."""
    if type(s) is str:
        return s.decode("utf-8", "brine-surrogateescape")
    return s


# --------------------------------------------------------------------------
# The result of one load (the interface of brine_oracle.loader.LoadResult)

class LoadResult(object):
    """text, trace, error (None or the class), reason, exception, value."""

    __slots__ = ("text", "trace", "error", "reason", "exception", "value")

    def __init__(self, text, trace, error=None, reason=None, exception=None,
                 value=None):
        self.text = text
        self.trace = trace
        self.error = error
        self.reason = reason
        self.exception = exception
        self.value = value

    @property
    def ok(self):
        return self.error is None

    def message(self):
        """A one-line human-readable account of a failure."""
        if self.error is None:
            return ""
        e = self.exception
        what = ("%s: %s" % (type(e).__name__, _message(e))
                if e is not None else "")
        return "%s (%s) [%s]" % (self.error, what, self.reason)


def _message(exc):
    # str() of an exception can repr loaded objects (cPickle packs the
    # callable and its arguments into a failed call's exception): bounded,
    # and never allowed to fail.
    try:
        args = exc.args
        if len(args) == 3 and type(args[0]) in (str, unicode):  # noqa: F821
            return args[0][:500]         # Instance_New's (msg, cls, args)
        return str(exc)[:500]
    except Exception:  # noqa: B902
        return "<unprintable %s>" % type(exc).__name__


# --------------------------------------------------------------------------
# The two unpicklers

def _c_unpickler(f, session):
    """cPickle's unpickler over `f`, every global and persistent id stubbed.
    cPickle.Unpickler is a factory (no subclassing): the hooks are
    attributes.  find_global must always be set: unset, cPickle imports."""
    u = cPickle.Unpickler(f)

    def find_global(module, name):
        return session.find_class(decode_name(module), decode_name(name))
    u.find_global = find_global
    u.persistent_load = session.persistent_load
    return u


class _TrackingFile(io.BytesIO):
    """For pickle.py: notes short reads and the last line read (the same
    evidence brine_oracle.loader gathers for Python 3's pickle._Unpickler)."""

    def __init__(self, data):
        io.BytesIO.__init__(self, data)
        self.short_read = False
        self.last_line = None

    def read(self, n=-1):
        b = io.BytesIO.read(self, n)
        if n is not None and n >= 0 and len(b) < n:
            self.short_read = True
        return b

    def readline(self, size=-1):
        b = io.BytesIO.readline(self, size)
        self.last_line = b
        if not b.endswith(b"\n"):
            self.short_read = True
        return b


class _PyUnpickler(pickle.Unpickler):
    """2.7's pure-Python unpickler (a classic class) with stubbed globals."""

    def __init__(self, file, session):
        pickle.Unpickler.__init__(self, file)
        self._brine_session = session

    def find_class(self, module, name):
        return self._brine_session.find_class(decode_name(module),
                                              decode_name(name))

    def persistent_load(self, pid):
        return self._brine_session.persistent_load(pid)


# --------------------------------------------------------------------------
# Classification (the classes of docs/canonical-form.md, from 2.7 messages)

_UE = (pickle.UnpicklingError, cPickle.UnpicklingError)

# (exception types, message regex or None, class, note); first match wins.
TABLE = [
    ((EOFError,), None, _classify.TRUNCATED,
     "c: a read past the end; py: load_eof"),
    (_UE, r"pickle data was truncated", _classify.TRUNCATED,
     "c: a text line shorter than two bytes (bad_readline)"),
    (_UE, r"^invalid load key", _classify.BAD_OPCODE, "c"),
    ((cPickle.BadPickleGet,), None, _classify.MEMO_MISSING,
     "c: GET/BINGET/LONG_BINGET of a key never PUT (memo keys are the PUT "
     "line's text, or the BINPUT number: `p0` then `h\\x00` misses)"),
    (_UE, r"unpickling stack underflow", _classify.STACK_UNDERFLOW, "c"),
    (_UE, r"^bad pickle data$", _classify.STACK_UNDERFLOW,
     "c: Pdata_pop on an empty stack (REDUCE, BUILD, STOP ...)"),
    (_UE, r"odd number of items for (DICT|SETITEMS)",
     _classify.STACK_UNDERFLOW, "c: the last key has no value"),
    (_UE, r"could not find MARK", _classify.MARK_MISSING, "c"),
    ((ValueError,), r"unsupported pickle protocol",
     _classify.UNSUPPORTED_PROTOCOL, "c and py: PROTO above 2"),
    ((ValueError,), r"unregistered extension code",
     _classify.UNKNOWN_EXTENSION, "c and py"),
    (_UE, r"EXT specifies code <= 0", _classify.BAD_ARGUMENT, "c"),
    (_UE, r"^NEWOBJ", _classify.TYPE_ERROR,
     "c: NEWOBJ class not a type, args not a tuple"),
    (_UE, r"state is not a dictionary", _classify.TYPE_ERROR,
     "c: BUILD's default setstate"),
    (_UE, r"negative byte count", _classify.BAD_ARGUMENT,
     "c: LONG4, BINSTRING, BINUNICODE"),
    ((ValueError,), r"insecure string pickle", _classify.BAD_ARGUMENT,
     "c and py: STRING without matching quotes"),
    ((UnicodeError,), None, _classify.BAD_ARGUMENT,
     "c and py: invalid UTF-8 (BINUNICODE), bad raw-unicode-escape"),
    ((ValueError,),
     r"invalid literal for|could not convert string to|invalid \\x escape|"
     r"Trailing \\ in string|null byte|empty string for float|"
     r"bad marshal data|invalid \\\\x escape",
     _classify.BAD_ARGUMENT,
     "c and py: malformed INT/LONG/FLOAT digits, STRING escapes"),
    ((OverflowError,), r"float", _classify.BAD_ARGUMENT,
     "c: FLOAT text out of range"),
    ((IndexError,), r"assignment index out of range", _classify.BAD_ARGUMENT,
     "c and py: SETITEM(S) on a list with an index out of range"),
    ((MemoryError,), None, _classify.RESOURCE_LIMIT, "c and py"),
    ((RuntimeError,), r"maximum recursion depth", _classify.RESOURCE_LIMIT,
     "hashing, comparing or printing very deep structures"),
    ((IndexError,), r"pop from empty list|pop index out of range|"
     r"list index out of range",
     _classify.STACK_UNDERFLOW,
     "py: stack.pop() / stack[-1] on an empty stack (marker()'s IndexError "
     "is caught earlier as mark-missing)"),
    ((KeyError,), None, _classify.MEMO_MISSING,
     "py: memo KeyError (dispatch KeyError is caught earlier as "
     "bad-opcode)"),
    ((TypeError, AttributeError), None, _classify.TYPE_ERROR,
     "c and py: unhashable key, calling a non-callable, append/__dict__ "
     "missing, item assignment on a tuple ..."),
]

_COMPILED = [(types, re.compile(rx) if rx else None, cls, note)
             for types, rx, cls, note in TABLE]

# pickle.py functions reading a text line that cPickle rejects as
# truncated when it is shorter than two bytes ("X\n" or "X" at the end)
_PY_LEN2_LINE_OPS = frozenset(["load_int", "load_long", "load_float",
                               "load_string", "load_get", "load_put",
                               "load_persid", "load_global", "load_inst"])


def _pickle_frames(tb):
    """Names of the pickle.py functions on a traceback, outermost first
    (from the code objects: traceback.extract_tb would read source files)."""
    names = []
    while tb is not None:
        code = tb.tb_frame.f_code
        fn = code.co_filename
        if fn.endswith("/pickle.py") or fn.endswith("/pickle.pyc"):
            names.append(code.co_name)
        tb = tb.tb_next
    return names


def _nul_opcode(data, pos):
    """cPickle reads a NUL opcode as end of input (EOFError): true when the
    EOFError at input offset `pos` is that, not a read past the end."""
    if pos < len(data):
        return True       # a short read leaves the position at the end
    import pickletools
    try:
        for _ in pickletools.genops(data):
            pass
    except ValueError as e:
        return bool(re.search(r"opcode '\\x00' unknown", str(e))) and \
            str(e).startswith("at position %d," % (len(data) - 1))
    except Exception:  # noqa: B902
        return False
    return False


def classify(exc, unpickler, data, tb=None, f=None, mark=None):
    """(class, reason) of an exception a 2.7 unpickler raised.  `tb`: its
    traceback (py); `f`: the file read (c: position, py: _TrackingFile)."""
    if isinstance(exc, StubBug):
        return _classify.INTERNAL, "oracle bug: %s" % _message(exc)
    if unpickler == "c":
        if isinstance(exc, EOFError) and f is not None and \
                _nul_opcode(data, f.tell()):
            return _classify.BAD_OPCODE, ("c: a NUL opcode, which cPickle "
                                          "reads as end of input")
        if isinstance(exc, ValueError) and f is not None and \
                f.tell() == len(data) and not data.endswith(b"\n"):
            return _classify.TRUNCATED, ("c: the last text line has no "
                                         "newline (cStringIO hands it over "
                                         "and its conversion fails)")
    elif not isinstance(exc, (MemoryError, RuntimeError)):
        frames = _pickle_frames(tb)
        inner = frames[-1] if frames else None
        dispatched = None
        if "load" in frames:
            i = len(frames) - 1 - frames[::-1].index("load")
            if i + 1 < len(frames):
                dispatched = frames[i + 1]
        last = f.last_line if f is not None else None
        if dispatched in _PY_LEN2_LINE_OPS and last is not None and \
                len(last) < 2:
            return _classify.TRUNCATED, ("py: %s on a line shorter than two "
                                         "bytes (c: 'pickle data was "
                                         "truncated')" % dispatched)
        if f is not None and f.short_read:
            return _classify.TRUNCATED, ("py: the input ended inside an "
                                         "opcode before %s"
                                         % type(exc).__name__)
        if isinstance(exc, KeyError) and inner == "load":
            return _classify.BAD_OPCODE, "py: KeyError from the dispatch table"
        if isinstance(exc, IndexError) and inner == "marker":
            return _classify.MARK_MISSING, "py: marker() found no mark"
        if isinstance(exc, IndexError) and dispatched == "load_pop":
            return _classify.STACK_UNDERFLOW, "py: POP on an empty stack"
        if isinstance(exc, (TypeError, AttributeError)) and \
                re.search(r"^'object' object ", _message(exc)):
            # no loaded value is a bare object() but pickle.py's mark
            return _classify.STACK_UNDERFLOW, ("py: pickle.py's mark object "
                                               "used as a value")
    msg = None
    for types, rx, cls, note in _COMPILED:
        if not isinstance(exc, types):
            continue
        if rx is not None:
            if msg is None:
                msg = _message(exc)
            if not rx.search(msg):
                continue
        return cls, note
    return _classify.INTERNAL, ("unclassified %s: %s (extend "
                                "brine_oracle/py27.py)"
                                % (type(exc).__name__, _message(exc)))


# --------------------------------------------------------------------------

def load_result(data, unpickler="c", max_output=canon.DEFAULT_MAX_OUTPUT,
                session=None):
    """Load `data` and render it; never raises for anything in `data`.
    `session`: a fresh Session to record into (default a new one)."""
    if unpickler not in UNPICKLERS:
        raise ValueError("unpickler must be 'c' or 'py', not %r"
                         % (unpickler,))
    data = bytes(data)
    copy_reg._extension_cache.clear()
    if session is None:
        session = Session()
    if unpickler == "c":
        f = StringIO(data)        # what cPickle.loads reads through
        u = _c_unpickler(f, session)
    else:
        f = _TrackingFile(data)
        u = _PyUnpickler(f, session)
    mark = None
    try:
        value = u.load()
        if unpickler == "py":
            mark = u.mark
    except (KeyboardInterrupt, SystemExit):
        raise
    except CaseTimeout as e:
        u = f = None
        return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                          session.trace, _classify.RESOURCE_LIMIT,
                          "per-case time limit", e)
    except BaseException as e:  # noqa: B902 - everything is classified
        tb = sys.exc_info()[2]
        try:
            cls, reason = classify(e, unpickler, data, tb, f)
        finally:
            tb = None
        u = f = None
        return LoadResult(canon.render_error(cls), session.trace, cls,
                          reason, e)
    finally:
        copy_reg._extension_cache.clear()
    u = f = None
    try:
        text = canon.render(value, max_output)
    except canon.OutputLimitExceeded as e:
        return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                          session.trace, _classify.RESOURCE_LIMIT,
                          "canonical text over the output limit", e)
    except canon.CanonBug as e:
        if mark is not None and e.obj is mark:
            # pickle.py keeps marks on its stack as a plain object(); an
            # opcode that takes one as a value (`(.`, `(\x85.`) hands it
            # out.  cPickle keeps marks apart and underflows there.
            return LoadResult(canon.render_error(_classify.STACK_UNDERFLOW),
                              session.trace, _classify.STACK_UNDERFLOW,
                              "py: pickle.py's mark object taken as a value",
                              e)
        return LoadResult(canon.render_error(_classify.INTERNAL),
                          session.trace, _classify.INTERNAL,
                          "oracle bug in the emitter", e)
    except (MemoryError, CaseTimeout) as e:
        return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                          session.trace, _classify.RESOURCE_LIMIT,
                          "emitter ran out of resources", e)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: B902 - an oracle bug
        if isinstance(e, RuntimeError) and \
                "maximum recursion depth" in _message(e):
            return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                              session.trace, _classify.RESOURCE_LIMIT,
                              "emitter ran out of resources", e)
        return LoadResult(canon.render_error(_classify.INTERNAL),
                          session.trace, _classify.INTERNAL,
                          "oracle bug in the emitter", e)
    return LoadResult(text, session.trace, value=value)


def load(data, unpickler="c", max_output=canon.DEFAULT_MAX_OUTPUT):
    """(canonical_text, trace) of a pickle, as brine_oracle.loader.load."""
    r = load_result(data, unpickler, max_output)
    return r.text, r.trace
