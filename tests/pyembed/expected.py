"""What the oracle worker answers for every corpus case, for test_pyembed.

    python expected.py --oracle DIR --corpus DIR --name cpython-3.11-c \
                       --version 3.11.2 [--unpickler c]
    python expected.py --oracle DIR --cases FILE --name ... --version ...

--cases FILE: the cases are frames (name, pickle) in FILE instead of the
corpus, all answered by a live worker.

Run by the interpreter the test embeds. For each case it writes four frames
(u32 little-endian length + bytes) to stdout: the case name, the pickle,
the canonical document and the trace lines.

Where the answer comes from: a manifest's `expected` when this interpreter
is that manifest's primary oracle (same adapter name, same exact version);
otherwise (another version, or a primary answer recorded as a memory-limit
artefact) a live `python -m brine_oracle serve` of this very interpreter.
A summary goes to stderr. Exit status 1 when a live case did not get an
answer (crash, timeout): such a case must not be silently dropped.
"""

import argparse
import glob
import json
import os
import struct
import sys

HEADER = "brine-canonical 1 raw\n"


def frames(out, *parts):
    for p in parts:
        if isinstance(p, str):
            p = p.encode("ascii")
        out.write(struct.pack("<I", len(p)))
        out.write(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--corpus")
    ap.add_argument("--cases")
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--unpickler", default="c")
    a = ap.parse_args()
    sys.dont_write_bytecode = True   # no __pycache__ in the source tree
    sys.path.insert(0, a.oracle)
    os.environ["PYTHONPATH"] = a.oracle
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    from brine_oracle.client import Adapter

    cases = []   # [name, data, text or None, trace or None]
    from_manifest = 0
    if a.cases:
        with open(a.cases, "rb") as f:
            raw = f.read()
        pos, parts = 0, []
        while pos < len(raw):
            n = struct.unpack_from("<I", raw, pos)[0]
            parts.append(raw[pos + 4:pos + 4 + n])
            pos += 4 + n
        for i in range(0, len(parts) - 1, 2):
            cases.append([parts[i].decode("ascii"), parts[i + 1], None, None])
    manifests = [] if a.cases else \
        sorted(glob.glob(os.path.join(a.corpus, "manifest", "*.json")))
    for path in manifests:
        with open(path) as f:
            m = json.load(f)
        primary = (m.get("primary") == a.name
                   and m.get("oracles", {}).get(a.name) == a.version)
        for c in m["cases"]:
            with open(os.path.join(a.corpus, "cases", c["file"]), "rb") as f:
                data = f.read()
            artefact = any(x.get("cause") == "memory-limit" and a.name in x["by"]
                           for x in c.get("answers", []))
            if primary and not artefact:
                cases.append([m["group"] + "/" + c["id"], data,
                              HEADER + c["expected"]["text"],
                              c["expected"]["trace"]])
                from_manifest += 1
            else:
                cases.append([m["group"] + "/" + c["id"], data, None, None])
    live = [c for c in cases if c[2] is None]
    failed = 0
    if live:
        argv = [sys.executable, "-m", "brine_oracle", "serve", "--unpickler",
                a.unpickler]
        with Adapter(argv, timeout=120.0) as ad:
            if ad.name != a.name or ad.version != a.version:
                sys.stderr.write("expected.py: the worker is %s %s, not %s %s\n"
                                 % (ad.name, ad.version, a.name, a.version))
                return 1
            for c, r in zip(live, ad.run_many([c[1] for c in live], window=32)):
                if r.status != "ok" or r.trace is None:
                    sys.stderr.write("expected.py: %s: %s %s\n"
                                     % (c[0], r.status, r.detail))
                    failed += 1
                    continue
                c[2], c[3] = r.text, r.trace
    out = sys.stdout.buffer
    for c in cases:
        if c[2] is not None:
            frames(out, c[0], c[1], c[2], c[3])
    out.flush()
    sys.stderr.write("expected.py: %d cases, %d from manifests, %d from a live "
                     "worker, %d without an answer\n"
                     % (len(cases), from_manifest, len(live), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
