#!/usr/bin/env python3
"""Writes a `brine fuzz`-style findings folder for the report tests.

    make_findings_fixture.py --brine BUILD/brine --python PY --corpus DIR --out DIR

The folder has the layout reports/build.py reads (reports/README.md):
DIR/<id>/{meta.json, input.pkl, min.pkl, dis.txt, pkl.txt, cpython.txt}.
No text in it is written by hand; the answers are real:

* quirks: corpus cases whose recorded oracles disagree (their manifests'
  `answers`): the primary oracle's answer as pkl.txt (libpkl gives it:
  conformance.corpus.* proves that), another oracle's as cpython.txt;
* divergences: a few pickles answered by libpkl (`brine serve`) and by
  tests/oracle/broken_unpickler.py through the generic adapter (standing in
  for CPython: it loads BININT1 one too high), one of them with hostile
  names (`<script>` in a global) and a finding folder whose meta.json has
  hostile fields;
* one folder with a meta.json that is not JSON and no other file, which the
  builder must report without failing.

Signatures follow harness/compare.h in shape (decision.kind.kind.opcode);
folder names are the FNV-1a 64 of the signature in hex. min.pkl is the
input itself (no minimizer here). Python 3.6+, standard library only.
"""

import argparse
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HEADER = "brine-canonical 1 raw\n"

# Inputs for the libpkl-vs-broken divergences: BININT1 in a global call
# whose names are markup, and two plain ones with distinct signatures.
DIVERGENT = [
    ("hostile-global", b"\x80\x02c<script>\nalert\nK\x05\x85R."),
    ("binint1-in-list", b"\x80\x02]q\x00(K\x01K\x02e."),
    ("binint1-alone", b"\x80\x04K\x07."),
]


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for b in bytearray(text.encode("utf-8")):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def _read_exact(stream, n):
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise RuntimeError("adapter closed its stdout")
        buf += chunk
    return buf


def adapter_answers(argv, env, inputs):
    """The responses of a persistent-mode adapter to each input, in order."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        _read_exact(p.stdout, struct.unpack("<I", _read_exact(p.stdout, 4))[0])  # hello
        out = []
        for data in inputs:
            p.stdin.write(struct.pack("<I", len(data)) + data)
            p.stdin.flush()
            n = struct.unpack("<I", _read_exact(p.stdout, 4))[0]
            out.append(_read_exact(p.stdout, n).decode("utf-8"))
        p.stdin.close()
        p.wait(timeout=30)
        return out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def split(answer):
    doc, _, trace = answer.partition("--- trace\n")
    return doc, trace


def kind(line):
    if line is None:
        return "end"
    word = line.strip().split(" ")[0]
    if word.startswith("."):
        return "slot-" + word[1:]
    return word or "blank"


def signature(pkl_answer, py_answer, dis_text):
    """decision.pkl-kind.cpython-kind.opcode, as harness/compare.h shapes it."""
    pd, pt = split(pkl_answer)
    yd, yt = split(py_answer)
    pe = pd[len(HEADER):].startswith("error ")
    ye = yd[len(HEADER):].startswith("error ")
    if pd == yd:
        decision, a, b = "trace-only", pt.split("\n"), yt.split("\n")
    else:
        decision = ("both-reject-different-class" if pe and ye else "pkl-rejects" if pe
                    else "cpython-rejects" if ye else "both-load")
        a, b = pd.split("\n"), yd.split("\n")
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    ka = kind(a[k] if k < len(a) else None)
    kb = kind(b[k] if k < len(b) else None)
    if ka == "error":
        ka = "error-" + a[k].split(" ")[1]
    if kb == "error":
        kb = "error-" + b[k].split(" ")[1]
    ops = [line.split()[2] for line in dis_text.split("\n")
           if ":" in line and len(line.split()) > 2 and line.split()[0].endswith(":")]
    ops = [o for o in ops if o != "STOP"]
    return "%s.%s.%s.%s" % (decision, ka, kb, ops[-1] if ops else "none")


def dis(brine, path):
    p = subprocess.Popen([brine, "dis", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = p.communicate(timeout=30)
    return out.decode("utf-8", "replace")


def write_finding(out, sig, meta, data, pkl_answer, py_answer, brine, folder=None):
    folder = folder or fnv1a64(sig)
    d = os.path.join(out, folder)
    if os.path.isdir(d):
        with open(os.path.join(d, "meta.json"), encoding="utf-8") as f:
            old = json.load(f)
        old["count"] += 1
        meta = old
    else:
        os.makedirs(d)
        for name, blob in (("input.pkl", data), ("min.pkl", data)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(blob)
        for name, text in (("pkl.txt", pkl_answer), ("cpython.txt", py_answer),
                           ("dis.txt", dis(brine, os.path.join(d, "min.pkl")))):
            with open(os.path.join(d, name), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        meta = dict(meta, id=folder, signature=sig, count=1)
    with open(os.path.join(d, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, sort_keys=True, indent=1)
    return folder


def corpus_quirks(corpus, limit):
    """[(case id, bytes, primary answer, other answer, who)] of disagreeing oracles."""
    out = []
    mdir = os.path.join(corpus, "manifest")
    for name in sorted(os.listdir(mdir)):
        with open(os.path.join(mdir, name), encoding="utf-8") as f:
            man = json.load(f)
        primary = man["primary"]
        for c in man["cases"]:
            answers = c.get("answers") or []
            prim = [a for a in answers if primary in a["by"]]
            other = [a for a in answers if primary not in a["by"] and "cause" not in a]
            if not prim or not other:
                continue
            with open(os.path.join(corpus, "cases", c["file"]), "rb") as f:
                data = f.read()
            full = lambda a: HEADER + a["text"] + "--- trace\n" + a["trace"] + (
                "\n" if a["trace"] and not a["trace"].endswith("\n") else "")
            out.append(("%s/%s" % (man["group"], c["id"]), data, full(prim[0]), full(other[0]),
                        (primary, other[0]["by"])))
            if len(out) >= limit:
                return out
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brine", required=True)
    ap.add_argument("--python", required=True, help="runs the broken unpickler's adapter")
    ap.add_argument("--corpus", default=os.path.join(REPO, "corpus"))
    ap.add_argument("--quirks", type=int, default=4)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out)
    made = []

    for n, (case, data, pkl_answer, py_answer, who) in enumerate(corpus_quirks(args.corpus, args.quirks)):
        tmp = os.path.join(args.out, ".tmp.pkl")
        with open(tmp, "wb") as f:
            f.write(data)
        sig = signature(pkl_answer, py_answer, dis(args.brine, tmp))
        os.remove(tmp)
        meta = {"explanation": "corpus case %s: %s gave another answer than %s" % (case, ", ".join(who[1]), who[0]),
                "classification": "cpython-quirk", "first_seen": "2024-01-01T00:00:%02dZ" % n,
                "target": "fixture: corpus manifest answers"}
        made.append(write_finding(args.out, sig, meta, data, pkl_answer, py_answer, args.brine))

    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "oracle"), PYTHONDONTWRITEBYTECODE="1")
    inputs = [d for _, d in DIVERGENT]
    pkl = adapter_answers([args.brine, "serve"], env, inputs)
    broken = adapter_answers(
        [args.python, "-m", "brine_oracle.adapt_main", "--path", os.path.join(REPO, "tests", "oracle"),
         "broken_unpickler:BrokenUnpickler"], env, inputs)
    for n, ((name, data), a, b) in enumerate(zip(DIVERGENT, pkl, broken)):
        if a == b:
            raise SystemExit("%s: libpkl and the broken unpickler agree; no divergence to record" % name)
        tmp = os.path.join(args.out, ".tmp.pkl")
        with open(tmp, "wb") as f:
            f.write(data)
        sig = signature(a, b, dis(args.brine, tmp))
        os.remove(tmp)
        meta = {"explanation": "%s: the broken unpickler (tests/oracle/broken_unpickler.py) loads "
                               "BININT1 one too high" % name,
                "classification": "unexplained", "first_seen": "2024-01-02T00:00:%02dZ" % n,
                "target": "fixture: libpkl vs broken_unpickler"}
        made.append(write_finding(args.out, sig, meta, data, a, b, args.brine))

    # hostile meta fields, a folder name with markup, an unknown classification
    name, data = DIVERGENT[0]
    hostile = '"><img src=x onerror=alert(1)>'
    meta = {"explanation": "<script>alert('explanation')</script> & done",
            "classification": "<b>not-a-class</b>", "first_seen": "<i>then</i>",
            "target": "<svg onload=alert(1)>"}
    made.append(write_finding(args.out, "both-load.<script>.int.BININT1", meta, data, pkl[0],
                              broken[0], args.brine, folder=hostile))

    bad = os.path.join(args.out, "broken-meta")
    os.makedirs(bad)
    with open(os.path.join(bad, "meta.json"), "w") as f:
        f.write("{not json")
    made.append("broken-meta")
    print("\n".join(sorted(set(made))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
