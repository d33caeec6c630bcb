"""The generic adapter: a user's Python unpickler served through adapter
protocol v1 (docs/adapter-protocol.md), without ever running what a pickle
names.

    python3 -m brine_oracle.adapt_main module:attr [--keep-find-class]
                                       [--one-shot] [--path DIR] ...

``attr`` is either an ``Unpickler`` class (a subclass of ``pickle.Unpickler``
or ``pickle._Unpickler``) or a ``load(bytes)`` function.

What is kept and what is swapped
--------------------------------
Default mode keeps the user's opcode handling and swaps in the oracle's stub
``find_class`` and ``persistent_load`` (:mod:`brine_oracle.stubs`): globals
become stubs, calls become ``call``/``new`` nodes, and the document is
comparable with every other implementation's.

``--keep-find-class`` keeps the user's own ``find_class`` as a *policy*, to
test a restricted unpickler: it is called for every global, and

* when it raises (anything), the load is reported ``error forbidden``;
* when it returns, what it returned is thrown away and the oracle's stub is
  used instead: a policy may return real objects (``getattr(builtins,
  name)``), and nothing read from a pickle is ever called for real.  Inside
  the policy, ``super().find_class(...)`` returns a placeholder, it neither
  imports nor records anything.

``persistent_load`` is stubbed in both modes.

How the swap reaches the user's code
------------------------------------
Before the user's module is imported, :func:`patch_pickle` replaces
``pickle.Unpickler``, ``pickle._Unpickler``, ``_pickle.Unpickler``,
``pickle.load``/``loads`` and ``_pickle.load``/``loads`` with stubbed
versions: subclasses of the real unpicklers whose ``find_class`` and
``persistent_load`` are data descriptors (:class:`_Hook`).  Every subclass
of them (``__init_subclass__``) gets its own ``find_class`` /
``persistent_load`` wrapped the same way, and instance assignments
(``self.find_class = f``) go through the descriptor, so the stub always wins
in default mode and the policy is only ever consulted in keep mode.  A class
attr is then subclassed once more with the hooks set explicitly.

Limits of the patching (the guard below is the backstop):

* code that reached the real classes or functions before the patch (a
  module imported earlier that did ``from pickle import loads``, an
  extension module caching ``_pickle.Unpickler``), or that digs them out
  afterwards (``pickle.Unpickler.__mro__``, ``importlib.reload(pickle)``),
  is not stubbed;
* the patch is in place while the user's module is imported too: a module
  that unpickles trusted data at import time gets stubs;
* an unpickler that is not built on CPython's (its own parser calling
  ``getattr`` on modules) is not stubbed either: only the guard stands
  between it and the pickle;
* keep mode needs the class to derive from the patched classes (it must
  have been defined after the patch), since a policy's ``super()`` call
  must never reach the real ``find_class``: the adapter refuses to start
  otherwise.

The guard
---------
:class:`Guard`, armed only while a case loads, refuses by raising
:class:`Forbidden` (a ``BaseException``, so ``except Exception`` cannot
swallow it); any refusal makes the case ``error forbidden``, whatever the
load did after it.  Two layers:

* a finder first on ``sys.meta_path`` (every Python version): importing any
  module not already in ``sys.modules`` is refused -- a name the pickle
  spelled, one an EXT code led to, or one a policy built.  So the user's
  unpickler must import what it needs before it loads (at module level);
  the adapter warms it up once on benign pickles, unarmed, and looks up the
  codecs CPython's unpicklers use, so their lazy imports happen before any
  case;
* an audit hook (``sys.addaudithook``, 3.8+) refusing ``pickle.find_class``
  (only the *real* find_class emits it), ``import``, ``exec``, ``compile``,
  ``marshal.load(s)``, ``code.__new__``, ``function.__new__``, opening
  anything but Python source for reading, process creation (``os.system``,
  ``os.exec``, ``os.spawn``, ``os.posix_spawn``, ``os.fork``,
  ``subprocess.Popen``, ``pty``), file system changes, sockets, ``ctypes``
  and more (:data:`DENY`, :data:`DENY_PREFIXES`).  Before 3.8 only the
  finder and the patching stand.

One load at a time per process (the patched classes find the current case in
a module-level state).  Runs on Python 3.6+.
"""

import copyreg
import functools
import io
import os
import pickle
import struct
import sys

try:
    import _pickle
except ImportError:  # PyPy
    _pickle = None

from .limits import CaseTimer
from .loader import _TrackingFile, _WholeInputFile
from .worker import _bounded
from . import canon
from .classify import (classify, LoadInfo, FORBIDDEN, INTERNAL,
                       RESOURCE_LIMIT)
from .stubs import Session

try:
    from .stubs import CaseTimeout
except ImportError:  # an older stubs.py
    class CaseTimeout(Exception):
        pass

try:
    from .trace import render_trace_lines, TRACE_MARKER
except ImportError:  # brine_oracle.trace not there: no trace feature
    render_trace_lines = None
    TRACE_MARKER = "--- trace\n"

__all__ = ["Guard", "Forbidden", "install_guard", "patch_pickle",
           "Adapter", "AdaptResult", "serve", "one_shot", "hello_text",
           "adapter_name", "DENY", "DENY_PREFIXES", "HAVE_TRACE",
           "HAVE_AUDIT"]

HAVE_TRACE = render_trace_lines is not None
# PyPy 3.9 has sys.addaudithook but raises few of CPython's events (not
# "import", not "os.system"): a guard built on them would look armed and
# not be.  Only CPython's hooks count.
HAVE_AUDIT = hasattr(sys, "addaudithook") and \
    getattr(sys, "implementation", None) is not None and \
    sys.implementation.name == "cpython"

# The real classes, captured before anything is patched.
REAL_PY_UNPICKLER = pickle._Unpickler
REAL_C_UNPICKLER = _pickle.Unpickler if _pickle is not None \
    else pickle.Unpickler
REAL_UNPICKLERS = (REAL_C_UNPICKLER, REAL_PY_UNPICKLER)


# --------------------------------------------------------------------------
# The audit hook

class Forbidden(BaseException):
    """An audited action was refused while a case was loading."""


DENY = frozenset([
    "pickle.find_class", "import", "exec", "compile", "code.__new__",
    "function.__new__",
    "marshal.load", "marshal.loads", "builtins.input", "builtins.breakpoint",
    "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "os.startfile", "os.putenv",
    "os.unsetenv", "os.chdir", "os.remove", "os.rmdir", "os.rename",
    "os.mkdir", "os.chmod", "os.chown", "os.chflags", "os.lchflags",
    "os.link", "os.symlink", "os.truncate", "os.utime", "os.setxattr",
    "os.removexattr", "os.add_dll_directory", "subprocess.Popen",
    "pty.spawn", "sys.addaudithook", "sys.settrace", "sys.setprofile",
    "sys._current_frames", "sys.remote_exec", "gc.get_objects",
    "gc.get_referrers", "gc.get_referents", "mmap.__new__",
    "resource.setrlimit", "resource.prlimit", "signal.pthread_kill",
    "tempfile.mkstemp", "tempfile.mkdtemp", "webbrowser.open",
    "urllib.Request", "pdb.Pdb", "glob.glob", "glob.glob/2",
])
DENY_PREFIXES = ("socket.", "ctypes.", "shutil.", "ftplib.", "smtplib.",
                 "poplib.", "imaplib.", "nntplib.", "telnetlib.",
                 "http.client.", "syslog.", "sqlite3.", "winreg.",
                 "_winapi.", "msvcrt.", "cpython.", "subprocess.",
                 "os.exec", "os.spawn", "os.posix_spawn", "_posixsubprocess.")
_WRITE_FLAGS = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
                | os.O_APPEND)


class _ImportBlocker(object):
    """First on sys.meta_path: while a case loads, importing any module not
    yet in sys.modules is refused (the import system asks the finders of
    sys.meta_path only for such modules, whatever the route: the import
    statement, __import__, importlib.import_module)."""

    def __init__(self, guard):
        self.guard = guard

    def find_spec(self, name, path=None, target=None):
        if self.guard.armed:
            self.guard.refuse("import", "import of %r while a case loads"
                              % (name,))
        return None

    def find_module(self, name, path=None):   # the pre-3.4 protocol
        self.find_spec(name, path)
        return None


class Guard(object):
    """The process's import blocker and audit hook, installed once and armed
    only while a case loads.

    ``events`` lists, for the current/last armed period, every refused
    ``(event, reason)``.  ``seen`` counts every audit event raised while
    armed (refused or not), by name."""

    def __init__(self):
        self.armed = False
        self.events = []
        self.seen = {}
        self.installed = False
        self.audit = False

    def install(self):
        if not self.installed:
            sys.meta_path.insert(0, _ImportBlocker(self))
            if HAVE_AUDIT:
                sys.addaudithook(self._hook)
                self.audit = True
            self.installed = True
        return self

    def arm(self):
        self.events = []
        self.seen = {}
        self.armed = True

    def disarm(self):
        self.armed = False

    def refuse(self, event, why):
        self.events.append((event, why))
        raise Forbidden("%s refused while loading a case: %s" % (event, why))

    def _hook(self, event, args):
        if not self.armed:
            return
        try:
            self.seen[event] = self.seen.get(event, 0) + 1
            why = self._refusal(event, args)
        except Exception as e:  # noqa: B902 - fail closed
            why = "guard error %s" % type(e).__name__
        if why:
            self.refuse(event, why)

    @staticmethod
    def _refusal(event, args):
        if event in DENY or event.startswith(DENY_PREFIXES):
            return "denied event"
        if event == "open":
            path = args[0] if args else None
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else 0
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                return "open for writing"
            if isinstance(flags, int) and flags & _WRITE_FLAGS:
                return "open for writing"
            if isinstance(path, bytes):
                path = path.decode("utf-8", "surrogateescape")
            if isinstance(path, str) and path.endswith(".py"):
                return None   # source lines for a traceback
            return "open of a file that is not Python source"
        return None


_GUARD = Guard()


def install_guard():
    """Install the import blocker and the audit hook (3.8+) once; returns
    the Guard."""
    return _GUARD.install()


# --------------------------------------------------------------------------
# The current case, as the hooks see it

class _State(object):
    def __init__(self):
        self.session = None    # the Session of the case loading now
        self.keep = False      # keep-find-class mode
        self.deciding = 0      # inside a user's find_class policy
        self.refused = None    # the exception a policy raised, if any


_state = _State()
_PENDING = type("brine_pending_global", (object,), {
    "__doc__": "What super().find_class returns inside a find_class policy "
               "in keep mode: a placeholder, nothing is imported."})


def _record_global(obj, module, name):
    session = _state.session
    if session is None:        # find_class outside a case: a private session
        session = Session()
    proto = getattr(obj, "proto", None) \
        if isinstance(obj, REAL_PY_UNPICKLER) else None
    if not isinstance(proto, int):
        proto = None
    return session.find_class(module, name, proto)


def _record_persid(obj, pid):
    session = _state.session if _state.session is not None else Session()
    return session.persistent_load(pid)


def _bind(raw, obj):
    get = getattr(type(raw), "__get__", None)
    if get is not None:
        return get(raw, obj, type(obj))
    return raw


def _find_class(hook, obj, module, name):
    if not _state.keep:
        return _record_global(obj, module, name)
    if _state.deciding:
        # a policy's super().find_class(...)
        if hook.user is None:
            return _PENDING
        return _bind(hook.user, obj)(module, name)
    inst = obj.__dict__.get("_brine_policy") if hasattr(obj, "__dict__") \
        else None
    policy = inst if inst is not None else \
        (_bind(hook.user, obj) if hook.user is not None else None)
    if policy is not None:
        _state.deciding += 1
        try:
            policy(module, name)   # what it returns is never used
        except BaseException as e:  # noqa: B902 - any refusal
            if _state.refused is None:
                _state.refused = e
            raise
        finally:
            _state.deciding -= 1
    return _record_global(obj, module, name)


def _unbound_find_class(hook, obj, module, name):
    return _find_class(hook, obj, module, name)


class _Hook(object):
    """Data descriptor standing for ``find_class`` or ``persistent_load`` on
    every class the adapter controls.  ``user`` is the user's own
    find_class found in that class's namespace (kept as the keep-mode
    policy), or None."""

    __slots__ = ("which", "user")

    def __init__(self, which, user=None):
        self.which = which
        self.user = user

    def __get__(self, obj, owner=None):
        if obj is None:
            # Class.find_class(self, module, name), as policies call their
            # base explicitly: a plain function
            if self.which == "persistent_load":
                return _record_persid
            return functools.partial(_unbound_find_class, self)
        if self.which == "persistent_load":
            return functools.partial(_record_persid, obj)
        return functools.partial(_find_class, self, obj)

    def __set__(self, obj, value):
        # self.find_class = f: kept as the keep-mode policy, never called
        # in default mode; self.persistent_load = f: ignored (stubbed).
        if self.which == "find_class":
            try:
                obj.__dict__["_brine_policy"] = value
            except AttributeError:
                pass

    def __delete__(self, obj):
        if self.which == "find_class":
            try:
                obj.__dict__.pop("_brine_policy", None)
            except AttributeError:
                pass


def _adopt(cls):
    """Wrap the find_class / persistent_load a class defines in _Hooks."""
    for which in ("find_class", "persistent_load"):
        raw = cls.__dict__.get(which)
        if raw is not None and not isinstance(raw, _Hook):
            setattr(cls, which, _Hook(which, raw if which == "find_class"
                                      else None))


def _make_stubbed(base, name):
    def __init_subclass__(cls, **kwargs):
        super(stubbed, cls).__init_subclass__(**kwargs)
        _adopt(cls)
    ns = {"find_class": _Hook("find_class"),
          "persistent_load": _Hook("persistent_load"),
          "__init_subclass__": classmethod(__init_subclass__),
          "__module__": "pickle",
          "__doc__": "%s with brine's stub find_class/persistent_load"
                     % base.__name__}
    stubbed = type(base)(name, (base,), ns)
    return stubbed


StubbedCUnpickler = _make_stubbed(REAL_C_UNPICKLER, "Unpickler")
StubbedPyUnpickler = _make_stubbed(REAL_PY_UNPICKLER, "_Unpickler")
STUBBED = (StubbedCUnpickler, StubbedPyUnpickler)


def _stub_loads(data, **kwargs):
    return StubbedCUnpickler(_WholeInputFile(bytes(data)), **kwargs).load()


def _stub_load(file, **kwargs):
    return StubbedCUnpickler(file, **kwargs).load()


def _stub_py_loads(data, **kwargs):
    return StubbedPyUnpickler(io.BytesIO(bytes(data)), **kwargs).load()


def _stub_py_load(file, **kwargs):
    return StubbedPyUnpickler(file, **kwargs).load()


def patch_pickle():
    """Replace pickle's and _pickle's unpicklers and load functions with the
    stubbed ones (call it before importing the user's module).  Returns a
    function that undoes it (for tests)."""
    saved = []

    def put(mod, attr, value):
        if mod is None:
            return
        saved.append((mod, attr, mod.__dict__.get(attr, _PENDING)))
        setattr(mod, attr, value)

    put(pickle, "Unpickler", StubbedCUnpickler)
    put(pickle, "_Unpickler", StubbedPyUnpickler)
    put(pickle, "loads", _stub_loads)
    put(pickle, "load", _stub_load)
    put(pickle, "_loads", _stub_py_loads)
    put(pickle, "_load", _stub_py_load)
    put(_pickle, "Unpickler", StubbedCUnpickler)
    put(_pickle, "loads", _stub_loads)
    put(_pickle, "load", _stub_load)

    def undo():
        for mod, attr, old in reversed(saved):
            if old is _PENDING:
                delattr(mod, attr)
            else:
                setattr(mod, attr, old)
        del saved[:]
    return undo


# --------------------------------------------------------------------------
# The adapter

def _readline_property():
    def get(self):
        return self._brine_readline

    def put(self, real):
        def readline():
            line = real()
            self._brine_last_line = line
            return line
        self._brine_readline = readline
    return property(get, put)


def _mro_find_class(cls):
    for k in cls.__mro__:
        if "find_class" in k.__dict__:
            return k, k.__dict__["find_class"]
    return None, None


class AdaptResult(object):
    """One case: text (the document), lines (the trace, or None), error,
    reason, exception, refused (audit events refused)."""

    __slots__ = ("text", "lines", "error", "reason", "exception", "refused",
                 "trace")

    def __init__(self, text, lines, error=None, reason=None, exception=None,
                 refused=(), trace=()):
        self.text = text
        self.lines = lines
        self.error = error
        self.reason = reason
        self.exception = exception
        self.refused = list(refused)
        self.trace = trace

    @property
    def ok(self):
        return self.error is None

    def message(self):
        if self.error is None:
            return ""
        e = self.exception
        what = "%s: %s" % (type(e).__name__, e) if e is not None else ""
        return "%s (%s) [%s]" % (self.error, what, self.reason)


class Adapter(object):
    """Loads cases with a user's unpickler class or load function.

    target      an Unpickler subclass (pickle.Unpickler / pickle._Unpickler)
                or a callable load(bytes)
    keep        keep the user's find_class as a policy (see module doc)
    trace       add the safety trace (when brine_oracle.trace exists)
    timeout     per-case CPU seconds (0: none)
    warm        run warm_up() now (the user's code on benign pickles)
    """

    def __init__(self, target, keep=False, trace=True,
                 max_output=canon.DEFAULT_MAX_OUTPUT, timeout=0,
                 guard=None, warm=True):
        self.keep = bool(keep)
        self.trace = bool(trace) and HAVE_TRACE
        self.max_output = max_output
        self.guard = guard if guard is not None else install_guard()
        self.timer = CaseTimer(timeout) if timeout else None
        self.target = target
        self.warm = warm
        if isinstance(target, type) and issubclass(target, REAL_UNPICKLERS):
            self.kind = "class"
            self.py = issubclass(target, REAL_PY_UNPICKLER)
            self.cls = self._leaf_class(target)
        elif callable(target):
            self.kind = "function"
            self.py = None
            self.cls = None
        else:
            raise TypeError("%r is neither an Unpickler subclass nor a "
                            "callable load(bytes)" % (target,))
        if warm:
            self.warm_up()

    def _leaf_class(self, user):
        stubbed = issubclass(user, STUBBED)
        if self.keep and not stubbed:
            raise TypeError(
                "%s.%s does not derive from the patched pickle.Unpickler / "
                "pickle._Unpickler (it was defined before the adapter "
                "patched pickle): with --keep-find-class its find_class "
                "could reach the real one" % (user.__module__,
                                              user.__name__))
        owner, raw = _mro_find_class(user)
        if isinstance(raw, _Hook):
            fc = raw
        elif owner in REAL_UNPICKLERS:
            fc = _Hook("find_class")
        else:
            fc = _Hook("find_class", raw)
        ns = {"find_class": fc,
              "persistent_load": _Hook("persistent_load"),
              "__module__": user.__module__,
              "_brine_last_line": None, "_brine_readline": None}
        if issubclass(user, REAL_PY_UNPICKLER):
            owner_rl = None
            for k in user.__mro__:
                if "readline" in k.__dict__:
                    owner_rl = k
                    break
            if owner_rl is None:
                ns["readline"] = _readline_property()
        return type(user)("brine_adapted_" + user.__name__, (user,), ns)

    # ---- one case --------------------------------------------------------

    def warm_up(self):
        """Run the target, unarmed, on benign pickles of every protocol
        (built here from plain values, without a single global) and look up
        the codecs CPython's unpicklers use, so that lazy imports in the
        user's code and in the standard library happen now and not under
        the guard.  Returns the number of warm-up loads that failed (their
        failures do not matter)."""
        import codecs
        for enc in ("ascii", "latin-1", "utf-8", "raw-unicode-escape",
                    "unicode-escape", "utf-16", "utf-32", "bytes"):
            try:
                codecs.lookup(enc)
            except LookupError:
                pass
        base = [None, True, False, 0, 1, -1, 255, 65536, 2 ** 31, 2 ** 70,
                -2 ** 70, 1.5, u"", u"\xe9\u20ac", (), (1,), (1, 2),
                (1, 2, 3), [], {}, {1: 2}]
        base.append([base[-1], base[-2]])
        failed = 0
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            # only values pickled without any global at this protocol: the
            # warm-up must not make even a benign find_class call
            value = list(base)
            if proto >= 3:
                value += [b"", b"x" * 300]
            if proto >= 4:
                value += [set([3]), frozenset([4])]
            if proto >= 5:
                value.append(bytearray(b"ab"))
            data = pickle.dumps(value, proto)
            _, exc, _, _ = self._run(data, Session(), armed=False)
            failed += exc is not None
        for data in (b"", b"K", b"\xff", b"I\n.", b"S'a'\n.", b"Va\n.",
                     b"(t.", b"Fx\n.", b"\x80\x05N."):
            self._run(data, Session(), armed=False)
        return failed

    def _run(self, data, session, plain_file=False, armed=True):
        """Load `data`, the guard armed.  Returns (value, exc, file,
        unpickler)."""
        f = u = None
        _state.session = session
        _state.keep = self.keep
        _state.deciding = 0
        copyreg._extension_cache.clear()
        if armed:
            self.guard.arm()
        try:
            if self.timer is not None:
                self.timer.arm()
            try:
                if self.kind == "class":
                    if self.py:
                        f = _TrackingFile(data)
                    elif plain_file:
                        f = io.BytesIO(data)
                    else:
                        f = _WholeInputFile(data)
                    u = self.cls(f)
                    value = u.load()
                else:
                    value = self.target(data)
                return value, None, f, u
            finally:
                if self.timer is not None:
                    self.timer.disarm()
                self.guard.disarm()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: B902 - everything is classified
            return None, e, f, u
        finally:
            self.guard.disarm()
            copyreg._extension_cache.clear()
            _state.session = None
            _state.deciding = 0

    def _rerun(self, data, plain_file):
        """classify's rerun for C-based classes (see brine_oracle.loader)."""
        if plain_file:
            saved = self.guard.events
            _, e, f, _ = self._run(data, Session(), plain_file=True)
            self.guard.events = saved + self.guard.events
            return e, (f.tell() if f is not None else None)
        from .loader import load_result
        r = load_result(data, "py", 1 << 20)
        return r.exception, r

    def result(self, data):
        """Load one case; never raises for anything in `data`."""
        data = bytes(data)
        session = Session()
        _state.refused = None
        value, exc, f, u = self._run(data, session)
        refused = list(self.guard.events)
        policy = _state.refused
        timed_out = self.timer is not None and self.timer.fired
        error = reason = None
        if refused:
            error, reason = FORBIDDEN, "audit hook refused %s" % ", ".join(
                e for e, _ in refused)
            exc = exc or Forbidden(reason)
        elif timed_out or isinstance(exc, CaseTimeout):
            error, reason = RESOURCE_LIMIT, "per-case time limit"
        elif exc is not None and policy is not None:
            error, reason = FORBIDDEN, "find_class refused: %s: %s" % (
                type(policy).__name__, policy)
        elif exc is not None:
            error, reason = self._classify(exc, data, f, u)
            refused = list(self.guard.events)   # a rerun may have tripped
            if refused:
                error, reason = FORBIDDEN, "audit hook refused %s" % \
                    ", ".join(e for e, _ in refused)
        f = u = None
        if error is None:
            try:
                text = canon.render(value, self.max_output)
            except canon.OutputLimitExceeded as e:
                error, reason, exc = RESOURCE_LIMIT, "output limit", e
            except (MemoryError, RecursionError) as e:
                error, reason, exc = RESOURCE_LIMIT, "emitter resources", e
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: B902
                error, reason, exc = INTERNAL, (
                    "the load returned something canonical text cannot "
                    "hold (%s: %s)" % (type(e).__name__, e)), e
        value = None
        if error is not None:
            text = canon.render_error(error)
        lines = None
        if self.trace:
            try:
                lines = render_trace_lines(session.trace, data)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: B902 - an adapter bug
                text, error, reason, exc = canon.render_error(INTERNAL), \
                    INTERNAL, "trace: %s: %s" % (type(e).__name__, e), e
                lines = []
        return AdaptResult(text, lines, error, reason, exc, refused,
                           session.trace)

    def _classify(self, exc, data, f, u):
        if self.kind == "class":
            info = LoadInfo(unpickler="py" if self.py else "c", data=data)
            if self.py:
                info.short_read = getattr(f, "short_read", False)
                info.last_line = getattr(u, "_brine_last_line", None)
            else:
                info.rerun = self._rerun
        else:
            tb = exc.__traceback__
            py = False
            pf = (getattr(pickle, "__file__", "") or "").rstrip("c")
            while tb is not None:
                if tb.tb_frame.f_code.co_filename in (pf, pf + "c"):
                    py = True
                    break
                tb = tb.tb_next
            info = LoadInfo(unpickler="py" if py else "c", data=data)
        try:
            return classify(exc, info)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: B902
            return INTERNAL, "classifier failed: %s: %s" % (
                type(e).__name__, e)

    def respond(self, data):
        """The response text of one case (document, then the trace section
        when the trace feature is on), bounded by max_output."""
        r = self.result(data)
        if not self.trace:
            return r.text
        return _bounded(r.text, r.lines or [], self.max_output)



# --------------------------------------------------------------------------
# Hello and the two protocol modes

def adapter_name(spec):
    """'user-' + spec, made to fit [a-z0-9.-]+ (lowercased, every other
    character a '-')."""
    out = []
    for ch in "user-" + spec.replace(":", "."):
        c = ch.lower()
        out.append(c if ("a" <= c <= "z" or "0" <= c <= "9" or c in ".-")
                   else "-")
    return "".join(out)


def hello_text(name, version, trace):
    # the user's unpickler runs on this Python's pickle machinery: it can
    # know no protocol newer than this Python's
    import pickle
    return ("brine-adapter 1\nname %s\nversion %s\nlevel raw\nfeatures%s\n"
            "highest-protocol %d\n"
            % (name, version, " trace" if trace else "", pickle.HIGHEST_PROTOCOL))


def _private_stdio():
    """Protocol fds: private duplicates of 0 and 1; fd 1 (and sys.stdout)
    then lead to stderr and fd 0 reads /dev/null, so the user's code can
    neither corrupt nor consume frames."""
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
    return in_fd, out_fd


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def serve(adapter, name, version, log=None, max_request=1 << 30):
    """Persistent mode on fds 0/1 until EOF.  Returns the exit status (0 on
    EOF between frames, 1 when stdin ends inside a frame)."""
    in_fd, out_fd = _private_stdio()
    rfile = io.open(in_fd, "rb", buffering=1 << 16)
    head = struct.Struct("<I")
    hello = hello_text(name, version, adapter.trace).encode("ascii")
    _write_all(out_fd, head.pack(len(hello)) + hello)
    try:
        while True:
            h = rfile.read(4)
            if not h:
                return 0
            if len(h) < 4:
                if log:
                    log("brine adapt: stdin ended inside a frame header\n")
                return 1
            n = head.unpack(h)[0]
            if n > max_request:
                left = n
                while left:
                    chunk = rfile.read(min(left, 1 << 20))
                    if not chunk:
                        return 1
                    left -= len(chunk)
                resp = canon.render_error(RESOURCE_LIMIT)
                if adapter.trace:
                    resp += TRACE_MARKER
            else:
                data = rfile.read(n)
                if len(data) < n:
                    if log:
                        log("brine adapt: stdin ended inside a frame\n")
                    return 1
                r = adapter.result(data)
                if log and r.error in (INTERNAL, FORBIDDEN):
                    log("brine adapt: %s\n" % r.message())
                resp = r.text if not adapter.trace else \
                    _bounded(r.text, r.lines or [], adapter.max_output)
                data = r = None
            body = resp.encode("ascii")
            _write_all(out_fd, head.pack(len(body)) + body)
    except BrokenPipeError:
        return 1


def one_shot(adapter, log=None):
    """One-shot mode: the pickle on stdin, the document on stdout; 0 loaded,
    1 rejected."""
    in_fd, out_fd = _private_stdio()
    with io.open(in_fd, "rb") as f:
        data = f.read()
    r = adapter.result(data)
    if log and r.error is not None:
        log("brine adapt: %s\n" % r.message())
    _write_all(out_fd, r.text.encode("ascii"))
    return 0 if r.ok else 1
