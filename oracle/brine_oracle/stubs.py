"""Stub globals for the brine oracle: nothing a pickle names is imported or run.

``Session.find_class(module, name)`` returns a *stub type*, one per distinct
(module, name) pair for the duration of one load (so identity is shared the
way real globals share it).  Stub types are real ``type`` objects, created by
the metaclass :class:`StubMeta`:

* calling a stub type (REDUCE, INST/OBJ with arguments, or a zero-argument
  call on something that is not a type) goes through ``StubMeta.__call__``
  and returns a ``call`` stub instance;
* ``cls.__new__(cls, *args, **kwargs)`` (NEWOBJ, NEWOBJ_EX, INST/OBJ without
  arguments; the C unpickler reaches it through ``tp_new``) returns a ``new``
  stub instance.

Stub instances (:class:`StubObj`: ``call``, ``new`` and ``persid``) are
callable too (real exploit chains call the result of a call), and every
stub, the types included, records the mutations the unpickler applies to it:
``__setstate__`` (BUILD), ``append``/``extend`` (APPEND/APPENDS),
``__setitem__`` (SETITEM/SETITEMS) and ``add`` (ADDITEMS).

Safety rules kept here:

* no ``__getattr__``/``__getattribute__`` hooks: a stub has exactly the
  attributes defined below and nothing else (``__getinitargs__`` in
  particular is absent, so INST/OBJ without arguments use ``__new__``);
* stubs hash and compare by identity and are not iterable;
* nothing read from a pickle is ever imported, looked up in a module,
  evaluated or called; the only things called are these recorders.

Every recorder runs inside :func:`_guard`, which turns an unexpected Python
exception into :class:`StubBug` so that the loader reports it as
``internal`` (a bug in the oracle) rather than as a fault of the pickle.

Works on Python 3.6 and later, and on 2.7 (brine_oracle.py27): stub types
are new-style classes there too.
"""

import functools

try:
    RecursionError
except NameError:  # Python 2.7: recursion overflow is a RuntimeError
    RecursionError = RuntimeError

__all__ = ["Session", "StubMeta", "StubBase", "StubObj", "StubBug",
           "CaseTimeout", "stub_record", "is_stub_type", "is_stub_obj"]


class StubBug(Exception):
    """An exception escaped a stub recorder: a bug in the oracle."""


class CaseTimeout(Exception):
    """Raised by the worker's per-case timer (brine_oracle.worker): the case
    ran out of time, which is a resource limit, not a bug nor a fault of the
    pickle.  Recorders let it through like MemoryError."""


class StubRecord(object):
    """What one stub is and what happened to it."""

    __slots__ = ("kind", "module", "name", "target", "args", "kwargs",
                 "muts", "session")

    def __init__(self, session, kind, module=None, name=None, target=None,
                 args=(), kwargs=None):
        self.session = session
        self.kind = kind          # "global" | "call" | "new" | "persid"
        self.module = module      # global only
        self.name = name          # global only
        self.target = target      # call: callable; new: class; persid: pid
        self.args = args          # call/new: the positional arguments (tuple)
        self.kwargs = kwargs      # call/new: dict or None
        self.muts = []            # [("build", state) | ("append", item) |
                                  #  ("setitem", key, value) | ("add", item)]


def _guard(fn):
    """Run a recorder; anything it raises is an oracle bug (StubBug)."""
    @functools.wraps(fn)
    def guarded(*a, **kw):
        try:
            return fn(*a, **kw)
        except (StubBug, CaseTimeout, MemoryError, RecursionError,
                KeyboardInterrupt, SystemExit):
            # Resource exhaustion is not a bug: let it be classified.
            raise
        except BaseException as e:  # noqa: B902 - re-raised as a bug
            raise StubBug("%s in stub recorder %s: %s"
                          % (type(e).__name__, fn.__name__, e))
    return guarded


def stub_record(obj):
    """The StubRecord of a stub type or stub instance (None otherwise)."""
    if type(obj) is StubObj:
        return obj._brine_rec
    if isinstance(obj, StubMeta):
        return type.__getattribute__(obj, "_brine_rec")
    return None


def is_stub_type(obj):
    return isinstance(obj, StubMeta)


def is_stub_obj(obj):
    return type(obj) is StubObj


# --------------------------------------------------------------------------
# Mutation recorders shared by stub types and stub instances

def _record(target, mut):
    rec = stub_record(target)
    rec.muts.append(mut)
    rec.session.trace.append(("mutate", mut[0], target))


@_guard
def _m_setstate(target, state):
    _record(target, ("build", state))


@_guard
def _m_append(target, item):
    _record(target, ("append", item))


@_guard
def _m_extend(target, items):
    # The unpickler always passes a list it built itself (APPENDS/APPEND on
    # a non-list); one .append per item, in order.
    for item in list(items):
        _record(target, ("append", item))


@_guard
def _m_add(target, item):
    _record(target, ("add", item))


@_guard
def _m_setitem(target, key, value):
    _record(target, ("setitem", key, value))


class _Mutator(object):
    """Descriptor giving a recorder bound to the instance, or to the class
    itself when looked up on a stub type (BUILD/APPEND/... applied to a
    global, e.g. ``c__main__\\nC\\n}b``), so ``StubType.__setstate__(state)``
    records on the stub type instead of needing an instance argument."""

    __slots__ = ("func",)

    def __init__(self, func):
        self.func = func

    def __get__(self, obj, owner=None):
        return functools.partial(self.func, owner if obj is None else obj)


# --------------------------------------------------------------------------
# Stub types (the `global` nodes)

class StubMeta(type):
    """Metaclass of stub types: calling a stub type records a `call`."""

    def __call__(cls, *args, **kwargs):
        return _make_call(cls, args, kwargs)

    def __setitem__(cls, key, value):
        _m_setitem(cls, key, value)

    def __repr__(cls):
        rec = type.__getattribute__(cls, "_brine_rec")
        return "<stub global %r %r>" % (rec.module, rec.name)


class StubBase(object):
    """Base of every stub type; never instantiated."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        # Reached by cls.__new__(cls, ...) and by the C unpickler's tp_new.
        return _make_new(cls, args, kwargs)

    __setstate__ = _Mutator(_m_setstate)
    append = _Mutator(_m_append)
    extend = _Mutator(_m_extend)
    add = _Mutator(_m_add)


# --------------------------------------------------------------------------
# Stub instances (`call`, `new`, `persid`)

class StubObj(object):
    """A stub instance: the result of a call, of ``__new__`` or of
    ``persistent_load``.  Its class is never reachable from a pickle."""

    __slots__ = ("_brine_rec",)

    def __call__(self, *args, **kwargs):
        return _make_call(self, args, kwargs)

    def __setitem__(self, key, value):
        _m_setitem(self, key, value)

    __setstate__ = _Mutator(_m_setstate)
    append = _Mutator(_m_append)
    extend = _Mutator(_m_extend)
    add = _Mutator(_m_add)

    def __repr__(self):
        return "<stub %s at 0x%x>" % (self._brine_rec.kind, id(self))


def _new_obj(session, kind, target, args, kwargs):
    obj = object.__new__(StubObj)
    obj._brine_rec = StubRecord(session, kind, target=target, args=args,
                                kwargs=kwargs)
    return obj


def _session_of(target):
    return stub_record(target).session


@_guard
def _make_call(target, args, kwargs):
    session = _session_of(target)
    obj = _new_obj(session, "call", target, tuple(args),
                   dict(kwargs) if kwargs else None)
    session.trace.append(("call", target, obj))
    return obj


def _make_new(cls, args, kwargs):
    if not isinstance(cls, StubMeta):
        # Not reachable through the unpicklers (a stub instance's __new__ is
        # object.__new__); kept so a misuse fails like CPython would.
        raise TypeError("__new__(X): X is not a stub type")
    return _record_new(cls, args, kwargs)


@_guard
def _record_new(cls, args, kwargs):
    session = _session_of(cls)
    obj = _new_obj(session, "new", cls, tuple(args),
                   dict(kwargs) if kwargs else None)
    session.trace.append(("new", cls, obj))
    return obj


# --------------------------------------------------------------------------
# One load's worth of state

class Session(object):
    """State of one load: the stub types made so far and the trace.

    ``trace`` is an ordered list of events:

    * ``("global", module, name, stub_type, proto)`` - find_class was asked
      for (module, name) (every time, also when the stub type is reused);
      ``proto`` is the protocol in effect when the unpickler tells (the
      Python one does), else None (brine_oracle.trace recovers it);
    * ``("call", target, result)`` - a stub was called;
    * ``("new", cls, result)`` - ``cls.__new__`` ran;
    * ``("persid", pid, result)`` - persistent_load ran;
    * ``("mutate", kind, target)`` - a mutation was recorded on a stub
      (kind: build, append, setitem, add).
    """

    def __init__(self, type_pool=None):
        self.globals = {}
        self.trace = []
        # type_pool: a dict (module, name) -> stub type shared by successive
        # sessions, to save creating a class per global per load (the
        # worker's hot path).  A pooled type gets a fresh record when a new
        # session takes it, so only one session may use a pool at a time,
        # and the graphs of earlier loads must no longer be looked at.
        self.type_pool = type_pool

    def find_class(self, module, name, proto=None):
        return _find_class(self, module, name, proto)

    def persistent_load(self, pid):
        return _persistent_load(self, pid)


@_guard
def _find_class(self, module, name, proto=None):
    key = (module, name)
    cls = self.globals.get(key)
    if cls is None:
        pool = self.type_pool
        if pool is None:
            cls = _make_stub_type(self, module, name)
        else:
            cls = pool.get(key)
            if cls is None:
                cls = _make_stub_type(self, module, name)
                if len(pool) >= TYPE_POOL_MAX:
                    pool.clear()
                pool[key] = cls
            else:
                type.__setattr__(cls, "_brine_rec", StubRecord(
                    self, "global", module=module, name=name))
        self.globals[key] = cls
    self.trace.append(("global", module, name, cls, proto))
    return cls


@_guard
def _persistent_load(self, pid):
    obj = _new_obj(self, "persid", pid, (), None)
    self.trace.append(("persid", pid, obj))
    return obj


TYPE_POOL_MAX = 1024


def _make_stub_type(session, module, name):
    # The Python-level class name is fixed: (module, name) come from the
    # pickle and may contain anything (NUL, surrogates) that type() refuses.
    rec = StubRecord(session, "global", module=module, name=name)
    return StubMeta("stub", (StubBase,), {"__slots__": (), "_brine_rec": rec,
                                          "__module__": "brine_oracle.stubs"})
