"""Tests of the oracle worker (issue 3): the safety trace, the adapter
protocol v1 served by ``python3 -m brine_oracle serve``, its limits, the
one-shot mode, and the runner-side client with restarts.

Run from the repository root with any CPython 3.6+:

    PYTHONPATH=oracle python3 -m unittest discover -s tests/oracle
    python3 -m unittest tests.oracle.test_worker

Expectations come from docs/adapter-protocol.md.  Workers are started with
the interpreter running the tests (sys.executable); nothing here depends on
timing except the timeout tests, which use generous margins.
"""

import copyreg
import os
import pickle
import pickletools
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ORACLE = os.path.join(REPO, "oracle")
sys.path.insert(0, ORACLE)

from brine_oracle import load_result  # noqa: E402
from brine_oracle.client import (Adapter, AdapterError, parse_hello,  # noqa
                                 split_response)
from brine_oracle.trace import (render_trace, render_trace_lines,  # noqa
                                scan_protocols)
from brine_oracle.worker import hello_text, respond  # noqa: E402

H = "brine-canonical 1 raw\n"
UNPICKLERS = ("c", "py")
HAVE_RESOURCE = True
try:
    import resource  # noqa: F401
except ImportError:
    HAVE_RESOURCE = False


def env_with_oracle():
    env = dict(os.environ)
    env["PYTHONPATH"] = ORACLE + (os.pathsep + env["PYTHONPATH"]
                                  if env.get("PYTHONPATH") else "")
    return env


def serve_argv(*extra):
    return [sys.executable, "-m", "brine_oracle", "serve"] + list(extra)


def frame(data):
    return struct.pack("<I", len(data)) + data


# --------------------------------------------------------------------------
# The safety trace (docs/adapter-protocol.md, "Safety trace")

class TraceCase(unittest.TestCase):

    def trace_of(self, data, unpickler):
        r = load_result(data, unpickler)
        return r, render_trace(r.trace, data)

    def assertTrace(self, data, lines, error=None, unpicklers=UNPICKLERS):
        want = "".join(l + "\n" for l in lines)
        for u in unpicklers:
            r, got = self.trace_of(data, u)
            self.assertEqual(got, want, "unpickler %s, data %r" % (u, data))
            self.assertEqual(r.error, error, "unpickler %s: %s"
                             % (u, r.message()))


class TestTraceNames(TraceCase):

    def test_py2_name_below_protocol_3(self):
        # protocol 0 (no PROTO): IMPORT_MAPPING renames the module
        self.assertTrace(b"c__builtin__\nset\n.", [
            '1 global "__builtin__" "set" as "builtins" "set"'])
        # NAME_MAPPING renames both
        self.assertTrace(b"c__builtin__\nxrange\n.", [
            '1 global "__builtin__" "xrange" as "builtins" "range"'])
        self.assertTrace(b"\x80\x02cUserDict\nUserDict\n.", [
            '1 global "UserDict" "UserDict" as "collections" "UserDict"'])
        self.assertTrace(b"\x80\x01ccopy_reg\n_reconstructor\n.", [
            '1 global "copy_reg" "_reconstructor" as "copyreg" '
            '"_reconstructor"'])
        # what pickle.dumps writes at protocol 0 and 2 for a set
        for proto in (0, 1, 2):
            self.assertTrace(pickle.dumps(set([1]), proto), [
                '1 global "__builtin__" "set" as "builtins" "set"',
                "2 call 1"])

    def test_py2_name_at_protocol_3_and_above(self):
        for proto in range(3, pickle.HIGHEST_PROTOCOL + 1):
            data = b"\x80" + bytes([proto]) + b"c__builtin__\nset\n."
            self.assertTrace(data, ['1 global "__builtin__" "set"'])
        self.assertTrace(b"\x80\x04\x8c\x0b__builtin__\x8c\x03set\x93.",
                         ['1 global "__builtin__" "set"'])

    def test_py3_names_take_no_as(self):
        self.assertTrace(b"cbuiltins\nset\n.", ['1 global "builtins" "set"'])
        self.assertTrace(b"cos\nsystem\n.", ['1 global "os" "system"'])

    def test_protocol_changes_mid_stream(self):
        # The C unpickler does not expose the protocol: the trace must find
        # the PROTO in effect at each global, in both directions.
        data = (b"\x80\x03c__builtin__\nset\n0\x80\x02c__builtin__\nset\n0"
                b"\x80\x04c__builtin__\nset\n0c__builtin__\nlist\n.")
        self.assertTrace(data, [
            '1 global "__builtin__" "set"',
            '2 global "__builtin__" "set" as "builtins" "set"',
            '3 global "__builtin__" "set"',
            '4 global "__builtin__" "list"'])
        # STACK_GLOBAL and INST count too
        data = (b"\x80\x02\x8c\x0b__builtin__\x8c\x03set\x930"
                b"(i__builtin__\nobject\n0\x80\x03c__builtin__\nset\n.")
        self.assertTrace(data, [
            '1 global "__builtin__" "set" as "builtins" "set"',
            '2 global "__builtin__" "object" as "builtins" "object"',
            "3 new 2",
            '4 global "__builtin__" "set"'])

    def test_proto_byte_inside_an_argument_is_not_proto(self):
        # 0x80 bytes inside arguments must not be taken for PROTO
        data = (b"\x80\x03C\x02\x80\x020C\x03\x80\x02\x800"
                b"c__builtin__\nset\n.")
        self.assertTrace(data, ['1 global "__builtin__" "set"'])
        data = (b"C\x02\x80\x030c__builtin__\nset\n.")
        self.assertTrace(data, [
            '1 global "__builtin__" "set" as "builtins" "set"'])

    def test_non_ascii_global_name(self):
        # pickletools.genops gives up on a non-ASCII GLOBAL line; the
        # unpicklers read it as UTF-8, and so does the trace.
        data = b"\x80\x03c\xc3\xa9\nx\n0\x80\x02c__builtin__\nset\n."
        self.assertTrace(data, [
            '1 global "\\xe9" "x"',
            '2 global "__builtin__" "set" as "builtins" "set"'])

    def test_dotted_name_protocol_4(self):
        # CPython imports "os" and walks path.join: that is what the line
        # says, no "as"
        self.assertTrace(b"\x80\x04\x8c\x02os\x8c\tpath.join\x93.",
                         ['1 global "os" "path.join"'])
        body = b"\x8c\x02os\x94\x8c\tpath.join\x94\x93\x94."
        self.assertTrace(b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body,
                         ['1 global "os" "path.join"'])
        # below protocol 4 the name is the same (CPython would fail on the
        # getattr after importing "os"); no "as" either
        self.assertTrace(b"\x80\x02cos\npath.join\n.",
                         ['1 global "os" "path.join"'])

    def test_ext_codes(self):
        code = 0x7ffffff1
        code2 = 0x7ffffff2
        copyreg.add_extension("brine_test_worker_mod", "Thing", code)
        copyreg.add_extension("__builtin__", "brine_no_such_name", code2)
        try:
            ext = b"\x84" + struct.pack("<i", code)
            ext2 = b"\x84" + struct.pack("<i", code2)
            self.assertTrace(b"\x80\x02" + ext + b".", [
                '1 global "brine_test_worker_mod" "Thing"'])
            # the registry's names go through the py2 renaming below 3
            self.assertTrace(b"\x80\x02" + ext2 + b".", [
                '1 global "__builtin__" "brine_no_such_name" as "builtins" '
                '"brine_no_such_name"'])
            self.assertTrace(b"\x80\x03" + ext2 + b".", [
                '1 global "__builtin__" "brine_no_such_name"'])
            # the same code twice in one load: CPython's cache answers the
            # second, find_class runs once; the scan must skip it, or the
            # global after it would get the wrong protocol
            data = (b"\x80\x03" + ext + b"0" + ext + b"0\x80\x02"
                    b"c__builtin__\nset\n.")
            self.assertTrace(data, [
                '1 global "brine_test_worker_mod" "Thing"',
                '2 global "__builtin__" "set" as "builtins" "set"'])
            # ...and every load starts with an empty cache
            self.assertTrace(b"\x80\x02" + ext + b".", [
                '1 global "brine_test_worker_mod" "Thing"'])
            # an unregistered code resolves nothing
            self.assertTrace(b"\x80\x02\x82\x01.", [], "unknown-extension")
        finally:
            copyreg.remove_extension("brine_test_worker_mod", "Thing", code)
            copyreg.remove_extension("__builtin__", "brine_no_such_name",
                                     code2)

    def test_quoting(self):
        self.assertTrace(b'\x80\x04\x8c\x03a"b\x8c\x04\\\n\xc3\xa9\x93.',
                         ['1 global "a\\"b" "\\\\\\x0a\\xe9"'])


class TestTraceEvents(TraceCase):

    def test_reduce_and_call_of_a_call(self):
        self.assertTrace(b"cm\nf\n(K\x01tR.", ['1 global "m" "f"', "2 call 1"])
        self.assertTrace(b"cm\nf\n)R)R.", ['1 global "m" "f"', "2 call 1",
                                           "3 call 2"])

    def test_inst_and_obj(self):
        self.assertTrace(b"(K\x01im\nC\n.", ['1 global "m" "C"', "2 call 1"])
        self.assertTrace(b"(im\nC\n.", ['1 global "m" "C"', "2 new 1"])
        self.assertTrace(b"(cm\nC\nK\x01o.", ['1 global "m" "C"',
                                              "2 call 1"])
        self.assertTrace(b"(cm\nC\no.", ['1 global "m" "C"', "2 new 1"])

    def test_newobj(self):
        self.assertTrace(b"\x80\x02cm\nC\n)\x81.", ['1 global "m" "C"',
                                                    "2 new 1"])
        self.assertTrace(b"\x80\x04cm\nC\n)}\x92.", ['1 global "m" "C"',
                                                     "2 new 1"])

    def test_persid(self):
        self.assertTrace(b"Pabc\n.", ["1 persid"])
        self.assertTrace(b"\x80\x02X\x01\x00\x00\x00aQ.", ["1 persid"])
        self.assertTrace(b"Px\n)R.", ["1 persid", "2 call 1"])

    def test_mutations(self):
        self.assertTrace(b"\x80\x02cm\nC\n)\x81}b.", [
            '1 global "m" "C"', "2 new 1", "3 build 2"])
        # one append per item of APPENDS, one setitem per pair of SETITEMS,
        # one add per item of ADDITEMS
        self.assertTrace(b"\x80\x02cm\nC\n)\x81(K\x01K\x02K\x03eK\x04a.", [
            '1 global "m" "C"', "2 new 1", "3 append 2", "4 append 2",
            "5 append 2", "6 append 2"])
        self.assertTrace(b"\x80\x02cm\nC\n)\x81(K\x01K\x02K\x03K\x04uK\x05"
                         b"K\x06s.", [
                             '1 global "m" "C"', "2 new 1", "3 setitem 2",
                             "4 setitem 2", "5 setitem 2"])
        self.assertTrace(b"\x80\x04cm\nC\n)\x81(K\x01K\x02\x90.", [
            '1 global "m" "C"', "2 new 1", "3 add 2", "4 add 2"])
        # mutations on a global itself
        self.assertTrace(b"cm\nC\n}b.", ['1 global "m" "C"', "2 build 1"])
        # mutations of built-in values touch nothing: no events
        self.assertTrace(b"]K\x01a}K\x01K\x02s.", [])

    def test_targets_name_the_producing_event(self):
        # the same global twice: one stub, named by its first event
        self.assertTrace(b"cm\nf\ncm\nf\n)R.", [
            '1 global "m" "f"', '2 global "m" "f"', "3 call 1"])
        # through the memo
        self.assertTrace(b"\x80\x02cm\nC\nq\x00)\x81h\x00)R.", [
            '1 global "m" "C"', "2 new 1", "3 call 1"])
        self.assertTrace(b"\x80\x02cm\nC\n)\x81q\x00cm\nf\nh\x00\x85R"
                         b"h\x00K\x01b.", [
                             '1 global "m" "C"', "2 new 1",
                             '3 global "m" "f"', "4 call 3", "5 build 2"])

    def test_events_before_an_error(self):
        self.assertTrace(b"\x80\x02cm\nf\n)R\xff", [
            '1 global "m" "f"', "2 call 1"], "bad-opcode")
        self.assertTrace(b"\x80\x02cm\nC\n)\x81K\x01bcos\nsystem\n", [
            '1 global "m" "C"', "2 new 1", "3 build 2",
            '4 global "os" "system"'], "truncated")
        # an error document with a trace, through the worker's response
        for u in UNPICKLERS:
            self.assertEqual(respond(b"cos\nsystem\n(S'x'\ntR", u),
                             H + "error truncated\n--- trace\n"
                             '1 global "os" "system"\n2 call 1\n')

    def test_exploit_shape(self):
        self.assertTrace(b"cos\nsystem\n(S'echo hi'\ntR.", [
            '1 global "os" "system"', "2 call 1"])
        self.assertTrace(
            b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'"
            b"\ntR(S'id'\ntR.", [
                '1 global "builtins" "getattr"',
                '2 global "builtins" "__import__"', "3 call 2", "4 call 1",
                "5 call 4"])


class TestScan(unittest.TestCase):

    def test_agrees_with_genops_on_real_pickles(self):
        import collections
        import datetime
        import decimal
        objs = [set([1, 2]), frozenset([3]), b"\x00\xff", bytearray(b"ab"),
                collections.OrderedDict(a=1), datetime.date(2020, 1, 2),
                decimal.Decimal("1.5"), [range(3), complex(1, 2)],
                {"k": [os.path.join, len]}]
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            for o in objs:
                data = pickle.dumps(o, proto)
                want = []
                proto_now = 0
                for op, arg, pos in pickletools.genops(data):
                    if op.name == "PROTO":
                        proto_now = arg
                    elif op.name in ("GLOBAL", "INST", "STACK_GLOBAL"):
                        want.append(proto_now)
                got, last = scan_protocols(data)
                self.assertEqual(list(got), want, (proto, o))
                # and the C and Python unpicklers' traces agree
                traces = [render_trace(load_result(data, u).trace, data)
                          for u in UNPICKLERS]
                self.assertEqual(traces[0], traces[1], (proto, o))

    def test_stops_where_the_input_stops(self):
        self.assertEqual(scan_protocols(b""), ([], 0))
        self.assertEqual(scan_protocols(b"\x80"), ([], 0))
        # a GLOBAL whose line the input cuts short resolves nothing
        self.assertEqual(scan_protocols(b"\x80\x02c__bu"), ([], 2))
        self.assertEqual(scan_protocols(b"\x80\x02c__builtin__\nset\n"),
                         ([2], 2))
        self.assertEqual(scan_protocols(b"\x80\x02\xffc__builtin__\nset\n"),
                         ([], 2))
        self.assertEqual(scan_protocols(b"\x80\x02.c__builtin__\nset\n"),
                         ([], 2))
        self.assertEqual(scan_protocols(b"T\xff\xff\xff\xff\x80\x04c"),
                         ([], 0))


# --------------------------------------------------------------------------
# The worker over a pipe, spoken to byte by byte (not through the client)

class RawWorker(object):

    def __init__(self, *extra, **kw):
        argv = kw.get("argv") or serve_argv(*extra)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env=env_with_oracle())

    def read_exact(self, n, timeout=30.0):
        buf = b""
        fd = self.proc.stdout.fileno()
        end = time.time() + timeout
        while len(buf) < n:
            r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
            if not r:
                raise AssertionError("worker did not answer in %s s" % timeout)
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def read_frame(self, timeout=30.0):
        head = self.read_exact(4, timeout)
        if head is None:
            return None
        n = struct.unpack("<I", head)[0]
        return self.read_exact(n, timeout)

    def send(self, data):
        self.proc.stdin.write(frame(data))
        self.proc.stdin.flush()

    def close(self):
        self.proc.stdin.close()
        code = self.proc.wait(30)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, err


class TestServe(unittest.TestCase):

    def test_hello_cases_eof(self):
        w = RawWorker()
        hello = w.read_frame().decode("ascii")
        import pickle
        self.assertEqual(hello, "brine-adapter 1\nname cpython-%d.%d-c\n"
                         "version %s\nlevel raw\nfeatures trace\n"
                         "highest-protocol %d\n"
                         % (sys.version_info[0], sys.version_info[1],
                            sys.version.split()[0], pickle.HIGHEST_PROTOCOL))
        self.assertEqual(hello, hello_text("c"))
        cases = [
            (b"", H + "error truncated\n--- trace\n"),
            (b"\x80\x04K\x05.", H + "int 5\n--- trace\n"),
            (b"cos\nsystem\n(S'echo hi'\ntR.",
             H + 'call\n  global "os" "system"\n  .args\n    str "echo hi"\n'
             '--- trace\n1 global "os" "system"\n2 call 1\n'),
            (b"c__builtin__\nset\n.",
             H + 'global "__builtin__" "set"\n--- trace\n'
             '1 global "__builtin__" "set" as "builtins" "set"\n'),
            (b"K", H + "error truncated\n--- trace\n"),
        ]
        for data, want in cases:
            w.send(data)
            self.assertEqual(w.read_frame().decode("ascii"), want, data)
        code, err = w.close()
        self.assertEqual(code, 0, err)

    def test_pipelined_and_split_frames(self):
        w = RawWorker()
        w.read_frame()
        # many requests in one write: answers in order
        datas = [pickle.dumps(i, 4) for i in range(200)] + [b""]
        w.proc.stdin.write(b"".join(frame(d) for d in datas))
        w.proc.stdin.flush()
        for i in range(200):
            self.assertEqual(w.read_frame().decode(),
                             H + "int %d\n--- trace\n" % i)
        self.assertEqual(w.read_frame().decode(),
                         H + "error truncated\n--- trace\n")
        # one request dribbled in pieces
        f = frame(b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00K\x07\x94.")
        for i in range(len(f)):
            w.proc.stdin.write(f[i:i + 1])
            w.proc.stdin.flush()
            time.sleep(0.002)
        self.assertEqual(w.read_frame().decode(), H + "int 7\n--- trace\n")
        self.assertEqual(w.close()[0], 0)

    def test_no_trace_and_py_unpickler(self):
        w = RawWorker("--no-trace", "--unpickler", "py")
        hello = parse_hello(w.read_frame())
        self.assertEqual(hello["name"], "cpython-%d.%d-py"
                         % sys.version_info[:2])
        self.assertEqual(hello["features"], [])
        self.assertEqual(hello["level"], "raw")
        w.send(b"cos\nsystem\n)R.")
        self.assertEqual(w.read_frame().decode(),
                         H + 'call\n  global "os" "system"\n')
        self.assertEqual(w.close()[0], 0)

    def test_eof_inside_a_frame(self):
        w = RawWorker()
        w.read_frame()
        w.proc.stdin.write(struct.pack("<I", 10) + b"abc")
        code, err = w.close()
        self.assertEqual(code, 1)
        w = RawWorker()
        w.read_frame()
        w.proc.stdin.write(b"\x01\x00")
        self.assertEqual(w.close()[0], 1)

    def test_stray_output_cannot_corrupt_frames(self):
        code = (
            "import os, sys\n"
            "from brine_oracle import worker\n"
            "real = worker.respond\n"
            "def noisy(*a, **k):\n"
            "    print('stray print')\n"
            "    sys.stdout.flush()\n"
            "    os.write(1, b'stray write to fd 1\\n')\n"
            "    return real(*a, **k)\n"
            "worker.respond = noisy\n"
            "sys.exit(worker.serve())\n")
        w = RawWorker(argv=[sys.executable, "-c", code])
        self.assertTrue(w.read_frame().startswith(b"brine-adapter 1\n"))
        for i in range(3):
            w.send(pickle.dumps(i, 2))
            self.assertEqual(w.read_frame().decode(),
                             H + "int %d\n--- trace\n" % i)
        code, err = w.close()
        self.assertEqual(code, 0)
        self.assertIn(b"stray print", err)
        self.assertIn(b"stray write to fd 1", err)


# --------------------------------------------------------------------------
# Limits inside the worker

def slow_pickle(n):
    """A stub with n appended items: n Python-level recorder calls, n trace
    events, n canonical slots (interruptible CPU work)."""
    return b"\x80\x02cm\nC\n)\x81(" + b"K\x01" * n + b"e."


@unittest.skipUnless(HAVE_RESOURCE, "needs the resource module (POSIX)")
class TestLimits(unittest.TestCase):

    def test_eager_memo_allocation_hits_the_memory_limit(self):
        # CPython's C unpickler grows its memo array to 2 * index slots:
        # LONG_BINPUT 2**25 asks for 512 MB (on 64-bit), whatever the input
        # size.  With a 256 MB address-space limit that is a MemoryError:
        # `error resource-limit`, and the worker carries on.
        data = b"Nr\x00\x00\x00\x02."
        with Adapter(serve_argv("--memory-limit", "256"), timeout=60,
                     env=env_with_oracle()) as a:
            r = a.run(data)
            self.assertEqual(r.status, "ok", r.detail)
            self.assertEqual(r.text, H + "error resource-limit\n")
            self.assertEqual(r.trace, "")
            r = a.run(b"\x80\x04K\x05.")
            self.assertEqual(r.text, H + "int 5\n")
            r = a.run(data)
            self.assertEqual(r.text, H + "error resource-limit\n")
            r = a.run(pickle.dumps([1, 2], 2))
            self.assertEqual(r.text, H + "list\n  int 1\n  int 2\n")
            self.assertEqual(a.starts, 1)
            self.assertEqual(a.crashes + a.timeouts, 0)
            # the Python unpickler's memo is a dict: nothing to allocate
        with Adapter(serve_argv("--memory-limit", "256", "--unpickler", "py"),
                     timeout=60, env=env_with_oracle()) as a:
            self.assertEqual(a.run(data).text, H + "none\n")

    def test_timeout_is_resource_limit_then_next_case(self):
        with Adapter(serve_argv("--timeout", "0.3"), timeout=60,
                     env=env_with_oracle()) as a:
            t = time.time()
            r = a.run(slow_pickle(3000000))
            self.assertEqual(r.status, "ok", r.detail)
            self.assertEqual(r.text, H + "error resource-limit\n")
            # the events recorded before the limit are kept
            self.assertTrue(r.trace.startswith('1 global "m" "C"\n2 new 1\n'),
                            r.trace[:100])
            self.assertLess(time.time() - t, 30)
            r = a.run(pickle.dumps("ok", 2))
            self.assertEqual(r.text, H + 'str "ok"\n')
            self.assertEqual(a.starts, 1)
            # a small one well within the limit
            r = a.run(slow_pickle(10))
            self.assertEqual(r.trace.count("append"), 10)

    def test_output_bound(self):
        # the response (document + trace) is bounded by --max-output
        with Adapter(serve_argv("--max-output", "300"), timeout=60,
                     env=env_with_oracle()) as a:
            r = a.run(slow_pickle(5))
            self.assertEqual(r.text.count(".append"), 5)
            r = a.run(slow_pickle(100))
            self.assertEqual(r.text, H + "error resource-limit\n")
            self.assertTrue(r.trace.startswith('1 global "m" "C"\n'))
            self.assertLessEqual(len(r.text) + len("--- trace\n") +
                                 len(r.trace), 300)
            self.assertEqual(a.run(b"N.").text, H + "none\n")


# --------------------------------------------------------------------------
# One-shot mode

class TestOneShot(unittest.TestCase):

    def run_one(self, data):
        p = subprocess.Popen([sys.executable, "-m", "brine_oracle", "load",
                              "--one-shot", "--quiet"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env_with_oracle())
        out, err = p.communicate(data, 60)
        return p.returncode, out.decode("ascii")

    def test_loaded_and_rejected(self):
        self.assertEqual(self.run_one(b"\x80\x04K\x05."), (0, H + "int 5\n"))
        self.assertEqual(self.run_one(b"cos\nsystem\n)R."),
                         (0, H + 'call\n  global "os" "system"\n'))
        self.assertEqual(self.run_one(b""), (1, H + "error truncated\n"))
        self.assertEqual(self.run_one(b"\xff"), (1, H + "error bad-opcode\n"))


# --------------------------------------------------------------------------
# The client: restarts, timeouts, crashes, bounds

TOY_ADAPTER = r'''
import os, select, struct, sys, time
mode = sys.argv[1] if len(sys.argv) > 1 else "plain"
out = sys.stdout.buffer
inp = sys.stdin.buffer
if mode == "bad-hello":
    out.write(struct.pack("<I", 6) + b"hello\n"); out.flush(); sys.exit(0)
if mode == "no-hello":
    sys.exit(3)
hello = b"brine-adapter 1\nname toy\nversion 0\nlevel raw\nfeatures trace\n"
out.write(struct.pack("<I", len(hello)) + hello)
out.flush()
held = []
def flush():
    if held:
        out.write(b"".join(held)); out.flush(); del held[:]
def read_exact(n):
    buf = b""
    while len(buf) < n:
        if mode == "batch" and held and not select.select([0], [], [], 0)[0]:
            flush()
        c = inp.read1(n - len(buf)) if hasattr(inp, "read1") else inp.read(n - len(buf))
        if not c:
            return None
        buf += c
    return buf
while True:
    head = read_exact(4)
    if head is None:
        flush()
        break
    data = read_exact(struct.unpack("<I", head)[0])
    if data == b"DIE":
        os._exit(7)
    if data == b"KILL":
        os.kill(os.getpid(), 9)
    if data == b"HANG":
        time.sleep(3600)
    if data == b"BIG":
        out.write(struct.pack("<I", 50 << 20) + b"x" * 1000); out.flush()
        time.sleep(3600)
    if data == b"SHORT":
        out.write(struct.pack("<I", 100) + b"x" * 10); out.flush()
        os._exit(0)
    body = ("brine-canonical 1 raw\nbytes %d\n--- trace\n" % len(data)).encode()
    f = struct.pack("<I", len(body)) + body
    if mode == "batch":
        held.append(f)
    else:
        out.write(f); out.flush()
'''


class ClientCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="brine-test-worker-")
        cls.toy = os.path.join(cls.tmp, "toy_adapter.py")
        with open(cls.toy, "w") as f:
            f.write(TOY_ADAPTER)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def toy_adapter(self, mode="plain", **kw):
        kw.setdefault("timeout", 2.0)
        kw.setdefault("stderr", subprocess.DEVNULL)
        return Adapter([sys.executable, self.toy, mode], **kw)

    def statuses(self, responses):
        return [(r.status, r.text) for r in responses]


def ok(n):
    return ("ok", "brine-canonical 1 raw\nbytes %d\n" % n)


class TestClient(ClientCase):

    def test_hello_and_cases(self):
        with self.toy_adapter() as a:
            self.assertEqual(a.name, "toy")
            self.assertEqual(a.features, ["trace"])
            r = a.run(b"abc")
            self.assertEqual((r.status, r.text, r.trace), ok(3) + ("",))
            text, trace = a.run(b"")
            self.assertEqual(text, ok(0)[1])
        self.assertIsNone(a.pid)

    def test_crash_restarts_and_no_case_is_lost(self):
        seq = [b"a", b"DIE", b"bb", b"KILL", b"ccc", b"SHORT", b"dddd"]
        want = [ok(1), ("crash", None), ok(2), ("crash", None), ok(3),
                ("crash", None), ok(4)]
        for window in (1, 4):
            with self.toy_adapter() as a:
                rs = list(a.run_many(seq, window=window))
                self.assertEqual(self.statuses(rs), want, window)
                self.assertEqual(a.crashes, 3)
                # pipelined, a failure with more requests outstanding is
                # confirmed by running the case alone on a fresh adapter
                if window == 1:
                    self.assertEqual(a.confirmations, 0)
                self.assertEqual(a.restarts, 3 + a.confirmations)
                self.assertEqual(a.starts, 4 + a.confirmations)
                self.assertIn("status 7", rs[1].detail)
                self.assertIn("SIGKILL", rs[3].detail)
                self.assertIn("inside a 100-byte frame", rs[5].detail)

    def test_timeout_kills_and_restarts(self):
        with self.toy_adapter(timeout=1.0) as a:
            pid = a.pid
            t = time.time()
            rs = [a.run(d) for d in (b"a", b"HANG", b"bb")]
            self.assertEqual(self.statuses(rs),
                             [ok(1), ("timeout", None), ok(2)])
            self.assertLess(time.time() - t, 20)
            self.assertGreaterEqual(rs[1].seconds, 1.0)
            self.assertNotEqual(a.pid, pid)
            self.assertEqual((a.timeouts, a.restarts), (1, 1))
            # the hung process is gone
            self.assertRaises(OSError, os.kill, pid, 0)

    def test_timeout_pipelined(self):
        with self.toy_adapter(timeout=1.0) as a:
            rs = list(a.run_many([b"a", b"bb", b"HANG", b"ccc", b"dddd"],
                                 window=8))
            self.assertEqual(self.statuses(rs), [ok(1), ok(2),
                                                 ("timeout", None), ok(3),
                                                 ok(4)])

    def test_oversized_frame_is_a_crash(self):
        with self.toy_adapter(max_frame=1 << 20) as a:
            rs = [a.run(d) for d in (b"a", b"BIG", b"bb")]
            self.assertEqual(self.statuses(rs), [ok(1), ("crash", None),
                                                 ok(2)])
            self.assertIn("above the bound", rs[1].detail)

    def test_batching_adapter_failures_are_pinned_on_the_right_case(self):
        # This adapter holds its answers back while more requests are
        # waiting (as the oracle worker does).  With "a" answered but not
        # yet written when "DIE" kills it, the client must not record "a" as
        # the crash: it re-runs "a" alone.
        with self.toy_adapter("batch") as a:
            rs = list(a.run_many([b"a", b"DIE", b"bb", b"ccc"], window=8))
            self.assertEqual(self.statuses(rs), [ok(1), ("crash", None),
                                                 ok(2), ok(3)])
        with self.toy_adapter("batch", timeout=1.0) as a:
            rs = list(a.run_many([b"a", b"HANG", b"bb"], window=8))
            self.assertEqual(self.statuses(rs), [ok(1), ("timeout", None),
                                                 ok(2)])

    def test_abandoned_run_many_does_not_leak_answers(self):
        with self.toy_adapter() as a:
            for r in a.run_many([b"a", b"bb", b"ccc", b"dddd"], window=4):
                break
            self.assertEqual(self.statuses([a.run(b"eeeee")]), [ok(5)])

    def test_bad_adapters(self):
        self.assertRaises(AdapterError, self.toy_adapter("bad-hello").start)
        self.assertRaises(AdapterError, self.toy_adapter("no-hello").start)
        self.assertRaises(AdapterError,
                          Adapter(["/nonexistent/brine-adapter"]).start)
        a = Adapter([sys.executable, "-c", "import time; time.sleep(60)"],
                    start_timeout=0.5)
        self.assertRaises(AdapterError, a.start)
        self.assertIsNone(a.pid)

    def test_helpers(self):
        self.assertEqual(split_response(H + "none\n--- trace\n1 persid\n"),
                         (H + "none\n", "1 persid\n"))
        self.assertEqual(split_response(H + "none\n"), (H + "none\n", None))
        self.assertRaises(AdapterError, parse_hello, b"brine-adapter 2\n")
        h = parse_hello(b"brine-adapter 1\nname x\nfeatures\nfuture-key 1\n")
        self.assertEqual((h["name"], h["features"]), ("x", []))


class TestClientWithTheOracleWorker(ClientCase):

    def test_worker_killed_mid_case(self):
        with Adapter(serve_argv(), timeout=60, env=env_with_oracle()) as a:
            self.assertEqual(a.run(b"N.").text, H + "none\n")
            pid = a.pid
            killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
            killer.start()
            try:
                r = a.run(slow_pickle(3000000))
            finally:
                killer.cancel()
            self.assertEqual(r.status, "crash")
            self.assertIn("SIGKILL", r.detail)
            r = a.run(b"\x80\x04K\x05.")
            self.assertEqual((r.status, r.text), ("ok", H + "int 5\n"))
            self.assertNotEqual(a.pid, pid)
            self.assertEqual((a.crashes, a.restarts), (1, 1))

    def test_client_timeout_on_the_worker(self):
        # the worker's own CPU limit is off: the client's wall clock decides
        with Adapter(serve_argv("--timeout", "0"), timeout=0.5,
                     env=env_with_oracle()) as a:
            r = a.run(slow_pickle(3000000))
            self.assertEqual(r.status, "timeout")
            self.assertEqual(a.run(b"K\x01.").text, H + "int 1\n")

    def test_pipelined_matches_one_by_one(self):
        datas = [pickle.dumps(o, p) for p in range(pickle.HIGHEST_PROTOCOL + 1)
                 for o in (None, [1, "a"], {"k": (1.5, b"x")}, set([2]),
                           os.path.join)]
        datas += [b"", b"\xff", b"cos\nsystem\n(S'id'\ntR."]
        with Adapter(serve_argv(), timeout=60, env=env_with_oracle()) as a:
            one = [tuple(a.run(d)) for d in datas]
            many = [tuple(r) for r in a.run_many(datas, window=16)]
        self.assertEqual(one, many)
        self.assertEqual(one, [(lambda r: tuple(split_response(r)))(
            respond(d)) for d in datas])


if __name__ == "__main__":
    unittest.main()
