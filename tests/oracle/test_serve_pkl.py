"""`brine serve` (libpkl as an adapter) driven over a pipe.

    BRINE_BIN=build/brine python3 -m unittest tests/oracle/test_serve_pkl.py -v

Checks the hello frame; that every response's document equals what
`brine load` prints for the same bytes (the hostile set of test_security.py,
the oracle's own corner cases and a few thousand mutated pickles); that the
trace follows docs/adapter-protocol.md; that it equals the oracle's trace
(CPython's C unpickler, brine_oracle.trace) on the hostile set, the `as`
clauses aside (libpkl has no py2->py3 import mapping, so it never prints
them); one-shot mode; and that malformed framing ends the process cleanly.

Differences are reported, not hidden: the one known trace difference (libpkl
events do not carry the stub they create, so two results of one callable
used in reverse order are numbered by a heuristic; cli/serve.c) is an
expected failure that turns into an unexpected success once libpkl reports
the created node.  Skipped, with the reason, when BRINE_BIN is unset.
"""

import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "oracle"))
sys.path.insert(0, HERE)

try:
    from brine_oracle.trace import render_trace_lines  # noqa: E402
except ImportError:
    render_trace_lines = None

import test_security as sec  # noqa: E402  (the hostile set)

BRINE = os.environ.get("BRINE_BIN")
NO_BRINE = "BRINE_BIN is not set (e.g. BRINE_BIN=build/brine): brine serve " \
           "cannot be tested"
NO_TRACE = "brine_oracle.trace is not available: the oracle has no trace " \
           "to compare with"
TRACE_LINE = re.compile(
    r'^[1-9][0-9]* (global "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"'
    r'|(?:call|new|build|append|setitem|add) [1-9][0-9]*|persid)$')


def frames(argv, payload, timeout=600):
    """Run `argv`, write `payload`, return (status, [frame bytes], stderr)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = p.communicate(payload, timeout=timeout)
    got = []
    while len(out) >= 4:
        n = struct.unpack("<I", out[:4])[0]
        got.append(out[4:4 + n])
        out = out[4 + n:]
    if out:
        got.append(None)   # a torn frame
    return p.returncode, got, err


def request(cases):
    return b"".join(struct.pack("<I", len(c)) + c for c in cases)


def serve(cases):
    """(hello, [(document, trace lines)]) of `brine serve` over `cases`."""
    rc, got, err = frames([BRINE, "serve"], request(cases))
    if rc != 0 or len(got) != len(cases) + 1 or None in got:
        raise AssertionError("brine serve: status %r, %d frames for %d "
                             "cases: %s" % (rc, len(got), len(cases),
                                            err.decode("utf-8", "replace")))
    out = []
    for f in got[1:]:
        text = f.decode("ascii")
        doc, sep, trace = text.partition("--- trace\n")
        if not sep:
            raise AssertionError("response without a trace section: %r"
                                 % text)
        out.append((doc, trace.splitlines()))
    return got[0].decode("ascii"), out


def brine_load_batch(cases):
    """What `brine load --batch` prints for each case."""
    d = tempfile.mkdtemp(prefix="brine-serve-test-")
    try:
        for i, c in enumerate(cases):
            with open(os.path.join(d, "%06d" % i), "wb") as f:
                f.write(c)
        p = subprocess.Popen([BRINE, "load", "--batch", "--quiet", d],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise AssertionError("brine load --batch: %s" % err)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    docs = {}
    for chunk in out.decode("ascii").split("== ")[1:]:
        name, _, doc = chunk.partition("\n")
        docs[int(name)] = doc
    return [docs[i] for i in range(len(cases))]


def strip_as(lines):
    return [re.sub(r' as "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"$', "", l)
            for l in lines]


def oracle_serve(cases):
    """[(document, trace lines)] from the oracle's own adapter (CPython's C
    unpickler), run as a subprocess: it has an address-space limit, so a
    mutated pickle that makes CPython allocate gigabytes answers
    `error resource-limit` instead of exhausting this machine."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(REPO, "oracle")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = [sys.executable, "-m", "brine_oracle", "serve", "--unpickler",
            "c", "--memory-limit", "1024", "--quiet"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    out, err = p.communicate(request(cases), timeout=1200)
    got = []
    while len(out) >= 4:
        n = struct.unpack("<I", out[:4])[0]
        got.append(out[4:4 + n].decode("ascii"))
        out = out[4 + n:]
    if p.returncode != 0 or len(got) != len(cases) + 1:
        raise AssertionError("oracle serve: status %r, %d frames for %d "
                             "cases: %s" % (p.returncode, len(got),
                                            len(cases), err[-2000:]))
    res = []
    for text in got[1:]:
        doc, sep, trace = text.partition("--- trace\n")
        res.append((doc, trace.splitlines() if sep else None))
    return res


def mutated(n, seed=1234):
    """Mutations of real pickles and of the hostile set: deterministic."""
    import pickle
    rng = random.Random(seed)
    seeds = [c.data for c in sec.CASES]
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        seeds.append(pickle.dumps([1, -1, 2 ** 70, 1.5, u"\xe9", b"x",
                                   (1, 2), {1: [None, True]}, set([3]),
                                   frozenset([4]), bytearray(b"ab")], proto))
    out = []
    for _ in range(n):
        d = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            i = rng.randrange(len(d) + 1)
            if op == 0 and d:
                d[min(i, len(d) - 1)] = rng.randrange(256)
            elif op == 1:
                d[i:i] = bytes([rng.randrange(256)])
            elif op == 2 and d:
                del d[min(i, len(d) - 1)]
            else:
                j = rng.randrange(len(d) + 1)
                d[i:i] = d[min(i, j):max(i, j)][:32]
        out.append(bytes(d))
    return out


@unittest.skipIf(not BRINE, NO_BRINE)
class TestServe(unittest.TestCase):

    def test_hello(self):
        rc, got, _ = frames([BRINE, "serve"], b"")
        self.assertEqual(rc, 0)
        self.assertEqual(len(got), 1)
        hello = got[0].decode("ascii")
        lines = hello.split("\n")
        self.assertEqual(lines[0], "brine-adapter 1")
        self.assertIn("name pkl", lines)
        self.assertIn("level raw", lines)
        self.assertIn("features trace", lines)
        self.assertIn("highest-protocol 5", lines)
        ver = subprocess.check_output([BRINE, "version"]).decode("ascii")
        m = re.search(r"libpkl (\S+?),", ver)
        self.assertIn("version " + m.group(1), lines)
        self.assertTrue(hello.endswith("\n"))

    def test_documents_equal_brine_load(self):
        cases = [c.data for c in sec.CASES] + mutated(3000) + [
            b"", b"\x80\x05N.", b"\x80\x06N.", b"(" * 5000 + b"t.",
            b"]" + b"(" * 100000 + b"l" * 100000 + b".",
            b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00N."]
        hello, got = serve(cases)
        want = brine_load_batch(cases)
        diff = [(c, g[0], w) for c, g, w in zip(cases, got, want)
                if g[0] != w]
        self.assertEqual(diff, [], "%d of %d documents differ from brine "
                         "load; first: %r" % (len(diff), len(cases),
                                              diff[:1]))
        for doc, lines in got:
            for line in lines:
                self.assertRegex(line, TRACE_LINE)
            nums = [int(l.split(" ", 1)[0]) for l in lines]
            self.assertEqual(nums, list(range(1, len(nums) + 1)))
            for l in lines:   # targets name earlier events
                parts = l.split(" ")
                if parts[1] in ("call", "new", "build", "append", "setitem",
                                "add"):
                    self.assertLess(int(parts[2]), int(parts[0]), l)

    def test_traces_equal_the_oracle_on_the_hostile_set(self):
        if render_trace_lines is None:
            self.skipTest(NO_TRACE)
        cases = [c for c in sec.CASES if not c.ext]
        hello, got = serve([c.data for c in cases])
        oracle = oracle_serve([c.data for c in cases])
        diffs = []
        for case, (doc, lines), (odoc, ref) in zip(cases, got, oracle):
            if doc != odoc:
                # libpkl and CPython disagree on the document itself: the
                # trace may then legitimately differ (reported, not hidden)
                sys.stderr.write("\nNOTE serve vs oracle document differ on "
                                 "%s:\n%s---\n%s" % (case.name, doc, odoc))
                continue
            if lines != strip_as(ref):
                diffs.append((case.name, lines, ref))
        self.assertEqual(diffs, [], "\n".join(
            "%s:\n  serve:  %r\n  oracle: %r" % d for d in diffs))

    def test_traces_on_mutated_inputs(self):
        """Where libpkl and the oracle agree on the document, their traces
        agree too (differences are listed)."""
        if render_trace_lines is None:
            self.skipTest(NO_TRACE)
        cases = mutated(1500, seed=99)
        hello, got = serve(cases)
        oracle = oracle_serve(cases)
        diffs = []
        compared = 0
        for data, (doc, lines), (odoc, ref) in zip(cases, got, oracle):
            if doc != odoc:
                continue
            compared += 1
            if lines != strip_as(ref):
                diffs.append((data, lines, ref))
        self.assertGreater(compared, 500)
        self.assertEqual(diffs, [], "%d trace differences, first: %r"
                         % (len(diffs), diffs[:3]))

    def test_results_of_one_callable_used_in_reverse_order(self):
        # Two results of one callable, the first one mutated last: the trace
        # must name each by the event that made it (pkl_event.result).
        data = b"cm\nf\n(tRp0\n0cm\nf\n(tRp1\n0g0\n}b0g1\n}b(g0\ng1\nl."
        hello, got = serve([data])
        self.assertEqual(got[0][1], oracle_serve([data])[0][1])

    def test_one_shot(self):
        for data, status in ((b"\x80\x02K\x05.", 0), (b"K", 1), (b"", 1),
                             (sec.CASES[0].data, 0)):
            p = subprocess.Popen([BRINE, "serve", "--one-shot"],
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            out, _ = p.communicate(data, timeout=60)
            self.assertEqual(p.returncode, status, data)
            self.assertEqual(out.decode("ascii"),
                             brine_load_batch([data])[0])

    def test_framing_errors(self):
        # EOF inside a header or a request: status 2, every earlier case
        # answered, never a crash
        for tail in (b"\x01", b"\x01\x00\x00", b"\x05\x00\x00\x00N.",
                     b"\xff\xff\xff\x7f"):
            rc, got, err = frames([BRINE, "serve"],
                                  request([b"N."]) + tail)
            self.assertEqual(rc, 2, (tail, err))
            self.assertEqual(len(got), 2)
            self.assertTrue(got[1].startswith(b"brine-canonical 1 raw\nnone"))

    def test_bad_arguments(self):
        p = subprocess.Popen([BRINE, "serve", "--nope"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out, err = p.communicate(b"", timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(out, b"")


@unittest.skipIf(not BRINE, NO_BRINE)
class TestImpls(unittest.TestCase):
    """`brine impls --json`: every servable entry starts with its argv and
    env, and its hello names it."""

    def test_every_servable_impl_answers(self):
        import json
        out = subprocess.check_output([BRINE, "impls", "--json"],
                                      timeout=300)
        impls = json.loads(out.decode("utf-8"))
        self.assertEqual(impls[0]["name"], "pkl")
        names = [e["name"] for e in impls]
        self.assertEqual(len(names), len(set(names)), names)
        served = 0
        for e in impls:
            self.assertRegex(e["name"], r"^[a-z0-9.-]+$")
            if not e["servable"]:
                self.assertIsNone(e["argv"], e)
                self.assertTrue(e["note"], e)
                continue
            env = dict(os.environ)
            env.update(e["env"])
            p = subprocess.Popen(e["argv"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
            out, err = p.communicate(request([b"\x80\x02K\x05."]),
                                     timeout=120)
            self.assertEqual(p.returncode, 0, (e["name"], err))
            got = []
            while len(out) >= 4:
                n = struct.unpack("<I", out[:4])[0]
                got.append(out[4:4 + n].decode("ascii"))
                out = out[4 + n:]
            self.assertEqual(len(got), 2, e["name"])
            self.assertIn("\nname %s\n" % e["name"], got[0])
            self.assertTrue(got[1].startswith(
                "brine-canonical 1 raw\nint 5\n"), (e["name"], got[1]))
            served += 1
        self.assertGreaterEqual(served, 1)


if __name__ == "__main__":
    unittest.main()
