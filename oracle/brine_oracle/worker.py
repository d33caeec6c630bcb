"""The oracle as an adapter (docs/adapter-protocol.md, protocol v1).

    python3 -m brine_oracle serve [--unpickler c|py] [--memory-limit MB]
                                  [--timeout SECONDS] [--no-trace]
                                  [--max-output BYTES]

Persistent mode: writes the hello frame, then answers every request frame
(a pickle, possibly empty) with one response frame (the canonical document,
then ``--- trace`` and the safety trace unless --no-trace), in order, and
exits 0 when stdin reaches EOF.

Robustness inside the worker (the runner still owns the hard limits):

* stdout carries frames only: frames go to a private duplicate of fd 1, and
  fd 1 itself (so anything printed, by Python or C) goes to stderr;
* an address-space limit (``RLIMIT_AS``, --memory-limit, default 2048 MB;
  0: none): CPython allocates eagerly on some tiny inputs (the 7-byte
  ``Nr\\x00\\x00\\x00\\x02.`` makes 3.11 allocate 512 MB), and MemoryError
  is that case's ``error resource-limit``;
* a per-case CPU-time limit (--timeout, default 10 s; 0: none), measured
  with ``setitimer(ITIMER_PROF)`` (process CPU time, so the verdict does not
  depend on how loaded the machine is).  When it expires, the case answers
  ``error resource-limit``.  It interrupts Python code only (signal
  handlers run between bytecodes): a single long C call (say a huge
  decimal INT before 3.11) is left to the runner's wall-clock timeout;
* MemoryError, RecursionError and the timer are per case: the worker
  answers and carries on with the next request;
* the response (document + trace) is bounded by --max-output (default
  1 GiB, like the canonical text): a trace that does not fit turns the
  answer into ``error resource-limit`` with the trace cut at the last whole
  event that fits;
* answers are written in batches while more requests are already waiting
  (one write, one wake-up of the runner for several answers; at most
  256 KiB or 50 ms held back); with one request outstanding at a time each
  answer is written at once.  A runner that pipelines must therefore not
  blame the oldest outstanding case for a crash or timeout without
  re-running it alone (brine_oracle.client does that).

Also runs under Python 2.7, with brine_oracle.py27's loader (cPickle and
pickle.Unpickler); see docs/oracle-py27.md.
"""

import errno
import os
import struct
import sys
import time

from . import canon
from . import load_result, UNPICKLERS
from .classify import RESOURCE_LIMIT, INTERNAL
from .stubs import CaseTimeout, Session
from .trace import render_trace_lines, TRACE_MARKER
from .limits import CaseTimer, set_memory_limit

__all__ = ["serve", "hello_text", "respond", "DEFAULT_MEMORY_LIMIT_MB",
           "DEFAULT_TIMEOUT"]

DEFAULT_MEMORY_LIMIT_MB = 2048
DEFAULT_TIMEOUT = 10.0
_HEAD = struct.Struct("<I")

# Python 2.7 stand-ins
try:
    RecursionError
except NameError:
    RecursionError = RuntimeError
_monotonic = getattr(time, "monotonic", time.time)
try:
    _BROKEN_PIPE = BrokenPipeError

    def _is_broken_pipe(e):
        return True
except NameError:   # 2.7: a write to a closed pipe is OSError(EPIPE)
    _BROKEN_PIPE = (OSError, IOError)

    def _is_broken_pipe(e):
        return getattr(e, "errno", None) == errno.EPIPE
if hasattr(os, "readv"):
    def _read_into(fd, view):
        return os.readv(fd, [view])
else:
    def _read_into(fd, view):
        chunk = os.read(fd, min(len(view), 1 << 20))
        view[:len(chunk)] = chunk
        return len(chunk)


def implementation_name(unpickler):
    impl = getattr(sys, "implementation", None)
    impl = impl.name if impl is not None else "cpython"
    return "%s-%d.%d-%s" % (impl, sys.version_info[0], sys.version_info[1],
                            unpickler)


def implementation_version():
    # The interpreter's own version string, e.g. "3.13.0" or "3.14.0rc1";
    # under 2.7 followed by the py2 semantics (brine_oracle.py27).
    v = sys.version.split()[0] if sys.version else ""
    v = v or "%d.%d.%d" % tuple(sys.version_info[:3])
    if sys.version_info[0] < 3:
        from .py27 import SEMANTICS
        v = "%s %s" % (v, SEMANTICS)
    return v


def hello_text(unpickler="c", trace=True):
    import pickle
    return ("brine-adapter 1\nname %s\nversion %s\nlevel raw\nfeatures%s\n"
            "highest-protocol %d\n"
            % (implementation_name(unpickler), implementation_version(),
               " trace" if trace else "", pickle.HIGHEST_PROTOCOL))


# --------------------------------------------------------------------------
# One case

# Stub types reused from case to case (brine_oracle.stubs.Session): each
# case's graph is dropped before the next one starts.
_TYPE_POOL = {}


def _bounded(doc, lines, max_output):
    """doc + trace section, cut to max_output (see the module docstring)."""
    size = len(doc) + len(TRACE_MARKER)
    for line in lines:
        size += len(line) + 1
    if size <= max_output:
        if not lines:
            return doc + TRACE_MARKER
        return doc + TRACE_MARKER + "\n".join(lines) + "\n"
    doc = canon.render_error(RESOURCE_LIMIT)
    size = len(doc) + len(TRACE_MARKER)
    keep = 0
    for line in lines:
        size += len(line) + 1
        if size > max_output:
            break
        keep += 1
    lines = lines[:keep]
    if not lines:
        return doc + TRACE_MARKER
    return doc + TRACE_MARKER + "\n".join(lines) + "\n"


def respond(data, unpickler="c", trace=True,
            max_output=canon.DEFAULT_MAX_OUTPUT, timer=None, log=None):
    """The response text of one case (never raises for anything in `data`)."""
    session = Session(_TYPE_POOL)
    text = lines = None
    try:
        try:
            if timer is not None:
                timer.arm()
            r = load_result(data, unpickler, max_output, session)
            text = r.text
            if r.error == INTERNAL and log is not None:
                log("brine_oracle serve: BUG in the oracle: %s\n"
                    % r.message())
            lines = render_trace_lines(session.trace, data) if trace \
                else None
        finally:
            if timer is not None:
                timer.disarm()
    except (KeyboardInterrupt, SystemExit):
        raise
    except (CaseTimeout, MemoryError, RecursionError):
        text = None
    except BaseException as e:  # noqa: B902 - an oracle bug: keep serving
        if log is not None:
            log("brine_oracle serve: BUG in the oracle: %s: %s\n"
                % (type(e).__name__, e))
        text = canon.render_error(INTERNAL)
        lines = None
    if text is None or (timer is not None and timer.fired):
        # Out of time or memory somewhere (load, classification, trace):
        # resource-limit.
        text = canon.render_error(RESOURCE_LIMIT)
        lines = None
    if trace and lines is None:
        # whatever the trace can still say: the events recorded before the
        # limit (or the bug)
        try:
            lines = render_trace_lines(session.trace, data)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: B902 - still out of memory, or a bug
            lines = []
    if not trace:
        return text
    return _bounded(text, lines, max_output)


# --------------------------------------------------------------------------
# The loop

def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Output(object):
    """Response frames, written in batches: a frame waits while more
    requests are already buffered (one write wakes the runner once for
    several answers), at most FLUSH_BYTES of them and at most FLUSH_AGE
    seconds.  With one request outstanding at a time nothing ever waits."""

    FLUSH_BYTES = 1 << 18
    FLUSH_AGE = 0.05

    def __init__(self, fd):
        self.fd = fd
        self.parts = []
        self.size = 0
        self.since = 0.0

    def add(self, body):
        head = _HEAD.pack(len(body))
        if not self.parts:
            self.since = _monotonic()
        if len(body) <= 65536:
            self.parts.append(head + body)
        else:
            self.parts.append(head)
            self.parts.append(body)
        self.size += 4 + len(body)
        if self.size >= self.FLUSH_BYTES:
            self.flush()

    def stale(self):
        return bool(self.parts) and \
            _monotonic() - self.since >= self.FLUSH_AGE

    def flush(self):
        parts = self.parts
        if not parts:
            return
        self.parts = []
        self.size = 0
        if len(parts) == 1:
            _write_all(self.fd, parts[0])
        elif all(len(p) <= 65536 for p in parts):
            _write_all(self.fd, b"".join(parts))
        else:
            for p in parts:
                _write_all(self.fd, p)


class _Input(object):
    """Request frames from a file descriptor, with our own buffer (so the
    loop knows whether another request is already waiting)."""

    BIG = 1 << 20

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.pos = 0

    def ready(self):
        """A whole frame is buffered."""
        avail = len(self.buf) - self.pos
        if avail < 4:
            return False
        return avail - 4 >= _HEAD.unpack_from(self.buf, self.pos)[0]

    def _more(self, want):
        chunk = os.read(self.fd, max(want, 1 << 16))
        if not chunk:
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def next(self):
        """(status, data): ("ok", bytes), ("eof", None) at EOF between
        frames, ("short", None) at EOF inside a frame, ("memory", None)
        when a frame too big to hold was skipped."""
        while True:
            buf, pos = self.buf, self.pos
            avail = len(buf) - pos
            if avail >= 4:
                n = _HEAD.unpack_from(buf, pos)[0]
                if avail - 4 >= n:
                    self.pos = pos + 4 + n
                    return "ok", buf[pos + 4:pos + 4 + n]
                if n > self.BIG:
                    return self._big(n)
                want = n + 4 - avail
            else:
                want = 4 - avail
            if not self._more(want):
                return ("eof" if avail == 0 else "short"), None

    def _big(self, n):
        have = self.buf[self.pos + 4:]
        self.buf = b""
        self.pos = 0
        try:
            target = bytearray(n)
        except MemoryError:
            return self._skip(n - len(have))
        target[:len(have)] = have
        view = memoryview(target)
        got = len(have)
        have = None
        while got < n:
            k = _read_into(self.fd, view[got:])
            if k == 0:
                return "short", None
            got += k
        if hasattr(view, "release"):    # not in 2.7
            view.release()
        try:
            return "ok", bytes(target)
        except MemoryError:
            return "memory", None

    def _skip(self, left):
        while left > 0:
            chunk = os.read(self.fd, min(left, 1 << 20))
            if not chunk:
                return "short", None
            left -= len(chunk)
        return "memory", None


def serve(unpickler="c", memory_limit=DEFAULT_MEMORY_LIMIT_MB,
          timeout=DEFAULT_TIMEOUT, trace=True,
          max_output=canon.DEFAULT_MAX_OUTPUT, quiet=False):
    """Run the persistent adapter on fds 0/1 until EOF; returns the exit
    status (0 on EOF between frames, 1 when stdin ends inside a frame)."""
    if unpickler not in UNPICKLERS:
        raise ValueError("unpickler must be 'c' or 'py'")
    # Frames go to a private duplicate of stdout; fd 1 and sys.stdout now
    # lead to stderr, so a stray print cannot corrupt the stream.  Requests
    # come from a private duplicate of stdin; fd 0 reads /dev/null.
    try:
        sys.stdout.flush()
    except Exception:  # noqa: B902
        pass
    out_fd = os.dup(1)
    in_fd = os.dup(0)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr

    def log(msg):
        if not quiet:
            try:
                sys.stderr.write(msg)
                sys.stderr.flush()
            except Exception:  # noqa: B902
                pass

    if memory_limit:
        set_memory_limit(memory_limit)
    timer = CaseTimer(timeout)
    inp = _Input(in_fd)
    out = _Output(out_fd)
    limit_doc = canon.render_error(RESOURCE_LIMIT)
    if trace:
        limit_doc += TRACE_MARKER
    hello = hello_text(unpickler, trace).encode("ascii")
    try:
        _write_all(out_fd, _HEAD.pack(len(hello)) + hello)
        while True:
            if out.parts and (not inp.ready() or out.stale()):
                out.flush()
            status, data = inp.next()
            if status == "eof":
                return 0
            if status == "short":
                log("brine_oracle serve: stdin ended inside a frame\n")
                return 1
            if status == "memory":
                resp = limit_doc
            else:
                resp = respond(data, unpickler, trace, max_output, timer,
                               log)
            data = None
            try:
                body = resp.encode("ascii")
            except MemoryError:
                body = limit_doc.encode("ascii")
            resp = None
            out.add(body)
            body = None
    except _BROKEN_PIPE as e:
        if not _is_broken_pipe(e):
            raise
        return 1   # the runner went away
    finally:
        timer.disarm()
        try:
            out.flush()
        except OSError:
            pass
