#!/usr/bin/env python3
"""Run one corpus group against libpkl and compare with its manifest.

    run_corpus.py [--brine BUILD/brine] [--corpus DIR] GROUP

Loads every case of corpus/manifest/GROUP.json with one
``brine load --batch --quiet FILE...`` and compares each canonical text
(docs/corpus-format.md): `valid` and `invalid` cases must equal the primary
expectation (`expected.text`: the canonical body, or the error class);
`acceptable` cases must equal one of the recorded `answers` (or
`error resource-limit` when the case is flagged `oracle-memory-limit`).
Traces are not compared here (`brine load` prints none).  Each failure is
printed with its case id and a unified diff (expected first, libpkl
second).  The last line is exactly ``N passed, M failed``; exit 0 only when
M == 0 and N > 0.  --brine defaults to $BRINE_BIN.

Python 3.6+, standard library only.
"""

import argparse
import difflib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from batch_output import parse_batch  # noqa: E402
REPO = os.path.dirname(os.path.dirname(HERE))
HEADER = "brine-canonical 1 raw\n"


def load_all(brine, paths, timeout):
    """{path: text or None}; a batch that dies part-way is resumed one
    file per process so a crash names its input."""
    got = {}
    try:
        p = subprocess.run([brine, "load", "--batch", "--quiet"] + paths,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=timeout)
        docs = parse_batch(p.stdout)
    except subprocess.TimeoutExpired:
        docs = {}
    for path in paths:
        # brine names files as given; accept the base name too
        text = docs.get(path, docs.get(os.path.basename(path)))
        if text is None:
            try:
                p = subprocess.run([brine, "load", path],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, timeout=60)
                text = p.stdout.decode("utf-8", "replace") \
                    if p.returncode in (0, 1) else \
                    "<brine: exit status %d>\n" % p.returncode
            except subprocess.TimeoutExpired:
                text = "<brine: timed out>\n"
        got[path] = text
    return got


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("group")
    ap.add_argument("--brine", default=os.environ.get("BRINE_BIN"))
    ap.add_argument("--corpus", default=os.path.join(REPO, "corpus"))
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    if not args.brine:
        ap.error("give --brine or set BRINE_BIN")
    mpath = os.path.join(args.corpus, "manifest", args.group + ".json")
    with open(mpath, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != 1:
        print("%s: not a format 1 manifest" % mpath)
        print("0 passed, 1 failed")
        return 1
    cases = doc["cases"]
    paths = [os.path.join(args.corpus, "cases", c["file"]) for c in cases]
    got = load_all(args.brine, paths, args.timeout)
    passed = failed = 0
    for c, path in zip(cases, paths):
        text = got[path]
        body = text[len(HEADER):] if text.startswith(HEADER) else \
            "<no canonical header>\n" + text
        want = [c["expected"]["text"]]
        if c["result"] == "acceptable":
            want = sorted(set(a["text"] for a in c["answers"]))
        if "oracle-memory-limit" in c.get("flags", []):
            want.append("error resource-limit\n")
        if body in want:
            passed += 1
            continue
        failed += 1
        print("FAIL %s/%s (%s, protocol %s): %s" % (
            args.group, c["id"], c["result"], c.get("protocol"),
            c["description"]))
        for w in want:
            sys.stdout.writelines(difflib.unified_diff(
                w.splitlines(True), body.splitlines(True),
                "expected", "libpkl", n=2))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
