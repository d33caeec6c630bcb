#!/usr/bin/env python3
"""Check brine's opcode table against pickletools of every Python found.

usage: check_opcodes.py --brine PATH [--verbose]

Reads the table from `brine opcodes --json` and, for every interpreter on
this machine (PATH python*/pypy*, /usr/bin/python3*, ~/.pyenv/versions/*,
deduplicated by real path), the interpreter's own pickletools.opcodes through
a `-c` snippet that runs on Python 2.7 and 3.x alike. For each interpreter:

  * every pickletools opcode must be in the table with the same name, code,
    proto, argument kind and stack_before/stack_after names;
  * every table opcode the interpreter lacks must be newer than its highest
    protocol.

Python 2's pickletools names a few things differently for reasons that are
not errors in the table (py2 type names, a signed memo index); those are
listed in PY2_* below, applied only to Python 2, and counted in its line.

Prints one line per interpreter and a final "N passed, M failed"; exits 0
only when M == 0 and N >= 1. Runs on Python 3.6+.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys

# The snippet each interpreter runs: plain Python 2.7/3.x, no f-strings.
QUERY = r"""
import json, pickle, pickletools, platform, sys
ops = []
for o in pickletools.opcodes:
    ops.append({"name": o.name, "code": ord(o.code),
                "arg": o.arg.name if o.arg is not None else None,
                "proto": o.proto,
                "stack_before": [s.name for s in o.stack_before],
                "stack_after": [s.name for s in o.stack_after]})
sys.stdout.write(json.dumps({
    "impl": platform.python_implementation(),
    "version": ".".join(str(v) for v in sys.version_info[:3]),
    "executable": sys.executable,
    "highest": pickle.HIGHEST_PROTOCOL,
    "ops": ops}))
"""

# Python 2 spells Python 3's stack-object names after py2 types.
PY2_STACK_NAMES = {"long": "int", "str": "bytes_or_str", "unicode": "str"}
# Python 2 reads the LONG_BINGET/LONG_BINPUT memo index as signed (int4);
# Python 3 as unsigned (uint4), which is what the table records.
PY2_ARG_KINDS = {("LONG_BINGET", "int4"): "uint4", ("LONG_BINPUT", "int4"): "uint4"}

NAME_RE = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?$")


def candidates():
    """Absolute paths of every interpreter worth asking, deduplicated by
    real path, in a stable order."""
    found = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d:
            found += glob.glob(os.path.join(d, "python*"))
            found += glob.glob(os.path.join(d, "pypy*"))
    found += glob.glob("/usr/bin/python3*")
    found += glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python"))
    seen, out = set(), []
    for path in found:
        if not NAME_RE.match(os.path.basename(path)):
            continue  # python3-config, python-argcomplete-..., etc.
        real = os.path.realpath(path)
        # pyenv shims are shell scripts that re-dispatch to one of the
        # versions listed on their own; asking them would only duplicate one.
        if os.path.basename(os.path.dirname(real)) == "shims":
            continue
        if real in seen or not os.path.isfile(real) or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        out.append(real)
    # natural order, so 3.9 comes before 3.10
    return sorted(out, key=lambda p: [int(t) if t.isdigit() else t
                                      for t in re.split(r"(\d+)", p)])


def query(python):
    p = subprocess.Popen([python, "-c", QUERY], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise RuntimeError("timed out")
    if p.returncode != 0:
        raise RuntimeError("exit %d: %s" % (p.returncode,
                                            err.decode("utf-8", "replace").strip()[-300:]))
    return json.loads(out.decode("utf-8"))


def brine_table(brine):
    out = subprocess.check_output([brine, "opcodes", "--json"])
    table = json.loads(out.decode("utf-8"))
    problems = []
    for key in ("name", "code"):
        values = [op[key] for op in table]
        dups = sorted(set(v for v in values if values.count(v) > 1))
        if dups:
            problems.append("duplicate %s in the table: %s" % (key, dups))
    return table, problems


def compare(table, info):
    """Returns (problems, notes) for one interpreter."""
    py2 = info["version"].startswith("2.")
    by_name = dict((op["name"], op) for op in table)
    problems, adjusted = [], 0
    seen = set()
    for op in info["ops"]:
        name = op["name"]
        seen.add(name)
        mine = by_name.get(name)
        if mine is None:
            problems.append("%s (0x%02x) is not in brine's table" % (name, op["code"]))
            continue
        theirs = dict(op)
        if py2:
            for k in ("stack_before", "stack_after"):
                fixed = [PY2_STACK_NAMES.get(s, s) for s in op[k]]
                adjusted += fixed != op[k]
                theirs[k] = fixed
            kind = PY2_ARG_KINDS.get((name, op["arg"]))
            if kind:
                theirs["arg"] = kind
                adjusted += 1
        for k in ("code", "proto", "arg", "stack_before", "stack_after"):
            if mine[k] != theirs[k]:
                mapped = "" if theirs[k] == op[k] else " (py2 spelling of %r)" % (theirs[k],)
                problems.append("%s: %s is %r in brine, %r in pickletools%s"
                                % (name, k, mine[k], op[k], mapped))
    absent = [op for op in table if op["name"] not in seen]
    for op in absent:
        if op["proto"] <= info["highest"]:
            problems.append("%s (proto %d) is missing although the highest protocol is %d"
                            % (op["name"], op["proto"], info["highest"]))
    notes = "%d opcodes match" % (len(info["ops"]) - len(problems))
    if absent:
        notes += ", %d newer absent" % len(absent)
    if adjusted:
        notes += ", %d py2 spellings mapped" % adjusted
    return problems, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brine", required=True, help="path to the brine executable")
    ap.add_argument("--verbose", action="store_true", help="list the interpreters considered")
    args = ap.parse_args()

    try:
        table, table_problems = brine_table(args.brine)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        print("cannot read `%s opcodes --json`: %s" % (args.brine, e))
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for problem in table_problems:
        print("FAIL brine table: %s" % problem)
        failed += 1

    pythons = candidates()
    if args.verbose:
        print("interpreters: %s" % ", ".join(pythons))
    executables = set()
    for python in pythons:
        try:
            info = query(python)
        except (OSError, RuntimeError, ValueError) as e:
            print("FAIL %s: cannot query pickletools: %s" % (python, e))
            failed += 1
            continue
        real_exe = os.path.realpath(info.get("executable") or python)
        if real_exe in executables:
            continue  # a wrapper for an interpreter already checked
        executables.add(real_exe)
        problems, notes = compare(table, info)
        label = "%s (%s %s, highest protocol %d)" % (python, info["impl"], info["version"],
                                                     info["highest"])
        if problems:
            failed += 1
            print("FAIL %s: %d problem(s)" % (label, len(problems)))
            for p in problems:
                print("    " + p)
        else:
            passed += 1
            print("ok   %s: %s" % (label, notes))
    if not pythons:
        print("no Python interpreter found")
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
