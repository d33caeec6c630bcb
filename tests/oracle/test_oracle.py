"""Self-tests of the brine oracle (oracle/brine_oracle).

Run from the repository root with any CPython 3.6+:

    python3 -m unittest discover -s tests/oracle -v
    python3 -m unittest tests.oracle.test_oracle

Expectations come from docs/canonical-form.md (ours), not from the oracle's
own output.  Nothing here imports or calls what a pickle names: the sentinel
tests check exactly that (with audit hooks where available, 3.8+).
"""

import hashlib
import os
import pickle
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "oracle"))

from brine_oracle import canon, load, load_result  # noqa: E402
from brine_oracle.canon import quote_bytes, quote_str, render  # noqa: E402
from brine_oracle.classify import CLASSES, classify  # noqa: E402

H = "brine-canonical 1 raw\n"
P5 = pickle.HIGHEST_PROTOCOL >= 5
UNPICKLERS = ("c", "py")


def doc(*lines):
    return H + "".join(l + "\n" for l in lines)


class OracleCase(unittest.TestCase):

    def assertLoads(self, data, expected, unpicklers=UNPICKLERS):
        for u in unpicklers:
            text, _ = load(data, u)
            self.assertEqual(text, expected, "unpickler %s, data %r" % (u, data))

    def assertError(self, data, cls, unpicklers=UNPICKLERS):
        for u in unpicklers:
            r = load_result(data, u)
            self.assertEqual(r.error, cls, "unpickler %s, data %r: %s"
                             % (u, data, r.message()))
            self.assertEqual(r.text, H + "error %s\n" % cls)


# --------------------------------------------------------------------------
# docs/canonical-form.md section 7, verbatim

class TestSpecExamples(OracleCase):

    def test_list_of_scalars(self):
        self.assertLoads(pickle.dumps([1, 2.5, u"\xe9", b"\x00"], 3), doc(
            "list", "  int 1", "  float 4004000000000000", '  str "\\xe9"',
            '  bytes "\\x00"'))

    def test_list_containing_itself(self):
        a = []
        a.append(a)
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            self.assertLoads(pickle.dumps(a, proto),
                             doc("list #1", "  ref #1"))

    def test_shared_tuple_and_big_ints(self):
        t = (2 ** 64, -2 ** 63)
        self.assertLoads(pickle.dumps([t, t], 2), doc(
            "list", "  tuple #1", "    int 0x10000000000000000",
            "    int -9223372036854775808", "  ref #1"))

    def test_dict_with_frozenset_key(self):
        # Protocol 4: FROZENSET opcode (below 4 it is a call of frozenset).
        self.assertLoads(pickle.dumps({frozenset([3, 1]): None}, 4), doc(
            "dict", "  frozenset", "    int 1", "    int 3", "  none"))

    def test_instance_protocol_2(self):
        data = (b"\x80\x02c__main__\nC\nq\x00)\x81q\x01}q\x02X\x01\x00\x00"
                b"\x00xq\x03K\x01sb.")
        self.assertLoads(data, doc(
            "new", '  global "__main__" "C"', "  .build", "    dict",
            '      str "x"', "      int 1"))

    def test_os_system_reduce(self):
        self.assertLoads(b'cposix\nsystem\n(S"echo hi"\ntR.', doc(
            "call", '  global "posix" "system"', "  .args",
            '    str "echo hi"'))

    def test_protocol_0_set(self):
        self.assertLoads(pickle.dumps(set([1]), 0), doc(
            "call", '  global "__builtin__" "set"', "  .args", "    list",
            "      int 1"))

    def test_failed_load(self):
        self.assertError(b"K", "truncated")


# --------------------------------------------------------------------------
# Scalars and quoting (section 3)

class TestScalars(OracleCase):

    def test_quote_str(self):
        self.assertEqual(quote_str(u'a"b\\c'), r'"a\"b\\c"')
        self.assertEqual(quote_str(u"\x00\x1f \x7e\x7f"), r'"\x00\x1f ~\x7f"')
        self.assertEqual(quote_str(u"\xe9\xff\u0100\uffff"),
                         r'"\xe9\xff\u0100\uffff"')
        self.assertEqual(quote_str(u"\U00010000\U0010ffff"),
                         r'"\U00010000\U0010ffff"')
        self.assertEqual(quote_str(u"\ud800\udfff"), r'"\ud800\udfff"')
        self.assertEqual(quote_str(u"[]^-"), '"[]^-"')
        self.assertEqual(quote_str(u""), '""')

    def test_quote_bytes(self):
        self.assertEqual(quote_bytes(b'\x00"\\a\x7f\x80\xff'),
                         r'"\x00\"\\a\x7f\x80\xff"')
        self.assertEqual(quote_bytes(bytearray(b"ok")), '"ok"')

    def test_ints(self):
        cases = [(0, "0"), (-1, "-1"), (2 ** 63 - 1, "9223372036854775807"),
                 (-2 ** 63, "-9223372036854775808"),
                 (2 ** 63, "0x8000000000000000"),
                 (-2 ** 63 - 1, "-0x8000000000000001"),
                 (2 ** 64, "0x10000000000000000"), (-2 ** 64, "-0x10000000000000000")]
        for v, text in cases:
            for proto in (0, 1, 2, 4):
                self.assertLoads(pickle.dumps(v, proto), doc("int " + text))

    def test_bool_is_not_int(self):
        self.assertLoads(pickle.dumps([True, False, 1, 0], 2), doc(
            "list", "  bool true", "  bool false", "  int 1", "  int 0"))
        self.assertLoads(b"I01\nI00\n\x86.", doc(
            "tuple", "  bool true", "  bool false"))

    def test_floats(self):
        nan_payload = struct.unpack(">d", bytes.fromhex("7ff8000000000001"))[0]
        cases = [(-0.0, "8000000000000000"), (float("inf"), "7ff0000000000000"),
                 (float("-inf"), "fff0000000000000"),
                 (nan_payload, "7ff8000000000001"), (5e-324, "0000000000000001")]
        for v, bits in cases:
            self.assertLoads(pickle.dumps(v, 2), doc("float " + bits))
        self.assertLoads(b"Fnan\n.", doc("float 7ff8000000000000"))

    def test_str_and_bytes(self):
        self.assertLoads(pickle.dumps(u"\ud800\U0001f600\n", 4),
                         doc(r'str "\ud800\U0001f600\x0a"'))
        self.assertLoads(pickle.dumps(u"\ud800", 0), doc(r'str "\ud800"'))
        self.assertLoads(pickle.dumps(b'"\\', 3), doc(r'bytes "\"\\"'))
        self.assertLoads(pickle.dumps(bytearray(b"\xff"), 3), doc(
            "call", '  global "builtins" "bytearray"', "  .args",
            r'    bytes "\xff"'))

    @unittest.skipUnless(P5, "protocol 5")
    def test_bytearray_and_readonly_buffer(self):
        self.assertLoads(pickle.dumps(bytearray(b"ab"), 5),
                         doc('bytearray "ab"'))
        # READONLY_BUFFER on a bytearray -> memoryview of it; on bytes -> same.
        self.assertLoads(b"\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00ab\x98.",
                         doc("memoryview", '  bytearray "ab"'))
        self.assertLoads(b"\x80\x05C\x02ab\x98.", doc('bytes "ab"'))


# --------------------------------------------------------------------------
# Identity (section 4)

class TestIdentity(OracleCase):

    def test_scalars_never_labelled(self):
        s = u"shared"
        self.assertLoads(pickle.dumps([s, s], 2), doc(
            "list", '  str "shared"', '  str "shared"'))

    def test_empty_tuple_and_frozenset_never_labelled(self):
        e = ()
        self.assertLoads(pickle.dumps([e, e], 2), doc("list", "  tuple", "  tuple"))
        f = frozenset()
        self.assertLoads(pickle.dumps([f, f], 4),
                         doc("list", "  frozenset", "  frozenset"))

    def test_labels_in_preorder(self):
        a, b = [1], [2]
        self.assertLoads(pickle.dumps([b, a, a, b], 2), doc(
            "list", "  list #1", "    int 2", "  list #2", "    int 1",
            "  ref #2", "  ref #1"))

    def test_cycles(self):
        l = []
        d = {u"l": l}
        l.append(d)
        self.assertLoads(pickle.dumps(l, 2), doc(
            "list #1", "  dict", '    str "l"', "    ref #1"))
        l2 = []
        t = (l2,)
        l2.append(t)
        self.assertLoads(pickle.dumps(t, 2), doc(
            "tuple #1", "  list", "    ref #1"))

    def test_args_tuple_identity_does_not_count(self):
        # t = (x,) memoized, used as REDUCE args and in the list:
        # [f(*t), t] -> the tuple appears once (in the list), its element x
        # twice (in .args and in the tuple).
        data = (b"\x80\x02](cm\nf\n]q\x00\x85q\x01Rh\x01e.")
        self.assertLoads(data, doc(
            "list", "  call", '    global "m" "f"', "    .args",
            "      list #1", "  tuple", "    ref #1"))

    def test_shared_global(self):
        self.assertLoads(b"\x80\x02cm\nf\ncm\nf\n\x86.", doc(
            "tuple", '  global "m" "f" #1', "  ref #1"))


# --------------------------------------------------------------------------
# Set order (section 5)

def _sha_hex(text):
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class TestSetOrder(OracleCase):

    def test_scalars_by_line_text(self):
        data = pickle.dumps(set([9, 10, -1, u"a", b"a", None, True]), 4)
        self.assertLoads(data, doc(
            "set", '  bool true', '  bytes "a"', "  int -1", "  int 10",
            "  int 9", "  none", '  str "a"'))

    def test_composites_by_digest(self):
        tuples = [(1,), (2,), (u"x", 3)]
        key = {
            (1,): _sha_hex("tuple(int 1)"),
            (2,): _sha_hex("tuple(int 2)"),
            (u"x", 3): _sha_hex('tuple(str "x",int 3)'),
        }
        order = sorted(tuples, key=lambda t: key[t])
        lines = ["frozenset", "  int 0"]
        for t in order:
            lines.append("  tuple")
            for e in t:
                lines.append("    " + canon.scalar_line(e))
        self.assertLoads(pickle.dumps(frozenset(tuples + [0]), 4), doc(*lines))

    def test_nested_digest(self):
        # D(tuple((int 1)), 1) = sha(tuple(<hex D((int 1),2)>))
        inner = _sha_hex("tuple(int 1)")
        d_a = _sha_hex("tuple(" + inner + ")")
        d_b = _sha_hex("tuple(int 5)")
        a, b = ((1,),), (5,)
        first, second = (a, b) if d_a < d_b else (b, a)
        text = load(pickle.dumps(set([a, b]), 4))[0]
        pos_a = text.index("tuple\n    tuple\n")
        pos_b = text.index("int 5")
        self.assertEqual(pos_a < pos_b, first is a)

    def test_set_of_instances_is_deterministic(self):
        data = (b"\x80\x04\x8f(cm\nC\n)\x81K\x01b" b"cm\nC\n)\x81K\x02b"
                b"cm\nC\n)\x81K\x03b\x90.")
        texts = set(load(data, u)[0] for u in UNPICKLERS for _ in range(3))
        self.assertEqual(len(texts), 1)


# --------------------------------------------------------------------------
# Stubs

class TestStubs(OracleCase):

    def test_build_on_global(self):
        self.assertLoads(b"cm\nC\n}b.", doc(
            'global "m" "C"', "  .build", "    dict"))

    def test_mutations_on_stubs(self):
        # NEWOBJ, then APPENDS, SETITEMS, BUILD on the new object, ADDITEMS.
        data = (b"\x80\x04cm\nC\n)\x81(K\x01K\x02e(K\x03K\x04u(K\x05\x90"
                b"NbK\x06a.")
        self.assertLoads(data, doc(
            "new", '  global "m" "C"', "  .append", "    int 1",
            "  .append", "    int 2", "  .setitem", "    int 3", "    int 4",
            "  .add", "    int 5", "  .build", "    none", "  .append",
            "    int 6"))

    def test_setitem_on_global(self):
        self.assertLoads(b"cm\nC\nK\x01K\x02s.", doc(
            'global "m" "C"', "  .setitem", "    int 1", "    int 2"))

    def test_calling_a_call(self):
        self.assertLoads(b"cm\nf\n)R(K\x01tR.", doc(
            "call", "  call", '    global "m" "f"', "  .args", "    int 1"))

    def test_inst_obj(self):
        # INST/OBJ without args -> new; with args -> call.
        self.assertLoads(b"(im\nC\n.", doc("new", '  global "m" "C"'))
        self.assertLoads(b"(cm\nC\no.", doc("new", '  global "m" "C"'))
        self.assertLoads(b"(K\x01im\nC\n.", doc(
            "call", '  global "m" "C"', "  .args", "    int 1"))
        # OBJ on a call result (not a type): a call with no .args
        self.assertLoads(b"(cm\nf\n)Ro.", doc(
            "call", "  call", '    global "m" "f"'))

    def test_newobj_ex_kwargs(self):
        data = b"\x80\x04cm\nC\nK\x01\x85}X\x01\x00\x00\x00kK\x02s\x92."
        self.assertLoads(data, doc(
            "new", '  global "m" "C"', "  .args", "    int 1", "  .kwargs",
            '    str "k"', "    int 2"))

    def test_newobj_on_non_type(self):
        self.assertError(b"\x80\x02cm\nf\n)R)\x81.", "type-error")
        self.assertError(b"\x80\x02K\x01)\x81.", "type-error")

    def test_persid(self):
        self.assertLoads(b"Pkey\n.", doc("persid", '  str "key"'))
        self.assertLoads(b"\x80\x02K\x05Q}b.", doc(
            "persid", "  int 5", "  .build", "    dict"))

    def test_extension_registry_not_consulted_for_unknown(self):
        self.assertError(b"\x80\x02\x82\x01.", "unknown-extension")
        self.assertError(b"\x80\x02\x84\xff\xff\xff\x7f.", "unknown-extension")

    def test_extension_code_resolves_through_find_class(self):
        import copyreg
        copyreg.add_extension("brine_test_mod", "Thing", 0x7ffffff0)
        try:
            for _ in range(2):  # the cache must not leak between loads
                self.assertLoads(b"\x80\x02\x84\xf0\xff\xff\x7f.",
                                 doc('global "brine_test_mod" "Thing"'))
        finally:
            copyreg.remove_extension("brine_test_mod", "Thing", 0x7ffffff0)

    def test_stubs_are_not_iterable_and_hash_by_identity(self):
        # REDUCE with a stub as the argument "tuple": C wants a tuple, py
        # iterates it (func(*args)); a stub is not iterable either way.
        self.assertError(b"cm\nf\ncm\ng\nR.", "type-error")
        # a stub as dict key and set element
        self.assertLoads(b"\x80\x04}cm\nC\nK\x01s.", doc(
            "dict", '  global "m" "C"', "  int 1"))

    def test_trace(self):
        r = load_result(b"\x80\x02cm\nf\n)RK\x01b.")
        kinds = [e[0] for e in r.trace]
        self.assertEqual(kinds, ["global", "call", "mutate"])
        self.assertEqual(r.trace[0][1:3], ("m", "f"))
        # events before an error are kept
        r = load_result(b"\x80\x02cm\nf\n)R\xff")
        self.assertEqual([e[0] for e in r.trace], ["global", "call"])
        self.assertEqual(r.error, "bad-opcode")


# --------------------------------------------------------------------------
# Nothing runs

SENTINEL_MODULE = "brine_sentinel_module_never_imported"


class TestNothingRuns(OracleCase):

    events = []
    recording = [False]

    @classmethod
    def setUpClass(cls):
        if hasattr(sys, "addaudithook"):
            def hook(event, args, events=cls.events, rec=cls.recording):
                if rec[0]:
                    events.append((event, args))
            sys.addaudithook(hook)

    def _check(self, data):
        fd, marker = tempfile.mkstemp(prefix="brine-sentinel-")
        os.close(fd)
        os.unlink(marker)
        data = data.replace(b"MARKER", marker.encode())
        before = set(sys.modules)
        del self.events[:]
        self.recording[0] = True
        try:
            results = [load_result(data, u) for u in UNPICKLERS]
        finally:
            self.recording[0] = False
        self.assertFalse(os.path.exists(marker), "a pickle ran code")
        self.assertNotIn(SENTINEL_MODULE, sys.modules)
        new = set(sys.modules) - before
        self.assertFalse([m for m in new if m.startswith("brine_sentinel")
                          or m in ("subprocess", "os", "posix")], new)
        bad = [e for e in self.events
               if e[0] in ("os.system", "subprocess.Popen", "os.exec",
                           "os.posix_spawn", "os.spawn", "pickle.find_class",
                           "exec", "builtins.input")
               or (e[0] == "import" and e[1] and
                   str(e[1][0]).startswith(("brine_sentinel", "subprocess",
                                            "posix", "nt")))]
        self.assertEqual(bad, [])
        return results

    def test_exploit_shapes(self):
        cmd = b"touch MARKER"
        sent = SENTINEL_MODULE.encode()
        pickles = [
            b"cos\nsystem\n(S'" + cmd + b"'\ntR.",                      # GLOBAL+REDUCE
            b"c" + sent + b"\nrun\n(S'" + cmd + b"'\ntR.",
            b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x07echo hi"
            b"\x85R.",                                                   # STACK_GLOBAL
            b"(S'" + cmd + b"'\nios\nsystem\n.",                         # INST
            b"(cos\nsystem\nS'" + cmd + b"'\no.",                        # OBJ
            b"\x80\x02csubprocess\nPopen\nS'" + cmd + b"'\n\x85\x81.",   # NEWOBJ
            b"\x80\x02cos\nsystem\n}S'" + cmd + b"'\nS'x'\nsb.",         # BUILD on a global
            b"c__builtin__\neval\n(S'__import__(\"os\").system(\"" + cmd
            + b"\")'\ntR.",
            b"cbuiltins\ngetattr\n(c" + sent + b"\nx\nS'y'\ntR(tR.",    # call of a call
            b"\x80\x02c" + sent + b"\nC\n)\x81(K\x01K\x02uK\x03a.",
        ]
        for p in pickles:
            for r in self._check(p):
                self.assertIn(r.error, (None,), (p, r.message()))

    def test_audit_hooks_available(self):
        if not hasattr(sys, "addaudithook"):
            self.skipTest("sys.addaudithook needs Python 3.8+")
        # the hook itself works: a real import is seen
        del self.events[:]
        self.recording[0] = True
        try:
            try:
                __import__("brine_hook_probe_missing")
            except ImportError:
                pass
        finally:
            self.recording[0] = False
        self.assertTrue(any(e[0] == "import" for e in self.events))


# --------------------------------------------------------------------------
# Error classification, both unpicklers

ERRORS = [
    (b"", "truncated"),
    (b"K", "truncated"),
    (b"J\x01\x02", "truncated"),
    (b"I\n.", "truncated"),              # empty line: C len < 2, py int(b"")
    (b"I12", "truncated"),               # line without newline
    (b"X\x05\x00\x00\x00ab", "truncated"),
    (b"\xff", "bad-opcode"),
    (b"\x80\x02\xb0.", "bad-opcode"),
    (b"0", "stack-underflow"),           # py: POP falls back to pop_mark
    (b"a", "stack-underflow"),
    (b"(a.", "stack-underflow"),
    (b".", "stack-underflow"),
    (b"\x85.", "stack-underflow"),
    (b"(K\x01d.", "stack-underflow"),     # C: odd number of items for DICT
    (b"}(K\x01u.", "stack-underflow"),
    (b"t.", "mark-missing"),
    (b"]e.", "mark-missing"),
    (b"1.", "mark-missing"),
    (b"h\x05.", "memo-missing"),
    (b"g5\n.", "memo-missing"),
    (b"g99999999999999999999999\n.", "memo-missing"),  # C: OverflowError
    (b"\x80\x06N.", "unsupported-protocol"),
    (b"Iabc\n.", "bad-argument"),
    (b"Fx\n.", "bad-argument"),
    (b"Sabc\n.", "bad-argument"),
    (b"S'\\x4'\n.", "bad-argument"),
    (b"X\x01\x00\x00\x00\xff.", "bad-argument"),
    (b"S'\xe9'\n.", "bad-argument"),
    (b"\x8b\xff\xff\xff\xff.", "bad-argument"),
    (b"Np-1\n.", "bad-argument"),
    (b"\x82\x00.", "bad-argument"),
    (b"c\xff\nb\n.", "bad-argument"),
    (b"Vab\\u12\n.", "bad-argument"),
    (b"]K\x05K\x01s.", "bad-argument"),   # list assignment index out of range
    (b"]N\x85R.", "type-error"),
    (b"}]K\x01s.", "type-error"),
    (b"K\x01K\x02\x93.", "type-error"),
    (b"K\x01)\x81.", "type-error"),
    (b"K\x01K\x02a.", "type-error"),
    (b"\x82\x01.", "unknown-extension"),
    (b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", "resource-limit"),
    (b"\x8e\x00\x00\x00\x00\x00\x00\x00\x7f.", "truncated"),  # C allocates first
]
if P5:
    ERRORS += [
        (b"\x80\x05\x97.", "no-buffers"),
        (b"\x80\x05K\x01\x98.", "type-error"),
    ]
if hasattr(sys, "get_int_max_str_digits"):
    ERRORS += [(b"I" + b"1" * 5000 + b"\n.", "resource-limit"),
               (b"L" + b"1" * 5000 + b"L\n.", "resource-limit")]


class TestClassification(OracleCase):

    def test_malformed(self):
        for data, cls in ERRORS:
            self.assertError(data, cls)

    def test_memory_error_before_an_overrun_is_a_limit(self):
        # The C unpickler grows its memo array to a PUT index (MemoryError
        # for a huge one: CPython's own limit) before it reaches the
        # over-long BINBYTES8 after it; only a MemoryError on the over-long
        # argument itself is read as truncation (corpus/regress/
        # oracle_memo_memoryerror_before_overrun.pkl)
        put = b"p1023372036854775809\n"
        overrun = b"\x8e\xff\xff\xff\xff\xff\xff\xff\x0fx"
        self.assertError(b"N" + put + overrun, "resource-limit", ("c",))
        self.assertError(b"N" + put + overrun, "truncated", ("py",))
        self.assertError(b"N" + overrun, "truncated")

    def test_framed_put_beyond_ssize_t_is_a_limit(self):
        # The C unpickler reads a frame whole, so a plain file's position
        # after a failure is the frame's end; the classifier finds the
        # failing opcode on a copy without the FRAME (here the frame ends
        # with a GET line, so the frame's end would say GET, memo-missing)
        def framed(body):
            return (b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
                    + b".")
        huge = b"9" * 30 + b"\n"
        self.assertError(framed(b"Np" + huge + b"g" + huge),
                         "resource-limit", ("c",))
        self.assertError(framed(b"Ng" + huge), "memo-missing")

    def test_classes_are_the_taxonomy(self):
        self.assertEqual(len(CLASSES), 13)
        for data, cls in ERRORS:
            self.assertIn(cls, CLASSES)

    def test_unknown_exception_is_internal(self):
        cls, why = classify(RuntimeError("something new"))
        self.assertEqual(cls, "internal")
        self.assertIn("unclassified", why)


# --------------------------------------------------------------------------
# Size and depth

class TestLimits(OracleCase):

    def test_deep_list_is_iterative(self):
        n = 1000000
        data = b"]" * n + b"a" * (n - 1) + b"."
        r = load_result(data, "c")
        self.assertIsNone(r.error, r.message())
        lines = r.text.split("\n")
        self.assertEqual(lines[1], "list")
        self.assertEqual(lines[33], "  " * 32 + "list")
        self.assertEqual(lines[34], "@33 list")
        self.assertEqual(lines[n], "@%d list" % (n - 1))

    def test_deep_set_digest(self):
        # a set holding a stub whose state is a 100000-deep list: the digest
        # is depth-bounded, the output uses @-indentation
        n = 100000
        data = (b"\x80\x04\x8f(cm\nC\n)\x81" + b"]" * n + b"a" * (n - 1)
                + b"b\x90.")
        for u in UNPICKLERS:
            r = load_result(data, u)
            self.assertIsNone(r.error, r.message())
            self.assertTrue(r.text.startswith(doc(
                "set", "  new", '    global "m" "C"', "    .build",
                "      list")), r.text[:200])
            self.assertTrue(r.text.endswith("@%d list\n" % (n + 2)))

    def test_output_limit(self):
        data = pickle.dumps(list(range(1000)), 2)
        with self.assertRaises(canon.OutputLimitExceeded):
            render(pickle.loads(data), max_output=100)
        r = load_result(data, "c", max_output=100)
        self.assertEqual(r.error, "resource-limit")
        exact = load(data)[0]
        self.assertEqual(load(data, "c", max_output=len(exact))[0], exact)
        self.assertEqual(load_result(data, "c", max_output=len(exact) - 1)
                         .error, "resource-limit")


if __name__ == "__main__":
    unittest.main()
