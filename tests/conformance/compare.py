#!/usr/bin/env python3
"""Compare libpkl (the `brine load` CLI) against the CPython oracle.

    compare.py --brine BUILD/brine --python PY DIR
               [--unpickler c|py] [--jobs N] [--max-diff-lines N] [--per-file]

Every ``*.pkl`` in DIR is loaded by ``brine load`` and by the oracle
(``PY -m brine_oracle load --batch DIR`` with PYTHONPATH set to the
repository's ``oracle/``); the two canonical texts must be byte-identical.
Each mismatch is printed with the file name and a unified diff (oracle
first, brine second).  The last line is exactly ``N passed, M failed``; the
exit status is 0 only when M == 0 and N > 0 (comparing nothing fails).

Speed: when ``brine --help`` advertises ``load --batch``, one brine process
handles the whole directory; otherwise (or with --per-file) one process per
file, N at a time.  If a batch process dies part-way (a crash is a finding),
the files it did not report are rerun one per process so the crash is
attributed to its input.

Runs on Python 3.6+; no third-party modules.
"""

import argparse
import difflib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from batch_output import parse_batch  # noqa: E402
REPO = os.path.dirname(os.path.dirname(HERE))
ORACLE_PATH = os.path.join(REPO, "oracle")

ERROR_PREFIX = "brine-canonical 1 raw\nerror "


def describe_status(rc):
    if rc is None:
        return "timed out"
    if rc < 0:
        return "killed by signal %d" % -rc
    return "exit status %d" % rc


def run(cmd, env=None, timeout=None):
    """(returncode or None on timeout, stdout bytes, stderr bytes)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or b"", e.stderr or b""


class Side(object):
    """One implementation: how to get canonical texts out of it."""

    def __init__(self, label, single_cmd, batch_cmd, env=None, timeout=120,
                 jobs=8):
        self.label = label
        self.single_cmd = single_cmd      # fn(path) -> argv
        self.batch_cmd = batch_cmd        # fn(dir) -> argv, or None
        self.env = env
        self.timeout = timeout
        self.jobs = jobs
        self.notes = {}                   # name -> problem (crash, exit code)

    def one(self, path):
        name = os.path.basename(path)
        rc, out, err = run(self.single_cmd(path), self.env, self.timeout)
        text = out.decode("ascii", "replace")
        if rc not in (0, 1):
            self.notes[name] = "%s %s (%s)%s" % (
                self.label, "crashed" if rc is None or rc < 0 else "failed",
                describe_status(rc),
                (": " + err.decode("utf-8", "replace").strip()[-300:])
                if err else "")
            return name, None
        is_error = text.startswith(ERROR_PREFIX)
        if (rc == 0) == is_error:
            self.notes[name] = ("%s exit status %d does not match its "
                                "document (%s)" % (self.label, rc,
                                                   "error" if is_error
                                                   else "loaded"))
        return name, text

    def texts(self, directory, names):
        got = {}
        if self.batch_cmd is not None:
            rc, out, err = run(self.batch_cmd(directory), self.env, None)
            got = parse_batch(out)
            if rc != 0:
                sys.stderr.write("compare: %s batch run ended with %s; "
                                 "rerunning the files it did not report one "
                                 "by one\n" % (self.label, describe_status(rc)))
                # The last document may be cut short by the crash.
                if got:
                    last = sorted(got)[-1]
                    del got[last]
        missing = [n for n in names if n not in got]
        if missing:
            with ThreadPoolExecutor(max_workers=self.jobs) as ex:
                for name, text in ex.map(
                        self.one, [os.path.join(directory, n)
                                   for n in missing]):
                    if text is not None:
                        got[name] = text
        return got


def brine_has_batch(brine):
    rc, out, err = run([brine, "--help"], timeout=30)
    return b"--batch" in out + err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brine", required=True, help="path to the brine CLI")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that runs the oracle")
    ap.add_argument("--unpickler", choices=("c", "py"), default="c")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 4)
    ap.add_argument("--max-diff-lines", type=int, default=80)
    ap.add_argument("--per-file", action="store_true",
                    help="one process per file even if batch mode exists")
    ap.add_argument("--memory-limit", type=int, default=4096, metavar="MB",
                    help="oracle address-space limit (0: none)")
    ap.add_argument("dir")
    args = ap.parse_args(argv)

    try:
        names = sorted(n for n in os.listdir(args.dir) if n.endswith(".pkl")
                       and os.path.isfile(os.path.join(args.dir, n)))
    except OSError as e:
        sys.stderr.write("compare: %s\n" % e)
        print("0 passed, 0 failed")
        return 1

    env = dict(os.environ)
    env["PYTHONPATH"] = ORACLE_PATH + (os.pathsep + env["PYTHONPATH"]
                                       if env.get("PYTHONPATH") else "")
    ocommon = ["--unpickler", args.unpickler, "--quiet"]
    if args.memory_limit:
        ocommon += ["--memory-limit", str(args.memory_limit)]
    oracle = Side(
        "oracle",
        lambda p: [args.python, "-m", "brine_oracle", "load", p] + ocommon,
        None if args.per_file else
        (lambda d: [args.python, "-m", "brine_oracle", "load", "--batch", d]
         + ocommon),
        env=env, jobs=args.jobs)
    batch = not args.per_file and brine_has_batch(args.brine)
    brine = Side(
        "brine",
        lambda p: [args.brine, "load", "--quiet", p],
        (lambda d: [args.brine, "load", "--batch", "--quiet", d])
        if batch else None,
        jobs=args.jobs)

    with ThreadPoolExecutor(max_workers=2) as ex:
        f_oracle = ex.submit(oracle.texts, args.dir, names)
        f_brine = ex.submit(brine.texts, args.dir, names)
        o_texts = f_oracle.result()
        b_texts = f_brine.result()

    passed = failed = 0
    for n in names:
        o = o_texts.get(n)
        b = b_texts.get(n)
        problems = [side.notes[n] for side in (oracle, brine)
                    if n in side.notes]
        if o is not None and o == b and not problems:
            passed += 1
            continue
        failed += 1
        print("MISMATCH %s" % n)
        for p in problems:
            print("  %s" % p)
        if o is None or b is None:
            print("  no canonical text from %s" % ("the oracle" if o is None
                                                   else "brine"))
            continue
        if o != b:
            diff = list(difflib.unified_diff(
                o.splitlines(True), b.splitlines(True),
                "oracle/" + n, "brine/" + n, n=3))
            for line in diff[:args.max_diff_lines]:
                sys.stdout.write(line if line.endswith("\n") else line + "\n")
            if len(diff) > args.max_diff_lines:
                print("  ... %d more diff lines" %
                      (len(diff) - args.max_diff_lines))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
