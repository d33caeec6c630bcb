"""Tests of the Python 2.7 worker (brine_oracle.py27, docs/oracle-py27.md),
run by a Python 3 (ctest `oracle.unit`): the 2.7 worker is started as a
subprocess, like any adapter.  Skipped, with the reason, when no CPython 2.7
is found (BRINE_PY27, else ~/.pyenv/versions/2.7*/bin/python2.7, else
/usr/bin/python2.7).  The security suite runs under 2.7 itself
(tests/oracle/run_all_pythons.sh).

The central check is oracle against oracle: on every case of the corpus
group `py2-written` (pickles 2.7 itself wrote), 2.7's cPickle and pickle.py
must answer exactly what Python 3's C unpickler answers when it is asked for
py2 semantics (``encoding="bytes"``: a py2 str stays bytes) and its dicts are
printed in the 2.7 worker's order (keys sorted like set elements), INST/OBJ
being the one documented difference (`call` in 2.7, `new` in Python 3).
"""

import glob
import json
import os
import pickle
import pickletools
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ORACLE = os.path.join(REPO, "oracle")
CORPUS = os.path.join(REPO, "corpus")
sys.path.insert(0, ORACLE)

from brine_oracle import canon, loader  # noqa: E402
from brine_oracle.client import Adapter  # noqa: E402
from brine_oracle.trace import render_trace_lines  # noqa: E402

H = "brine-canonical 1 raw\n"


def find_py27():
    env = os.environ.get("BRINE_PY27")
    if env:
        return env
    cands = sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/2.7*/bin/python2.7")), reverse=True)
    cands += ["/usr/bin/python2.7", "/usr/local/bin/python2.7"]
    for p in cands:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


PY27 = find_py27()
NO_PY27 = "no CPython 2.7 found (set BRINE_PY27)"


def env27():
    env = dict(os.environ)
    env["PYTHONPATH"] = ORACLE
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def serve27(unpickler="c", *extra):
    return Adapter([PY27, "-m", "brine_oracle", "serve", "--unpickler",
                    unpickler] + list(extra), timeout=120, env=env27())


def group(name):
    with open(os.path.join(CORPUS, "manifest", name + ".json")) as f:
        cases = json.load(f)["cases"]
    out = []
    for c in cases:
        with open(os.path.join(CORPUS, "cases", c["file"]), "rb") as f:
            out.append((c, f.read()))
    return out


def op_names(data):
    names = set()
    try:
        for op, _, _ in pickletools.genops(data):
            names.add(op.name)
    except ValueError:
        pass
    return names


class _BytesC(loader._CUnpickler):
    """Python 3's C unpickler, py2 strs kept as bytes."""

    def __init__(self, file, session):
        pickle.Unpickler.__init__(self, file, encoding="bytes")
        self._brine_session = session


def py3_as_py2(data):
    """(text, trace lines) of Python 3's C unpickler with encoding="bytes"
    and the 2.7 worker's dict order, `as` clauses dropped (2.7 renames
    nothing), `new` of INST/OBJ printed as 2.7's `call`."""
    saved = loader._CUnpickler, canon._UNORDERED_DICTS
    loader._CUnpickler, canon._UNORDERED_DICTS = _BytesC, True
    try:
        r = loader.load_result(data, "c")
    finally:
        loader._CUnpickler, canon._UNORDERED_DICTS = saved
    text = r.text
    lines = [re.sub(r' as "[^"]*" "[^"]*"$', "", ln)
             for ln in render_trace_lines(r.trace, data)]
    ops = op_names(data)
    if ops & {"INST", "OBJ"}:
        assert "NEWOBJ" not in ops, "a case mixing INST/OBJ and NEWOBJ"
        text = re.sub(r"(?m)^( *)new\b", r"\1call", text)
        lines = [re.sub(r"^(\d+) new ", r"\1 call ", ln) for ln in lines]
    return text, lines


@unittest.skipIf(PY27 is None, NO_PY27)
class TestPy27AgreesWithPython3(unittest.TestCase):

    def _check(self, unpickler):
        cases = group("py2-written")
        self.assertGreater(len(cases), 100)
        with serve27(unpickler) as a:
            rs = list(a.run_many([d for _, d in cases]))
            self.assertEqual(a.starts, 1)
        differ = []
        for (c, data), r in zip(cases, rs):
            self.assertEqual(r.status, "ok", (c["id"], r.detail))
            text, lines = py3_as_py2(data)
            got = r.trace.splitlines()
            if r.text != text or got != lines:
                differ.append((c["id"], r.text, text, got, lines))
        self.assertEqual(differ, [])

    def test_cpickle(self):
        self._check("c")

    def test_pickle_py(self):
        self._check("py")

    def test_the_comparison_sees_py2_semantics(self):
        # the cases are not trivially alike: py2 strs (bytes in 2.7) and
        # classic instances are there, and Python 3's default (ASCII) reading
        # of the same bytes does differ
        cases = group("py2-written")
        with serve27("c") as a:
            rs = list(a.run_many([d for _, d in cases]))
        kinds = set()
        for (c, data), r in zip(cases, rs):
            if '\n  bytes "' in r.text or r.text.startswith(H + "bytes"):
                kinds.add("bytes")
            if op_names(data) & {"INST", "OBJ"}:
                kinds.add("inst")
            if r.text != H + c["expected"]["text"]:
                kinds.add("differs-from-default")
        self.assertEqual(kinds, {"bytes", "inst", "differs-from-default"})


@unittest.skipIf(PY27 is None, NO_PY27)
class TestPy27Worker(unittest.TestCase):

    def test_hello(self):
        for u in ("c", "py"):
            with serve27(u) as a:
                self.assertEqual(a.name, "cpython-2.7-%s" % u)
                self.assertTrue(a.version.startswith("2.7."), a.version)
                self.assertIn("py2: str as bytes", a.version)
                self.assertIn("trace", a.features)

    def test_protocols_above_2_are_unsupported(self):
        # every corpus case that opens with PROTO 3..5 (or above)
        datas = [d for _, d in group("opcodes") + group("edge-values")
                 if d[:1] == b"\x80" and len(d) > 1 and
                 pickle.HIGHEST_PROTOCOL >= d[1] >= 3]
        self.assertGreater(len(datas), 100)
        for u in ("c", "py"):
            with serve27(u) as a:
                for d, r in zip(datas, a.run_many(datas)):
                    self.assertEqual((r.text, r.trace),
                                     (H + "error unsupported-protocol\n", ""),
                                     d[:20])

    def test_memory_limit(self):
        # 1,000,000 Nones appended to a list: ~100 MB in 2.7, over 64
        data = b"](" + b"N" * 1000000 + b"e."
        for u in ("c", "py"):
            with serve27(u, "--memory-limit", "64") as a:
                r = a.run(data)
                self.assertEqual((r.status, r.text),
                                 ("ok", H + "error resource-limit\n"))
                self.assertEqual(a.run(b"N.").text, H + "none\n")
                self.assertEqual(a.starts, 1)
            with serve27(u, "--memory-limit", "1024") as a:
                r = a.run(data)
                self.assertTrue(r.text.startswith(H + "list\n  none\n"))
                # a request frame over 1 MiB (the worker's big-frame read,
                # which has no os.readv on 2.7)
                r = a.run(b"](" + b"N" * 1500000 + b"e.")
                self.assertEqual(r.text.count("  none\n"), 1500000)

    def test_timeout(self):
        # n Python-level recorder calls (test_worker.slow_pickle): the
        # per-case CPU timer interrupts them
        slow = b"\x80\x02cm\nC\n)\x81(" + b"K\x01" * 3000000 + b"e."
        for u in ("c", "py"):
            with serve27(u, "--timeout", "0.3") as a:
                t = time.time()
                r = a.run(slow)
                self.assertEqual(r.text, H + "error resource-limit\n")
                self.assertTrue(r.trace.startswith(
                    '1 global "m" "C"\n2 new 1\n'), r.trace[:80])
                self.assertLess(time.time() - t, 60)
                self.assertEqual(a.run(b"K\x05.").text, H + "int 5\n")
                self.assertEqual(a.starts, 1)

    def test_output_bound(self):
        small = b"\x80\x02cm\nC\n)\x81(" + b"K\x01" * 100 + b"e."
        with serve27("c", "--max-output", "300") as a:
            r = a.run(small)
            self.assertEqual(r.text, H + "error resource-limit\n")
            self.assertLessEqual(len(r.text) + len("--- trace\n") +
                                 len(r.trace), 300)

    def test_one_shot(self):
        for data, rc, text in ((b"S'a'\n.", 0, H + 'bytes "a"\n'),
                               (b"\x80\x03N.", 1,
                                H + "error unsupported-protocol\n")):
            p = subprocess.Popen([PY27, "-m", "brine_oracle", "load",
                                  "--one-shot", "--quiet"],
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env27())
            out, err = p.communicate(data, timeout=120)
            self.assertEqual((p.returncode, out.decode("ascii")), (rc, text),
                             err)


if __name__ == "__main__":
    unittest.main()
