"""brine's reference oracle: CPython's unpicklers with every global stubbed.

    from brine_oracle import load
    text, trace = load(data, unpickler="c")    # "c" or "py"

``text`` is canonical text v1 (docs/canonical-form.md), raw level; a pickle
CPython rejects gives ``brine-canonical 1 raw\\nerror <class>\\n``.  Nothing
a pickle names is ever imported or called.  Runs on CPython 3.6 ... 3.13
with the standard library only, on PyPy 3 (its Python unpickler only: it
has no C one), and on 2.7 with cPickle and pickle.Unpickler
(brine_oracle.py27, docs/oracle-py27.md: ``load`` and ``serve``, not
``adapt``).

Command line: ``python3 -m brine_oracle load FILE|- [--unpickler c|py]`` and
``python3 -m brine_oracle load --batch DIR``.
"""

import sys as _sys

if _sys.version_info[0] >= 3:
    from .loader import load, load_result, LoadResult, UNPICKLERS, \
        HAVE_C_UNPICKLER, DEFAULT_UNPICKLER, NO_C_UNPICKLER
else:
    from .py27 import load, load_result, LoadResult, UNPICKLERS, \
        HAVE_C_UNPICKLER, DEFAULT_UNPICKLER, NO_C_UNPICKLER
from .canon import render, render_error, OutputLimitExceeded
from .classify import classify, CLASSES

__all__ = ["load", "load_result", "LoadResult", "UNPICKLERS",
           "HAVE_C_UNPICKLER", "DEFAULT_UNPICKLER", "render",
           "render_error", "OutputLimitExceeded", "classify", "CLASSES"]
__version__ = "0.1.0"
