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
    says it happened even if something on the way swallowed it.

    A case ends with disarm() (stops the itimer) or, cheaper, with done():
    only a flag, for a caller that arms again for its next case anyway
    (the worker: one setitimer per case instead of two, at about 1.5 us
    each on a VM).  The itimer then keeps counting; should it expire
    between cases, the handler finds the timer unarmed and returns.  A
    signal from an earlier arming that is still pending when the next case
    is armed is ignored too: the handler only raises when the itimer has
    really run out (getitimer reads 0), and arm() has just restarted it."""

    def __init__(self, seconds):
        self.seconds = float(seconds or 0)
        self.armed = False
        self.fired = False
        self.enabled = (self.seconds > 0 and hasattr(signal, "setitimer")
                        and hasattr(signal, "SIGPROF"))
        if self.enabled:
            signal.signal(signal.SIGPROF, self._handler)
            # done() leaves the itimer running into the caller's own I/O:
            # restart system calls rather than fail them with EINTR (which
            # Python 2.7 does not retry by itself)
            if hasattr(signal, "siginterrupt"):
                signal.siginterrupt(signal.SIGPROF, False)

    def _handler(self, signum, frame):
        if self.armed and \
                signal.getitimer(signal.ITIMER_PROF)[0] == 0:
            self.armed = False
            self.fired = True
            raise CaseTimeout("per-case CPU time limit of %g s"
                              % self.seconds)

    def arm(self):
        self.fired = False
        if self.enabled:
            signal.setitimer(signal.ITIMER_PROF, self.seconds)
            self.armed = True

    def done(self):
        """The case is over; the itimer is left running (see above)."""
        self.armed = False

    def disarm(self):
        self.armed = False
        if self.enabled:
            signal.setitimer(signal.ITIMER_PROF, 0)
