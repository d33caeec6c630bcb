#!/usr/bin/env python3
"""Self-test of the suite: brine run must catch a planted deviation.

    selftest_broken.py --brine BUILD/brine --python PY [--corpus DIR]

Runs the whole corpus through two implementations served by the generic
adapter (python -m brine_oracle.adapt_main):

* control: CPython's own pure-Python unpickler (``pickle:_Unpickler``),
  stock. The corpus records every CPython unpickler's answers, so the run
  must report no failure at all;
* broken: tests/oracle/broken_unpickler.py, the same unpickler with one
  deviation (BININT1 loads one more than it should).

Passes only when the control run is clean (exit 0) and the broken run fails
(exit 1) with at least one failure, every failure a case whose opcode stream
(up to STOP) holds a BININT1, and no crash or
timeout. So the test fails if brine run misses the deviation, blames cases
that do not hold it, or reports failures of a correct implementation.

Python 3.6+, standard library only.
"""

import argparse
import json
import os
import pickletools
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def opcode_names(data):
    """The opcodes of a stream up to STOP, skipped by argument layout only
    (pickletools.genops also parses arguments and stops at the first one
    CPython would reject, e.g. INT 0x1f, which a load does not)."""
    code2op = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
    pos = 0
    while pos < len(data):
        op = code2op.get(data[pos:pos + 1])
        if op is None:
            return
        pos += 1
        arg = op.arg
        if arg is not None:
            if arg.name == "stringnl_noescape_pair":
                for _ in range(2):
                    nl = data.find(b"\n", pos)
                    if nl < 0:
                        return
                    pos = nl + 1
            elif arg.n == pickletools.UP_TO_NEWLINE:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    return
                pos = nl + 1
            elif arg.n >= 0:
                pos += arg.n
            else:
                width = {pickletools.TAKEN_FROM_ARGUMENT1: 1,
                         pickletools.TAKEN_FROM_ARGUMENT4: 4,
                         pickletools.TAKEN_FROM_ARGUMENT4U: 4,
                         pickletools.TAKEN_FROM_ARGUMENT8U: 8}[arg.n]
                count = int.from_bytes(data[pos:pos + width], "little",
                                       signed=arg.n == pickletools.TAKEN_FROM_ARGUMENT4)
                pos += width + max(count, 0)
            if pos > len(data):
                return
        yield op.name
        if op.name == "STOP":
            return


def holds_binint1(data):
    return "BININT1" in opcode_names(data)


def run(brine, python, corpus, name, spec, out):
    cmd = "PYTHONPATH=%s %s -m brine_oracle.adapt_main --path %s %s" % (
        shlex.quote(os.path.join(REPO, "oracle")), shlex.quote(python),
        shlex.quote(os.path.join(REPO, "tests", "oracle")), spec)
    argv = [brine, "run", "--corpus", corpus, "--adapter", "%s=%s" % (name, cmd),
            "--json", out, "--max-report", "5", "--quiet"]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    print(p.stdout)
    with open(out, encoding="utf-8") as f:
        return p.returncode, json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brine", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--corpus", default=os.path.join(REPO, "corpus"))
    args = ap.parse_args()
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        rc, doc = run(args.brine, args.python, args.corpus, "control",
                      "pickle:_Unpickler", os.path.join(tmp, "control.json"))
        bad = [r for r in doc["results"] if r["verdict"] not in
               ("pass", "acceptable", "oracle-limit")]
        if rc != 0 or bad:
            problems.append("control run (stock pickle._Unpickler): exit %d, %d failures"
                            % (rc, len(bad)))
        rc, doc = run(args.brine, args.python, args.corpus, "broken",
                      "broken_unpickler:BrokenUnpickler", os.path.join(tmp, "broken.json"))
        results = doc["results"]
        failures = [r for r in results if r["verdict"] not in
                    ("pass", "acceptable", "oracle-limit")]
        if rc != 1:
            problems.append("broken run: exit %d, expected 1" % rc)
        if not failures:
            problems.append("broken run: no failure reported")
        blamed_wrongly = []
        for r in failures:
            if r["verdict"] in ("crash", "timeout"):
                problems.append("broken run: %s on %s/%s" % (r["verdict"], r["group"], r["id"]))
            with open(r["path"], "rb") as f:
                if not holds_binint1(f.read()):
                    blamed_wrongly.append("%s/%s" % (r["group"], r["id"]))
        if blamed_wrongly:
            problems.append("broken run: %d failures without a BININT1, e.g. %s"
                            % (len(blamed_wrongly), ", ".join(blamed_wrongly[:5])))
        print("self-test: %d cases; broken unpickler: %d failures, all on cases holding "
              "BININT1: %s" % (len(results), len(failures), "no" if blamed_wrongly else "yes"))
    for p in problems:
        print("SELF-TEST PROBLEM: " + p)
    print("self-test %s" % ("failed" if problems else "passed: brine run caught the planted "
                            "deviation and nothing else"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
