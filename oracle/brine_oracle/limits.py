"""Per-process and per-case limits shared by every oracle entry point
(the worker, the one-shot loader, the generic adapter)."""

import signal

from .stubs import CaseTimeout


def set_memory_limit(mb):
    """RLIMIT_AS to `mb` megabytes (clamped to the hard limit); False when
    the platform has no such limit."""
    try:
        import resource
    except ImportError:  # not POSIX
        return False
    limit = int(mb) * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and limit > hard:
        limit = hard
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return True


class CaseTimer(object):
    """Single-shot CPU-time alarm raising CaseTimeout once per arming.

    The handler disarms itself before raising, so at most one CaseTimeout
    is raised per case however the interrupted code unwinds; ``fired``
    says it happened even if something on the way swallowed it."""

    def __init__(self, seconds):
        self.seconds = float(seconds or 0)
        self.armed = False
        self.fired = False
        self.enabled = (self.seconds > 0 and hasattr(signal, "setitimer")
                        and hasattr(signal, "SIGPROF"))
        if self.enabled:
            signal.signal(signal.SIGPROF, self._handler)

    def _handler(self, signum, frame):
        if self.armed:
            self.armed = False
            self.fired = True
            raise CaseTimeout("per-case CPU time limit of %g s"
                              % self.seconds)

    def arm(self):
        self.fired = False
        if self.enabled:
            self.armed = True
            signal.setitimer(signal.ITIMER_PROF, self.seconds)

    def disarm(self):
        self.armed = False
        if self.enabled:
            signal.setitimer(signal.ITIMER_PROF, 0)
