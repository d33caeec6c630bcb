"""Load a pickle with CPython's C or pure-Python unpickler, every global
stubbed, and report its canonical text.

    text, trace = load(data, unpickler="c")   # or "py"

Nothing a pickle names is imported or called: ``find_class`` and
``persistent_load`` return stubs (:mod:`brine_oracle.stubs`).  Out-of-band
buffers: none (``buffers=None``), so NEXT_BUFFER fails like
``pickle.loads(data)``.  ``copyreg._extension_cache`` is cleared before each
load (otherwise an EXT code resolved by an earlier load skips find_class);
the extension registry itself is left as the interpreter has it.
"""

import copyreg
import io
import pickle

from . import canon
from . import classify as _classify
from .stubs import Session, CaseTimeout

__all__ = ["load", "load_result", "LoadResult", "UNPICKLERS",
           "HAVE_C_UNPICKLER", "DEFAULT_UNPICKLER"]

UNPICKLERS = ("c", "py")

# PyPy has no C unpickler: its pickle.Unpickler is pickle._Unpickler.  There
# the "c" mode would quietly be the Python one under the wrong name, so it
# is refused and "py" is the default.
HAVE_C_UNPICKLER = pickle.Unpickler is not pickle._Unpickler
DEFAULT_UNPICKLER = "c" if HAVE_C_UNPICKLER else "py"
NO_C_UNPICKLER = ("this interpreter has no C unpickler (pickle.Unpickler is "
                  "the Python one): use --unpickler py")


class LoadResult(object):
    """Everything about one load.

    text       canonical text (the error document on failure)
    trace      the session's ordered event list (also on failure)
    error      None, or the taxonomy class
    reason     why that class (table note or context rule)
    exception  the exception CPython raised (None on success)
    value      the loaded graph (None on failure)
    """

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
        what = "%s: %s" % (type(e).__name__, e) if e is not None else ""
        return "%s (%s) [%s]" % (self.error, what, self.reason)


# --------------------------------------------------------------------------
# The two unpicklers

class _CUnpickler(pickle.Unpickler):
    """CPython's C unpickler (``_pickle.Unpickler``) with stubbed globals."""

    def __init__(self, file, session):
        pickle.Unpickler.__init__(self, file)
        self._brine_session = session

    def find_class(self, module, name):
        return self._brine_session.find_class(module, name)

    def persistent_load(self, pid):
        return self._brine_session.persistent_load(pid)


class _WholeInputFile(io.BytesIO):
    """For the C unpickler: a file whose peek() returns all the remaining
    input, so the C unpickler prefetches the whole pickle into one buffer
    exactly like ``pickle.loads(bytes)`` does.  With a plain file object the
    C unpickler reads a FRAME into its buffer and drops the rest of that
    buffer when an opcode straddles the frame's end, which makes
    ``Unpickler(io.BytesIO(data)).load()`` disagree with
    ``pickle.loads(data)`` on such inputs."""

    def peek(self, n=0):
        return self.getvalue()[self.tell():]


class _TrackingFile(io.BytesIO):
    """For the Python unpickler: notes reads that come back short and text
    lines that end at EOF without a newline.  The C unpickler fails exactly
    there ("pickle data was truncated"); the Python one carries on with the
    short data and fails later with some other exception."""

    def __init__(self, data):
        io.BytesIO.__init__(self, data)
        self.short_read = False

    def read(self, n=-1):
        b = io.BytesIO.read(self, n)
        if n is not None and n >= 0 and len(b) < n:
            self.short_read = True
        return b

    def readline(self, size=-1):
        b = io.BytesIO.readline(self, size)
        if not b.endswith(b"\n"):
            self.short_read = True
        return b

    def readinto(self, buf):
        n = io.BytesIO.readinto(self, buf)
        if n < len(buf):
            self.short_read = True
        return n


class _PyUnpickler(pickle._Unpickler):
    """CPython's pure-Python unpickler (``pickle._Unpickler``) with stubbed
    globals.  ``readline`` is a property so that the line reader load()
    installs (the frame-aware one) is wrapped and the last line remembered
    (the classifier needs it: C treats an empty "I\\n" as truncation)."""

    def __init__(self, file, session):
        pickle._Unpickler.__init__(self, file)
        self._brine_session = session
        self._brine_last_line = None
        self._brine_readline = None

    def _get_readline(self):
        return self._brine_readline

    def _set_readline(self, real):
        def readline():
            line = real()
            self._brine_last_line = line
            return line
        self._brine_readline = readline

    readline = property(_get_readline, _set_readline)

    def find_class(self, module, name):
        # The Python unpickler knows the protocol in effect (the trace's
        # py2 renaming depends on it); the C one does not expose it.
        return self._brine_session.find_class(module, name, self.proto)

    def persistent_load(self, pid):
        return self._brine_session.persistent_load(pid)


# --------------------------------------------------------------------------

def _c_rerun(data, plain_file):
    """Load again for the classifier: with ``plain_file`` through a plain
    io.BytesIO (the C unpickler then reads exactly what it needs, so the file
    position after a failure is the end of the failing opcode's argument),
    else with the Python unpickler.  Returns (exception or None, position
    or LoadResult)."""
    copyreg._extension_cache.clear()
    try:
        if plain_file:
            f = io.BytesIO(data)
            try:
                _CUnpickler(f, Session()).load()
            except (KeyboardInterrupt, SystemExit, CaseTimeout):
                raise
            except BaseException as e:  # noqa: B902
                return e, f.tell()
            return None, f.tell()
        r = load_result(data, "py", 1 << 20)
        return r.exception, r
    finally:
        copyreg._extension_cache.clear()


def load_result(data, unpickler="c", max_output=canon.DEFAULT_MAX_OUTPUT,
                session=None):
    """Load `data` and render it; never raises for anything in `data`.
    `session`: a fresh :class:`Session` to record into (the worker passes its
    own, to keep the trace of a case its timer interrupts); default a new
    one."""
    if unpickler not in UNPICKLERS:
        raise ValueError("unpickler must be 'c' or 'py', not %r"
                         % (unpickler,))
    data = bytes(data)
    copyreg._extension_cache.clear()
    if session is None:
        session = Session()
    if unpickler == "c":
        f = _WholeInputFile(data)
        u = _CUnpickler(f, session)
    else:
        f = _TrackingFile(data)
        u = _PyUnpickler(f, session)
    try:
        value = u.load()
    except (KeyboardInterrupt, SystemExit):
        raise
    except CaseTimeout as e:
        # the worker's per-case timer (brine_oracle.worker)
        u = f = None
        return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                          session.trace, _classify.RESOURCE_LIMIT,
                          "per-case time limit", e)
    except BaseException as e:  # noqa: B902 - everything is classified
        info = _classify.LoadInfo(unpickler=unpickler, data=data)
        if unpickler == "c":
            info.rerun = _c_rerun
        else:
            info.short_read = f.short_read
            info.last_line = u._brine_last_line
        cls, reason = _classify.classify(e, info)
        u = f = None
        return LoadResult(canon.render_error(cls), session.trace, cls,
                          reason, e)
    finally:
        copyreg._extension_cache.clear()
    u = f = None  # the unpickler's memo holds the graph: drop it early
    try:
        text = canon.render(value, max_output)
    except canon.OutputLimitExceeded as e:
        return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                          session.trace, _classify.RESOURCE_LIMIT,
                          "canonical text over the output limit", e)
    except (MemoryError, RecursionError, CaseTimeout) as e:
        return LoadResult(canon.render_error(_classify.RESOURCE_LIMIT),
                          session.trace, _classify.RESOURCE_LIMIT,
                          "emitter ran out of resources", e)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: B902 - an oracle bug
        return LoadResult(canon.render_error(_classify.INTERNAL),
                          session.trace, _classify.INTERNAL,
                          "oracle bug in the emitter", e)
    return LoadResult(text, session.trace, value=value)


def load(data, unpickler="c", max_output=canon.DEFAULT_MAX_OUTPUT):
    """(canonical_text, trace) of a pickle; failures give the error document
    ``brine-canonical 1 raw\\nerror <class>\\n``."""
    r = load_result(data, unpickler, max_output)
    return r.text, r.trace
