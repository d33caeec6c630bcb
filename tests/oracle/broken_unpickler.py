"""A deliberately broken unpickler, for brine's self-tests.

``BrokenUnpickler`` is CPython's pure-Python unpickler (``pickle._Unpickler``)
with exactly one planted deviation: BININT1 (``K``, a one-byte unsigned int)
loads one more than it should, so ``K\\x05.`` gives 6.  Everything else is
stock.  brine must notice: served through the generic adapter

    python3 -m brine_oracle.adapt_main --path tests/oracle \\
        broken_unpickler:BrokenUnpickler

its answers differ from the oracle's on every case holding a BININT1, and on
no other (tests/oracle/test_security.py, TestBrokenUnpicklerIsCaught; the
next issue's self-test uses it).

``load(data)`` is the same unpickler behind a ``load(bytes)`` function, to
exercise the adapter's function mode.

Nothing here imports or calls what a pickle names: the adapter swaps in stub
find_class/persistent_load (and this class does not define its own).
"""

import io
import pickle

__version__ = "1.0-broken"


class BrokenUnpickler(pickle._Unpickler):
    """pickle._Unpickler with BININT1 off by one."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_binint1(self):
        self.append(self.read(1)[0] + 1)   # the planted bug: should be + 0

    dispatch[pickle.BININT1[0]] = load_binint1


def load(data):
    """load(bytes) with the broken unpickler."""
    return BrokenUnpickler(io.BytesIO(data)).load()
