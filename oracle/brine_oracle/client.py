"""Runner side of the adapter protocol v1 (docs/adapter-protocol.md).

    from brine_oracle.client import Adapter

    with Adapter(["/usr/bin/python3", "-m", "brine_oracle", "serve"],
                 timeout=10.0) as a:
        print(a.name, a.features)
        r = a.run(b"\\x80\\x04K\\x01.")
        text, trace = r                 # r.status: "ok" | "timeout" | "crash"
        for r in a.run_many(cases, window=32):   # pipelined, in order
            ...

Works with any adapter program (``brine serve``, ``python3 -m brine_oracle
serve``, a user's own): it starts the process, reads and checks the hello,
sends one request frame per case and reads one response frame per case.
The runner's obligations of the protocol (section 3) are kept here:

* per-case timeout (wall clock, measured from the moment the adapter could
  start on the case, i.e. the previous response arrived): the adapter's
  process group is killed, the case is answered ``timeout``, and a fresh
  adapter is started for the cases that follow;
* a dead adapter (EOF, a short frame, an exit, a frame above ``max_frame``
  bytes) answers ``crash`` for the case in flight and is restarted;
* no case is lost: every case given gets exactly one :class:`Response`, in
  order; cases already sent behind the failed one (``run_many``) are sent
  again to the new adapter.

An adapter that cannot be started or greets badly raises
:class:`AdapterError` (at the first start; later, ``max_start_failures``
consecutive failed restarts raise it, each failing case answering
``crash`` before that).

Standard library only; Python 3.6+; POSIX (pipes, ``select.poll``,
process groups).
"""

import collections
import errno
import os
import select
import signal
import struct
import subprocess
import time

__all__ = ["Adapter", "Response", "AdapterError", "parse_hello",
           "split_response", "OK", "TIMEOUT", "CRASH", "DEFAULT_MAX_FRAME"]

OK = "ok"
TIMEOUT = "timeout"
CRASH = "crash"

# Canonical text is limited to 1 GiB by default by both reference
# emitters; the trace rides along.  Anything bigger is a crash.
DEFAULT_MAX_FRAME = (1 << 30) + (1 << 28)
MAX_HELLO = 1 << 16
TRACE_LINE = "--- trace\n"
_HEAD = struct.Struct("<I")
# os.read allocates its full size up front: 1 MiB per read made synchronous
# runs 6-10x slower than 64 KiB (measured with bench/adapter_bench_py.py).
_READ_CHUNK = 1 << 16
_WRITE_CHUNK = 1 << 20
_COALESCE = 1 << 16


class AdapterError(Exception):
    """The adapter could not be started, or its hello is not protocol v1."""


class Response(object):
    """The outcome of one case.

    status   "ok", "timeout" or "crash"
    text     the canonical document (str), None unless ok
    trace    the safety trace lines as text (str, "" when empty), None when
             the response has no trace section (or unless ok)
    detail   why, for timeout and crash (str), else None
    seconds  wall time from when the adapter could start on the case to its
             answer (or to the verdict)

    Unpacks as ``text, trace = response``.
    """

    __slots__ = ("status", "text", "trace", "detail", "seconds")

    def __init__(self, status, text=None, trace=None, detail=None,
                 seconds=0.0):
        self.status = status
        self.text = text
        self.trace = trace
        self.detail = detail
        self.seconds = seconds

    @property
    def ok(self):
        return self.status == OK

    def __iter__(self):
        yield self.text
        yield self.trace

    def __repr__(self):
        if self.status == OK:
            return "<Response ok %r%s>" % (
                self.text[:60], "" if self.trace is None
                else " trace %d lines" % self.trace.count("\n"))
        return "<Response %s: %s>" % (self.status, self.detail)


def parse_hello(raw):
    """dict of a hello frame's `key value` lines; ``features`` is a list.
    Raises AdapterError unless the first line is ``brine-adapter 1``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AdapterError("hello is not UTF-8: %r" % raw[:80])
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "brine-adapter 1":
        raise AdapterError("not a brine adapter v1 hello: %r" % text[:80])
    info = {"features": []}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        info[key] = value
    feats = info.get("features", "")
    if not isinstance(feats, list):
        info["features"] = feats.split()
    return info


def split_response(text):
    """(document, trace) of a response text; trace None without a
    ``--- trace`` line."""
    if text.startswith(TRACE_LINE):
        return "", text[len(TRACE_LINE):]
    i = text.find("\n" + TRACE_LINE)
    if i < 0:
        return text, None
    return text[:i + 1], text[i + 1 + len(TRACE_LINE):]


class _Dead(Exception):
    pass


class _Late(Exception):
    pass


def _describe_exit(code):
    if code is None:
        return "still running"
    if code < 0:
        try:
            return "killed by signal %s" % signal.Signals(-code).name
        except (ValueError, AttributeError):
            return "killed by signal %d" % -code
    return "exited with status %d" % code


class Adapter(object):
    """One adapter process, restarted as needed (see the module docstring).

    argv                the command (a list; call interpreters by absolute
                        path)
    timeout             per-case wall-clock seconds (None: no limit)
    start_timeout       seconds to wait for the hello
    max_frame           response frames above this many bytes are a crash
    env, cwd            for the process
    stderr              where the adapter's stderr goes (None: inherited,
                        subprocess.DEVNULL, a file object or fd)
    max_start_failures  consecutive failed restarts before AdapterError
    """

    def __init__(self, argv, timeout=30.0, start_timeout=60.0,
                 max_frame=DEFAULT_MAX_FRAME, env=None, cwd=None,
                 stderr=None, max_start_failures=3):
        self.argv = list(argv)
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.max_frame = max_frame
        self.env = env
        self.cwd = cwd
        self.stderr = stderr
        self.max_start_failures = max_start_failures
        self.hello = None
        self.starts = 0          # processes started
        self.restarts = 0        # ... after a timeout or a crash
        self.timeouts = 0
        self.crashes = 0
        self.confirmations = 0   # failures re-run alone (run_many)
        self._proc = None
        self._poll = None
        self._rfd = self._wfd = -1
        self._rbuf = bytearray()
        self._rpos = 0
        self._wq = collections.deque()   # memoryviews still to write
        self._wclosed = False
        self._eof = False
        self._start_failures = 0
        self._need_restart = False
        self._last_exit = None
        self._start_error = None

    # ---- hello -----------------------------------------------------------

    @property
    def name(self):
        return self.hello.get("name") if self.hello else None

    @property
    def version(self):
        return self.hello.get("version") if self.hello else None

    @property
    def level(self):
        return self.hello.get("level") if self.hello else None

    @property
    def features(self):
        return self.hello.get("features", []) if self.hello else []

    @property
    def pid(self):
        return self._proc.pid if self._proc is not None else None

    # ---- process ---------------------------------------------------------

    def start(self):
        """Start the adapter and read its hello (no-op when running)."""
        if self._proc is not None:
            return
        self._rbuf = bytearray()
        self._rpos = 0
        self._wq.clear()
        self._wclosed = False
        self._eof = False
        try:
            proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.stderr, bufsize=0, env=self.env, cwd=self.cwd,
                close_fds=True, start_new_session=True)
        except OSError as e:
            raise AdapterError("cannot start %r: %s" % (self.argv, e))
        self._proc = proc
        self.starts += 1
        self._rfd = proc.stdout.fileno()
        self._wfd = proc.stdin.fileno()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._poll = select.poll()
        self._poll.register(self._rfd, select.POLLIN)
        deadline = None if self.start_timeout is None \
            else time.monotonic() + self.start_timeout
        try:
            raw = self._read_frame(deadline, MAX_HELLO)
            hello = parse_hello(bytes(raw))
        except _Dead as e:
            self._kill()
            raise AdapterError("%r: no hello: %s" % (self.argv, e))
        except _Late:
            self._kill()
            raise AdapterError("%r: no hello within %s s"
                               % (self.argv, self.start_timeout))
        except AdapterError:
            self._kill()
            raise
        self.hello = hello

    def _kill(self):
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            try:
                # the adapter's own process group (start_new_session)
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                try:
                    proc.kill()
                except OSError:
                    pass
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait()
        except OSError:
            pass
        self._last_exit = proc.returncode
        self._poll = None
        self._wq.clear()
        self._rfd = self._wfd = -1

    def close(self, timeout=5.0):
        """Close the adapter's stdin, wait for it to exit (kill it after
        `timeout` seconds); returns its exit status (None if not running)."""
        proc = self._proc
        if proc is None:
            return None
        self._proc = None
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            # stdout closed too: an adapter still writing gets EPIPE rather
            # than blocking on a full pipe
            proc.stdout.close()
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc = proc
            self._kill()
            code = proc.returncode
        self._poll = None
        self._rfd = self._wfd = -1
        return code

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if self._proc is not None:
                self._kill()
        except Exception:  # noqa: B902 - interpreter shutdown
            pass

    # ---- I/O ---------------------------------------------------------------

    def _queue(self, data):
        head = _HEAD.pack(len(data))
        if len(data) <= _COALESCE:
            self._wq.append(memoryview(head + data))
        else:
            self._wq.append(memoryview(head))
            self._wq.append(memoryview(data))

    def _flush_some(self):
        """Write what the pipe takes now (small requests coalesced into one
        write, so a pipelined batch wakes the adapter once)."""
        wq = self._wq
        while wq:
            view = wq[0]
            if len(wq) > 1 and len(view) < _COALESCE:
                parts = []
                size = 0
                while wq and size < _WRITE_CHUNK and \
                        len(wq[0]) < _COALESCE:
                    v = wq.popleft()
                    parts.append(v)
                    size += len(v)
                view = memoryview(b"".join(parts))
                wq.appendleft(view)
            try:
                n = os.write(self._wfd, view[:_WRITE_CHUNK])
            except BlockingIOError:
                return
            except (BrokenPipeError, OSError) as e:
                if isinstance(e, BrokenPipeError) or e.errno in (
                        errno.EPIPE, errno.EBADF):
                    # The adapter stopped reading; what it already wrote
                    # may still be read, then EOF decides.
                    self._wclosed = True
                    wq.clear()
                    return
                raise
            if n == len(view):
                wq.popleft()
            else:
                wq[0] = view[n:]

    def _fill(self, need, deadline):
        """Read until the buffer holds `need` bytes past _rpos; raises _Dead
        on EOF, _Late at the deadline.  Writes pending data meanwhile."""
        rbuf = self._rbuf
        poll = self._poll
        rfd = self._rfd
        wfd = self._wfd
        wreg = False
        try:
            while len(rbuf) - self._rpos < need:
                if self._eof:
                    raise _Dead("adapter closed its stdout")
                if self._wq and not self._wclosed:
                    self._flush_some()
                want_write = bool(self._wq) and not self._wclosed
                if want_write != wreg:
                    if want_write:
                        poll.register(wfd, select.POLLOUT)
                    else:
                        poll.unregister(wfd)
                    wreg = want_write
                if deadline is None:
                    wait = -1
                else:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        raise _Late()
                    wait = int(wait * 1000) + 1
                try:
                    events = poll.poll(wait)
                except InterruptedError:
                    continue
                for fd, ev in events:
                    if fd == rfd:
                        try:
                            chunk = os.read(rfd, _READ_CHUNK)
                        except BlockingIOError:
                            continue
                        except OSError as e:
                            raise _Dead("reading the adapter's stdout: %s"
                                        % e)
                        if not chunk:
                            self._eof = True
                        else:
                            if self._rpos and self._rpos == len(rbuf):
                                del rbuf[:]
                                self._rpos = 0
                            rbuf += chunk
                    elif fd == wfd:
                        if ev & select.POLLOUT:
                            self._flush_some()
                        elif ev & (select.POLLERR | select.POLLHUP |
                                   select.POLLNVAL):
                            self._wclosed = True
                            self._wq.clear()
        finally:
            if wreg and self._poll is poll:
                try:
                    poll.unregister(wfd)
                except (KeyError, ValueError, OSError):
                    pass

    def _read_frame(self, deadline, bound):
        """One frame's payload (a bytearray slice copy)."""
        self._fill(4, deadline)
        pos = self._rpos
        n = _HEAD.unpack_from(self._rbuf, pos)[0]
        if n > bound:
            raise _Dead("frame of %d bytes, above the bound of %d"
                        % (n, bound))
        try:
            self._fill(4 + n, deadline)
        except _Dead as e:
            have = len(self._rbuf) - self._rpos - 4
            raise _Dead("%s inside a %d-byte frame (%d bytes read)"
                        % (e, n, have))
        start = self._rpos + 4
        payload = self._rbuf[start:start + n]
        self._rpos = start + n
        if self._rpos >= (1 << 20) and self._rpos * 2 >= len(self._rbuf):
            del self._rbuf[:self._rpos]
            self._rpos = 0
        return payload

    # ---- cases -------------------------------------------------------------

    def run(self, data):
        """The :class:`Response` to one pickle (bytes, possibly empty)."""
        for r in self.run_many((data,), window=1):
            return r

    def run_many(self, cases, window=16):
        """Responses to an iterable of pickles, in order, with up to
        `window` requests outstanding (pipelining; 1 = strictly one at a
        time).  Timeouts and crashes are per case, as for :meth:`run`."""
        window = max(1, int(window))
        inflight = collections.deque()
        try:
            for r in self._run_many(iter(cases), window, inflight):
                yield r
        finally:
            if inflight and self._proc is not None:
                # abandoned with requests outstanding: their answers would
                # be taken for later cases'; this adapter cannot be reused
                self._kill()

    def _run_many(self, it, window, inflight):
        exhausted = False
        t_ready = None
        # solo: the head case runs alone on a fresh adapter, nothing else
        # sent.  A timeout or crash while other requests were outstanding
        # cannot be pinned on the head (an adapter may have answered it and
        # held the answer back while it worked on the next one: batching),
        # so it is confirmed that way; the verdict is the solo run's.
        solo = False
        while True:
            while not solo and not exhausted and len(inflight) < window:
                try:
                    data = next(it)
                except StopIteration:
                    exhausted = True
                    break
                data = bytes(data)
                inflight.append(data)
                if self._proc is not None:
                    self._queue(data)
            if not inflight:
                return
            if self._proc is None:
                t_ready = None
                if not self._restart_for(inflight, solo):
                    inflight.popleft()
                    solo = False
                    self.crashes += 1
                    yield Response(CRASH, detail=self._start_error)
                    continue
            if t_ready is None:
                t_ready = time.monotonic()
            deadline = None if self.timeout is None \
                else t_ready + self.timeout
            try:
                raw = self._read_frame(deadline, self.max_frame)
            except (_Late, _Dead) as e:
                late = isinstance(e, _Late)
                now = time.monotonic()
                started = t_ready
                code = None
                if not late and self._proc is not None:
                    try:   # a dying adapter: let it be reaped
                        code = self._proc.wait(0.5)
                    except subprocess.TimeoutExpired:
                        code = None
                self._kill()
                self._need_restart = True
                t_ready = None
                if not solo and len(inflight) > 1:
                    solo = True
                    self.confirmations += 1
                    continue
                solo = False
                inflight.popleft()
                if late:
                    self.timeouts += 1
                    r = Response(TIMEOUT, detail="no answer within %s s"
                                 % self.timeout, seconds=now - started)
                else:
                    if code is None:
                        code = self._last_exit
                    self.crashes += 1
                    r = Response(CRASH, detail="%s (adapter %s)"
                                 % (e, _describe_exit(code)),
                                 seconds=now - started)
                yield r
                continue
            now = time.monotonic()
            inflight.popleft()
            doc, trace = split_response(
                raw.decode("utf-8", "surrogateescape"))
            r = Response(OK, doc, trace, seconds=now - t_ready)
            t_ready = now if inflight else None
            if solo:
                # confirmed: back to pipelining with this same adapter
                solo = False
                for data in inflight:
                    self._queue(data)
            yield r

    def _restart_for(self, inflight, solo=False):
        """Start a process (again) and queue the cases in flight (the head
        only when `solo`).  False (and self._start_error) when it could not
        start; AdapterError at the very first start or after
        max_start_failures in a row."""
        try:
            self.start()
        except AdapterError as e:
            self._start_failures += 1
            self._start_error = "adapter could not be (re)started: %s" % e
            if self.hello is None or \
                    self._start_failures >= self.max_start_failures:
                raise
            return False
        self._start_failures = 0
        if self._need_restart:
            self.restarts += 1
            self._need_restart = False
        for data in inflight:
            self._queue(data)
            if solo:
                break
        return True
