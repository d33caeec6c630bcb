#!/usr/bin/env python3
"""Feed every canonical text brine has to tests/canon/canon_roundtrip.

    roundtrip_corpus.py --driver CANON_ROUNDTRIP --brine BRINE --src SRC --work DIR

Collects, in `== name` batch files under DIR:
  - every `expected.text` and `answers[].text` of corpus/manifest/*.json
    (with the manifest's `canonical` header line put back);
  - `brine load --batch` of every directory under corpus/ that holds files
    (corpus/cases/<group>, corpus/sample, ...);
  - `brine load` of streams from the generator (`brine gen`, valid and
    one-fault, protocols 0-5);
  - `brine load` of 1,000,000-deep nested list, tuple and dict pickles,
    built here (the reader must not recurse);
then runs the driver on them (it checks read -> print gives the same bytes,
and that the value level exists and is stable). Exit status: the driver's,
or 2 when something could not be collected.

Runs on Python 3.6+, standard library only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

DEEP = 1000000


def manifest_docs(src, out):
    n = 0
    mdir = os.path.join(src, "corpus", "manifest")
    with open(out, "w") as w:
        for fn in sorted(os.listdir(mdir)):
            if not fn.endswith(".json"):
                continue
            with open(os.path.join(mdir, fn)) as f:
                m = json.load(f)
            header = m["canonical"] + "\n"
            for case in m["cases"]:
                texts = [("expected", case["expected"]["text"])]
                for i, a in enumerate(case.get("answers", [])):
                    texts.append(("answer%d" % i, a["text"]))
                for tag, text in texts:
                    w.write("== %s/%s/%s\n%s%s" % (fn, case["id"], tag, header, text))
                    n += 1
    return n


def brine_batch(brine, paths, out):
    with open(out, "wb") as w:
        r = subprocess.run([brine, "load", "--batch", "--quiet"] + paths, stdout=w)
    if r.returncode not in (0, 1):
        raise SystemExit("brine load --batch failed (%d) on %s" % (r.returncode, paths))


def corpus_dirs(src):
    root = os.path.join(src, "corpus")
    dirs = []
    for d, _sub, files in os.walk(root):
        if "tools" in d.split(os.sep) or d.endswith("manifest"):
            continue
        if any(os.path.isfile(os.path.join(d, f)) and not f.endswith((".md", ".json", ".dict", ".py"))
               for f in files):
            dirs.append(d)
    return sorted(dirs)


def deep_pickles(work):
    d = os.path.join(work, "deep")
    os.makedirs(d, exist_ok=True)
    # [[[...]]]: N empty lists, then N-1 APPENDs
    with open(os.path.join(d, "deep-list.pkl"), "wb") as f:
        f.write(b"\x80\x02" + b"]" * DEEP + b"a" * (DEEP - 1) + b".")
    # ((((),),),): the empty tuple, then N TUPLE1
    with open(os.path.join(d, "deep-tuple.pkl"), "wb") as f:
        f.write(b"\x80\x02)" + b"\x85" * DEEP + b".")
    # {0: {0: ... {}}}: N dicts each with key 0 pending, the innermost, N SETITEMs
    with open(os.path.join(d, "deep-dict.pkl"), "wb") as f:
        f.write(b"\x80\x02" + b"}K\x00" * DEEP + b"}" + b"s" * DEEP + b".")
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--brine", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    files = []

    out = os.path.join(a.work, "manifests.txt")
    print("manifest texts: %d" % manifest_docs(a.src, out))
    files.append(out)

    dirs = corpus_dirs(a.src)
    out = os.path.join(a.work, "corpus-files.txt")
    brine_batch(a.brine, dirs, out)
    print("corpus directories loaded by brine: %d" % len(dirs))
    files.append(out)

    gdir = os.path.join(a.work, "gen")
    if os.path.isdir(gdir):
        shutil.rmtree(gdir)
    os.makedirs(gdir)
    for p in range(6):
        for mode, seed in (("valid", 100 + p), ("invalid", 200 + p)):
            r = subprocess.run([a.brine, "gen", "--seed", str(seed), "--count", "100",
                                "--protocol", str(p), "--mode", mode, "--out", gdir],
                               stdout=subprocess.DEVNULL)
            if r.returncode != 0:
                raise SystemExit("brine gen failed (%d)" % r.returncode)
    out = os.path.join(a.work, "gen.txt")
    brine_batch(a.brine, [gdir], out)
    files.append(out)

    out = os.path.join(a.work, "deep.txt")
    brine_batch(a.brine, [deep_pickles(a.work)], out)
    files.append(out)

    sys.stdout.flush()
    return subprocess.run([a.driver] + files).returncode


if __name__ == "__main__":
    sys.exit(main())
