#!/usr/bin/env python3
"""Write or check the oracle expectations of tests/data/decode_cases.txt.

    regen_cases.py FILE            rewrite every case's expectation from the
                                   oracle running under this interpreter
    regen_cases.py --check FILE    recompute them and fail (exit 1, listing
                                   the cases) when any stored one differs

The expectation of a case is what brine's oracle (oracle/brine_oracle: CPython's
C unpickler with every global stubbed) makes of its pickle. When CPython's
pure-Python unpickler says something else, the case is marked
`c-py-differ: yes` and that result is stored as `expect-py`; libpkl follows
the C unpickler. The file format is described at the top of the case file.
An oracle result of `internal` (an exception the oracle cannot classify, so
an oracle gap rather than a fact about CPython) is stored like any other but
makes both modes exit 1 until the oracle is fixed.

Runs on Python 3.6 and later. The oracle is imported from the `oracle` folder
of this source tree unless it is already importable (PYTHONPATH=oracle).
"""

import argparse
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER_LINE = "brine-canonical 1 raw"
PROVENANCE = "# expectations written by regen_cases.py with "


class FormatError(Exception):
    pass


class Case(object):
    __slots__ = ("name", "line", "desc", "pickle_text", "data", "expect",
                 "differ", "expect_py")

    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.desc = None
        self.pickle_text = None
        self.data = None
        self.expect = None      # canonical body (str), lines end with "\n"
        self.differ = False
        self.expect_py = None


# --------------------------------------------------------------------------
# The escaped pickle bytes

_SIMPLE = {"\\": 0x5C, "'": 0x27, '"': 0x22, "n": 0x0A, "r": 0x0D, "t": 0x09}
_HEX = "0123456789abcdefABCDEF"


def unescape(text):
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        o = ord(c)
        if c == "\\":
            if i + 1 >= n:
                raise FormatError("lone backslash at the end")
            e = text[i + 1]
            if e in _SIMPLE:
                out.append(_SIMPLE[e])
                i += 2
            elif e == "x":
                h = text[i + 2:i + 4]
                if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                    raise FormatError("bad \\x escape at column %d" % i)
                out.append(int(h, 16))
                i += 4
            else:
                raise FormatError("unknown escape \\%s" % e)
        elif 0x20 <= o < 0x7F:
            out.append(o)
            i += 1
        else:
            raise FormatError("character %r must be escaped" % c)
    return bytes(out)


# --------------------------------------------------------------------------
# Reading and writing the case file

def _read_block(lines, i, first, lineno):
    """`first` is the text after 'expect:' / 'expect-py:'. Returns (body, i)."""
    first = first.strip()
    if first:
        if not first.startswith("error ") or len(first.split()) != 2:
            raise FormatError("line %d: expected 'error <class>' or a block"
                              % lineno)
        return first + "\n", i
    body = []
    while i < len(lines) and lines[i].startswith("  "):
        body.append(lines[i][2:] + "\n")
        i += 1
    if not body:
        raise FormatError("line %d: empty expectation block" % lineno)
    return "".join(body), i


def parse(text):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = []
    i = 0
    while i < len(lines) and not lines[i].startswith("== "):
        if lines[i].strip() and not lines[i].startswith("#"):
            raise FormatError("line %d: text before the first case" % (i + 1))
        header.append(lines[i])
        i += 1
    cases = []
    seen = set()
    cur = None
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        if line.startswith("== "):
            name = line[3:].strip()
            if not name or name in seen:
                raise FormatError("line %d: empty or repeated name %r"
                                  % (lineno, name))
            seen.add(name)
            cur = Case(name, lineno)
            cases.append(cur)
        elif line == "":
            continue
        elif cur is None:
            raise FormatError("line %d: outside a case" % lineno)
        elif line.startswith("# "):
            if cur.desc is not None or cur.pickle_text is not None:
                raise FormatError("line %d: the description is one line, "
                                  "right after the name" % lineno)
            cur.desc = line[2:]
        elif line.startswith("pickle: ") or line == "pickle:":
            if cur.pickle_text is not None:
                raise FormatError("line %d: second pickle line" % lineno)
            cur.pickle_text = line[len("pickle:"):].lstrip(" ")
            try:
                cur.data = unescape(cur.pickle_text)
            except FormatError as e:
                raise FormatError("line %d: %s" % (lineno, e))
        elif line.startswith("expect:"):
            if cur.expect is not None:
                raise FormatError("line %d: second expect" % lineno)
            cur.expect, i = _read_block(lines, i, line[len("expect:"):], lineno)
        elif line == "c-py-differ: yes":
            cur.differ = True
        elif line.startswith("expect-py:"):
            cur.expect_py, i = _read_block(lines, i, line[len("expect-py:"):],
                                           lineno)
        else:
            raise FormatError("line %d: unexpected %r" % (lineno, line))
    for c in cases:
        if c.desc is None or c.pickle_text is None:
            raise FormatError("case %s (line %d) needs a description and a "
                              "pickle line" % (c.name, c.line))
        if c.differ != (c.expect_py is not None):
            raise FormatError("case %s: c-py-differ and expect-py go together"
                              % c.name)
    return header, cases


def _write_block(key, body):
    if body.count("\n") == 1 and body.startswith("error "):
        return ["%s: %s" % (key, body.rstrip("\n"))]
    return ["%s:" % key] + ["  " + ln for ln in body.rstrip("\n").split("\n")]


def render(header, cases):
    out = list(header)
    while out and out[-1] == "":
        out.pop()
    for c in cases:
        out.append("")
        out.append("== " + c.name)
        out.append("# " + c.desc)
        out.append(("pickle: " + c.pickle_text).rstrip(" "))
        if c.expect is not None:
            out.extend(_write_block("expect", c.expect))
        if c.differ:
            out.append("c-py-differ: yes")
            out.extend(_write_block("expect-py", c.expect_py))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# The oracle

def _import_oracle():
    try:
        from brine_oracle import loader  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..",
                                                         "oracle")))
        from brine_oracle import loader  # noqa: F401
    return loader


def _body(text, name, which):
    head, sep, body = text.partition("\n")
    if head != HEADER_LINE or not sep or not body.endswith("\n"):
        raise SystemExit("regen_cases: the oracle (%s) gave no canonical "
                         "document for %s: %r" % (which, name, text[:200]))
    return body


def oracle_results(loader, case):
    res = {}
    for which in ("c", "py"):
        with warnings.catch_warnings():
            # e.g. the DeprecationWarning of an unknown STRING escape: never
            # let a -W option of the caller turn it into an error
            warnings.simplefilter("ignore")
            r = loader.load_result(case.data, which)
        res[which] = _body(r.text, case.name, which)
        if r.error == "internal":
            # an exception the oracle cannot classify: an oracle gap, never a
            # fact about CPython; stored as is, but the run fails (below)
            _INTERNAL.append("%s: the oracle (%s unpickler) says internal: %s"
                             % (case.name, which, r.message()))
    return res["c"], res["py"]


_INTERNAL = []


def provenance():
    return "%sCPython %s, C and Python unpicklers" % (
        PROVENANCE, sys.version.split()[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="fail when a stored expectation is not the oracle's")
    ap.add_argument("file")
    args = ap.parse_args(argv)
    with open(args.file, "rb") as f:
        raw = f.read()
    try:
        header, cases = parse(raw.decode("ascii"))
    except (UnicodeDecodeError, FormatError) as e:
        sys.stderr.write("regen_cases: %s: %s\n" % (args.file, e))
        return 2
    loader = _import_oracle()
    problems = []
    for c in cases:
        c_text, py_text = oracle_results(loader, c)
        differ = c_text != py_text
        new_py = py_text if differ else None
        if args.check:
            why = []
            if c.expect is None:
                why.append("no stored expectation")
            elif c.expect != c_text:
                why.append("expect differs\n--- stored\n%s--- oracle (C)\n%s"
                           % (c.expect, c_text))
            if c.differ != differ:
                why.append("c-py-differ should be %s" % ("yes" if differ
                                                          else "absent"))
            elif differ and c.expect_py != new_py:
                why.append("expect-py differs\n--- stored\n%s--- oracle (py)"
                           "\n%s" % (c.expect_py, new_py))
            if why:
                problems.append("%s (line %d, pickle %s): %s"
                                % (c.name, c.line, c.pickle_text,
                                   "; ".join(why)))
        else:
            c.expect = c_text
            c.differ = differ
            c.expect_py = new_py
    if _INTERNAL:
        sys.stderr.write("regen_cases: the oracle could not classify these "
                         "(extend oracle/brine_oracle/classify.py):\n  %s\n"
                         % "\n  ".join(_INTERNAL))
    if args.check:
        if problems:
            sys.stderr.write("regen_cases: %d of %d cases are not what the "
                             "oracle says (CPython %s):\n\n%s\n"
                             % (len(problems), len(cases),
                                sys.version.split()[0], "\n\n".join(problems)))
            return 1
        if _INTERNAL:
            return 1
        print("regen_cases: all %d expectations match the oracle (CPython %s)"
              % (len(cases), sys.version.split()[0]))
        return 0
    header = [h for h in header if not h.startswith(PROVENANCE)]
    while header and header[-1] == "":
        header.pop()
    header.append(provenance())
    text = render(header, cases)
    with open(args.file, "wb") as f:
        f.write(text.encode("ascii"))
    print("regen_cases: wrote %d expectations (%d where C and Python differ)"
          % (len(cases), sum(1 for c in cases if c.differ)))
    return 1 if _INTERNAL else 0


if __name__ == "__main__":
    sys.exit(main())
