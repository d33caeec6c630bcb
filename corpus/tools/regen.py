#!/usr/bin/env python3
"""Regenerate (or check) the expected outputs of brine's data-driven corpus.

    regen.py [--corpus DIR] [--python PY ...] [GROUP ...]
        re-run every case of the groups (default: all) through every oracle
        and rewrite the manifests' derived fields (result, expected, by,
        answers, derived flags), corpus/FLAGS.md and corpus/DIVERGENCES.md.
    regen.py --check [--corpus DIR] [--python PY ...] [GROUP ...]
        recompute and compare; exit 1 listing every case whose stored
        expectation differs (nothing is written).
    regen.py --add GROUP --from DIR [--description TEXT] [--intent invalid]
             [--flag FLAG ...]
        import every *.pkl of DIR into GROUP (id = file name without .pkl),
        then regenerate that group.

The format is docs/corpus-format.md (v1).  Oracles: for every CPython 3.6+
found by brine_oracle.impls (or each --python interpreter), the adapter
``python -m brine_oracle serve --unpickler c|py --memory-limit 2048`` run
through brine_oracle.client.Adapter (restart, timeout).  Nothing read from a
pickle is ever loaded in this process.

Rules (see the doc for the reasons):
* the primary oracle is the newest CPython's C unpickler; `expected` is its
  answer;
* `result` is derived: valid (every oracle loads it, same text and trace),
  invalid (every oracle rejects it, same class and trace), acceptable
  (anything else: `answers` lists each distinct answer and who gave it);
* an `error resource-limit` answer is re-run with --confirm-memory-limit MB;
  when the answer then changes, the limit caused it: it is recorded with
  "cause": "memory-limit", flagged `oracle-memory-limit`, and takes no part
  in deciding the result;
* a case with "intent": "invalid" that any oracle loads is a bad case: the
  tool fails;
* oracles recorded in a manifest but not available here keep their stored
  answers (--check says which were not re-derived); regenerating needs the
  primary, --check needs at least one recorded oracle.

Python 3.6+, standard library only.
"""

import argparse
import json
import os
import re
import shutil
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.dirname(HERE)
REPO = os.path.dirname(CORPUS)
ORACLE_DIR = os.path.join(REPO, "oracle")
if ORACLE_DIR not in sys.path:
    sys.path.insert(0, ORACLE_DIR)

from brine_oracle import impls  # noqa: E402
from brine_oracle.client import Adapter, OK  # noqa: E402

FORMAT = 1
HEADER = "brine-canonical 1 raw\n"
MEMORY_LIMIT_MB = 2048
CONFIRM_MEMORY_LIMIT_MB = 8192
RESOURCE_LIMIT = "error resource-limit\n"
RESULTS = ("valid", "invalid", "acceptable")
# Flags the tool owns: removed and re-derived on every run.
DERIVED_FLAGS = ("c-py-differ", "versions-differ", "oracle-memory-limit",
                 "trace-differs")
# docs/canonical-form.md section 1: the fault flags of invalid cases.
ERROR_CLASSES = ("truncated", "bad-opcode", "stack-underflow",
                 "mark-missing", "memo-missing", "bad-argument",
                 "unsupported-protocol", "type-error", "unknown-extension",
                 "no-buffers", "resource-limit")
AUTHOR_KEYS = ("id", "file", "description", "protocol", "intent", "flags")
_ID_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME_RX = re.compile(r"^(cpython|pypy)-(\d+)\.(\d+)-(c|py)$")


class Fail(Exception):
    pass


# --------------------------------------------------------------------------
# oracles

def oracle_key(name):
    """Sort key: implementation, version, then c before py."""
    m = _NAME_RX.match(name)
    if not m:
        return (9, 0, 0, name)
    return ({"cpython": 0, "pypy": 1}[m.group(1)], int(m.group(2)),
            int(m.group(3)), m.group(4))


class Oracle(object):
    def __init__(self, name, version, python, unpickler, env):
        self.name = name
        self.version = version
        self.python = python
        self.unpickler = unpickler
        self.env = env

    def argv(self, memory_limit):
        return [self.python, "-m", "brine_oracle", "serve", "--unpickler",
                self.unpickler, "--memory-limit", str(memory_limit)]


def find_oracles(pythons=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ORACLE_DIR
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = []
    if pythons:
        for py in pythons:
            info = impls.probe(py)
            if info is None or info["impl"] != "CPython" or \
                    info["version_tuple"] < (3, 6):
                raise Fail("%s: not a CPython 3.6+" % py)
            xy = "%d.%d" % info["version_tuple"][:2]
            for u in ("c", "py"):
                if u == "c" and not info["c_pickle"]:
                    continue
                out.append(Oracle("cpython-%s-%s" % (xy, u), info["full"],
                                  os.path.abspath(py), u, env))
    else:
        for e in impls.discover(brine=""):
            if e["implementation"] != "cpython" or not e["servable"]:
                continue
            if oracle_key(e["name"])[1] < 3:
                continue   # 2.7 is served with py2 semantics: not an oracle
            out.append(Oracle(e["name"], e["version"], e["python"],
                              e["unpickler"], env))
    seen = {}
    for o in out:
        seen.setdefault(o.name, o)
    return sorted(seen.values(), key=lambda o: oracle_key(o.name))


def max_protocol(name):
    """The highest pickle protocol the oracle's interpreter knows."""
    m = _NAME_RX.match(name)
    if not m:
        return 5
    v = (int(m.group(2)), int(m.group(3)))
    return 5 if v >= (3, 8) else 4 if v >= (3, 4) else 3


def in_scope(name, protocol):
    """Whether an oracle answers a case of this protocol: interpreters that
    predate the protocol are not asked (a protocol 5 case is no
    disagreement with 3.7, which cannot know it).  Cases above 5 are
    answered by everyone."""
    return protocol > 5 or max_protocol(name) >= protocol


def primary_of(oracles):
    cs = [o for o in oracles if o.name.startswith("cpython-")
          and o.name.endswith("-c")]
    if not cs:
        raise Fail("no CPython with a C unpickler found: no primary oracle")
    return cs[-1].name


def run_oracle(oracle, datas, memory_limit, timeout):
    """[(body, trace)] for each bytes object, in order."""
    answers = []
    with Adapter(oracle.argv(memory_limit), timeout=timeout, env=oracle.env,
                 stderr=None) as a:
        if "trace" not in a.features:
            raise Fail("%s: adapter has no trace feature" % oracle.name)
        for i, r in enumerate(a.run_many(datas, window=32)):
            if r.status != OK:
                raise Fail("%s: case #%d: %s (%s)"
                           % (oracle.name, i, r.status, r.detail))
            if r.trace is None:
                raise Fail("%s: case #%d: response without a trace"
                           % (oracle.name, i))
            if not r.text.startswith(HEADER):
                raise Fail("%s: case #%d: no v1 header: %r"
                           % (oracle.name, i, r.text[:80]))
            answers.append((r.text[len(HEADER):], r.trace))
    return answers


def run_all(oracles, datas, timeout, confirm_mb, jobs):
    """{oracle name: [(body, trace, cause)]} for every oracle."""
    results = {}
    errors = []
    lock = threading.Lock()
    todo = list(oracles)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                o = todo.pop(0)
            try:
                ans = run_oracle(o, datas, MEMORY_LIMIT_MB, timeout)
                limited = [i for i, (b, _) in enumerate(ans)
                           if b == RESOURCE_LIMIT]
                out = [(b, t, None) for b, t in ans]
                if limited and confirm_mb:
                    again = run_oracle(o, [datas[i] for i in limited],
                                       confirm_mb, timeout)
                    for i, (b, t) in zip(limited, again):
                        if b != RESOURCE_LIMIT:
                            body, trace, _ = out[i]
                            out[i] = (body, trace, "memory-limit")
                with lock:
                    results[o.name] = out
            except Exception as e:  # noqa: B902 - reported, then fail
                with lock:
                    errors.append("%s: %s" % (o.name, e))

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Fail("oracle failures:\n  " + "\n  ".join(errors))
    return results


# --------------------------------------------------------------------------
# manifests

def manifest_path(corpus, group):
    return os.path.join(corpus, "manifest", group + ".json")


def dump_json(obj):
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=True,
                      separators=(",", ": ")) + "\n"


def _compact(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=True,
                      separators=(", ", ": "))


def render_doc(doc):
    """A manifest as text: the header keys and each case's keys one per
    line (sorted), values compact; deterministic."""
    out = ["{"]
    keys = sorted(k for k in doc if k != "cases")
    for k in keys:
        out.append(" %s: %s," % (_compact(k), _compact(doc[k])))
    out.append(' "cases": [')
    cases = doc["cases"]
    for i, c in enumerate(cases):
        out.append("  {")
        ck = sorted(c)
        for j, k in enumerate(ck):
            out.append("   %s: %s%s" % (_compact(k), _compact(c[k]),
                                        "," if j < len(ck) - 1 else ""))
        out.append("  }" + ("," if i < len(cases) - 1 else ""))
    out.append(" ]")
    out.append("}")
    return "\n".join(out) + "\n"


def load_flags(corpus):
    path = os.path.join(corpus, "flags.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise Fail("%s: format is not %d" % (path, FORMAT))
    for name, spec in doc["flags"].items():
        for k in ("bugType", "effect"):
            if not spec.get(k):
                raise Fail("flags.json: %s has no %s" % (name, k))
    return doc


def flags_markdown(doc):
    lines = ["# Corpus flags",
             "",
             "Generated from `corpus/flags.json` by `corpus/tools/regen.py`;"
             " edit the JSON, not this file.",
             "",
             "| flag | set by | bug type | effect |",
             "|---|---|---|---|"]
    for name in sorted(doc["flags"]):
        spec = doc["flags"][name]
        by = "regen.py" if name in DERIVED_FLAGS else "author"
        lines.append("| `%s` | %s | %s | %s |" % (
            name, by, spec["bugType"], spec["effect"].replace("|", "\\|")))
    return "\n".join(lines) + "\n"


def _first_line(text):
    line = text.split("\n", 1)[0]
    return line if len(line) <= 70 else line[:67] + "..."


def divergences_markdown(manifests):
    """Every case on which CPython's unpicklers or versions disagree, and
    who said what (issue 3: the C/Python divergences are real CPython
    behaviour, kept as `acceptable`)."""
    lines = ["# Where CPython disagrees with itself",
             "",
             "Generated from the manifests by `corpus/tools/regen.py`; do not "
             "edit. Every `acceptable` case of the corpus: CPython's C and "
             "Python unpicklers (`c-py-differ`), or its versions "
             "(`versions-differ`), or only their safety traces "
             "(`trace-differs`), gave different answers. Each answer is "
             "shown by its first line (the error class, or the root node) "
             "and its trace length; the oracles that gave it follow.",
             "", None, ""]
    total = 0
    for group in sorted(manifests):
        doc = manifests[group]
        rows = [c for c in doc["cases"] if c["result"] == "acceptable"]
        if not rows:
            continue
        total += len(rows)
        lines += ["## %s (%d)" % (group, len(rows)), "",
                  "| case | flags | answers |", "|---|---|---|"]
        for c in rows:
            flags = " ".join("`%s`" % f for f in c.get("flags", [])
                             if f in DERIVED_FLAGS)
            answers = []
            for a in c.get("answers", []):
                trace = a.get("trace", "")
                n = trace.count("\n")
                answers.append("`%s`%s%s: %s" % (
                    _first_line(a["text"]).replace("|", "\\|"),
                    " (%d trace events)" % n if n else "",
                    " [memory limit]" if a.get("cause") else "",
                    ", ".join(a.get("by", []))))
            lines.append("| `%s` %s | %s | %s |" % (
                c["id"], c["description"].replace("|", "\\|"), flags,
                "<br>".join(answers)))
        lines.append("")
    lines[lines.index(None)] = "%d cases in all." % total
    return "\n".join(lines)


def read_manifest(corpus, group):
    path = manifest_path(corpus, group)
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise Fail("%s: format is not %d" % (path, FORMAT))
    if doc.get("group") != group:
        raise Fail("%s: group is %r" % (path, doc.get("group")))
    ids = set()
    for c in doc["cases"]:
        if not _ID_RX.match(c.get("id", "")):
            raise Fail("%s: bad id %r" % (path, c.get("id")))
        if c["id"] in ids:
            raise Fail("%s: duplicate id %s" % (path, c["id"]))
        ids.add(c["id"])
        if c.get("intent") not in (None, "invalid"):
            raise Fail("%s: %s: intent may only be \"invalid\""
                       % (path, c["id"]))
    return doc


def groups_in(corpus):
    d = os.path.join(corpus, "manifest")
    if not os.path.isdir(d):
        return []
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json"))


def stored_answers(case, everyone):
    """{oracle: (body, trace, cause)} as recorded in a case."""
    out = {}
    groups = case.get("answers")
    if not groups:
        groups = [dict(case.get("expected", {}), by=case.get("by", []))]
    for g in groups:
        for name in expand_by(g.get("by", []), everyone,
                              case.get("protocol", 5)):
            out[name] = (g.get("text"), g.get("trace"), g.get("cause"))
    return out


def header_protocol(data):
    if len(data) >= 2 and data[0] == 0x80:
        return data[1]
    return 0


# --------------------------------------------------------------------------
# derivation

ALL = "all"


def expand_by(names, everyone, protocol):
    """`by` as stored -> oracle names ("all": every oracle of the manifest
    header in scope for the protocol)."""
    if names == [ALL]:
        return [n for n in everyone if in_scope(n, protocol)]
    return list(names)


def derive(case, answers, primary, flag_names, everyone=()):
    """The case entry with its derived fields recomputed from
    {oracle: (body, trace, cause)}."""
    cid = case["id"]
    if primary not in answers:
        raise Fail("%s: no answer from the primary oracle %s"
                   % (cid, primary))
    # distinct answers, each with who gave it
    groups = {}
    for name, (body, trace, cause) in answers.items():
        groups.setdefault((body, trace, cause), []).append(name)
    verdicts = {k: v for k, v in groups.items() if k[2] is None}
    p_body, p_trace, p_cause = answers[primary]
    if p_cause is None:
        expected = (p_body, p_trace)
    elif verdicts:
        # the primary ran out of memory: the newest verdict stands in
        best = max((n for k, v in verdicts.items() for n in v),
                   key=oracle_key)
        expected = answers[best][:2]
    else:
        expected = (p_body, p_trace)
    if len(verdicts) == 1:
        body = list(verdicts)[0][0]
        result = "invalid" if body.startswith("error ") else "valid"
    else:
        result = "acceptable"
    flags = [f for f in case.get("flags", []) if f not in DERIVED_FLAGS]
    derived = set()
    if any(k[2] == "memory-limit" for k in groups):
        derived.add("oracle-memory-limit")
    if len(verdicts) > 1:
        per_version = {}     # (impl, X, Y) -> {unpickler: answer}
        per_unpickler = {}   # (impl, unpickler) -> {X.Y: answer}
        for key, names in verdicts.items():
            for n in names:
                m = _NAME_RX.match(n)
                if m:
                    per_version.setdefault(m.group(1, 2, 3), {})[
                        m.group(4)] = key
                    per_unpickler.setdefault(m.group(1, 4), {})[
                        m.group(2, 3)] = key
        if any(len(set(d.values())) > 1 for d in per_version.values()):
            derived.add("c-py-differ")
        if any(len(set(d.values())) > 1 for d in per_unpickler.values()):
            derived.add("versions-differ")
        if len(set(k[0] for k in verdicts)) == 1:
            derived.add("trace-differs")
    flags = sorted(set(flags) | derived)
    for f in flags:
        if f not in flag_names:
            raise Fail("%s: flag %r is not in corpus/flags.json" % (cid, f))
    if case.get("intent") == "invalid":
        loads = sorted((n for k, v in verdicts.items()
                        if not k[0].startswith("error ") for n in v),
                       key=oracle_key)
        if loads:
            raise Fail("%s: intent is invalid but %s LOAD it: a bad invalid "
                       "case (fix the bytes or drop the intent)"
                       % (cid, ", ".join(loads)))
        if not verdicts:
            raise Fail("%s: intent is invalid but every oracle only ran out "
                       "of memory" % cid)
        faults = [f for f in flags if f in ERROR_CLASSES]
        if not faults:
            raise Fail("%s: intent invalid needs a fault flag (an error "
                       "class)" % cid)
        if "error %s\n" % faults[0] != expected[0] or len(faults) > 1:
            raise Fail("%s: fault flag %s but the primary says %r"
                       % (cid, " ".join(faults), expected[0]))
    out = {}
    for k in AUTHOR_KEYS:
        if k in case:
            out[k] = case[k]
    out["flags"] = flags
    out["result"] = result
    out["expected"] = {"text": expected[0], "trace": expected[1]}
    exp_by = [n for k, v in groups.items() if k[:2] == expected and
              k[2] is None for n in v]
    out["by"] = sorted(exp_by, key=oracle_key)
    scope = sorted((n for n in everyone if in_scope(n, case["protocol"])),
                   key=oracle_key)
    if out["by"] == scope:
        out["by"] = [ALL]
    if len(groups) > 1:
        ans = []
        for (body, trace, cause), names in groups.items():
            a = {"text": body, "trace": trace,
                 "by": sorted(names, key=oracle_key)}
            if cause:
                a["cause"] = cause
            ans.append(a)
        ans.sort(key=lambda a: (a["text"], a["trace"], a.get("cause", "")))
        out["answers"] = ans
    return out


def render_manifest(doc, cases, oracles_used, primary):
    out = {"format": FORMAT, "group": doc["group"],
           "description": doc.get("description", ""),
           "canonical": HEADER.rstrip("\n"),
           "primary": primary,
           "oracles": dict(oracles_used),
           "cases": sorted(cases, key=lambda c: c["id"])}
    return render_doc(out)


# --------------------------------------------------------------------------
# main

def process(corpus, groups, oracles, args, check):
    flags_doc = load_flags(corpus)
    flag_names = set(flags_doc["flags"])
    available = {o.name: o for o in oracles}
    docs = {g: read_manifest(corpus, g) for g in groups}
    # the cases to run, all groups at once (one adapter per oracle)
    jobs = []
    for g in groups:
        for c in docs[g]["cases"]:
            path = os.path.join(corpus, "cases", c["file"])
            with open(path, "rb") as f:
                jobs.append((g, c, f.read()))
    if check:
        recorded = set()
        for g in groups:
            if docs[g].get("primary"):
                recorded.add(docs[g]["primary"])
            recorded.update(docs[g].get("oracles", {}))
        use = [o for o in oracles if o.name in recorded]
        missing = sorted(recorded - set(available), key=oracle_key)
        if missing:
            print("note: not available here, stored answers kept: %s"
                  % ", ".join(missing))
        extra = sorted(set(available) - recorded, key=oracle_key)
        if extra:
            print("note: available but not recorded (regen would add): %s"
                  % ", ".join(extra))
    else:
        use = list(oracles)
    print("running %d cases through %d oracles: %s"
          % (len(jobs), len(use), " ".join(o.name for o in use)))
    fresh = run_all(use, [d for _, _, d in jobs], args.timeout,
                    args.confirm_memory_limit, args.jobs)
    failures = []
    changed_files = {}
    for g in groups:
        doc = docs[g]
        primary = doc.get("primary") if check else None
        if not primary:
            primary = primary_of(oracles)
        if primary not in available:
            if not check:
                raise Fail("%s: primary oracle %s is not available here: "
                           "regenerating needs it" % (g, primary))
            # A machine with another CPython (Debian 12 has only 3.11) can
            # still re-derive every recorded oracle it has; the primary's
            # stored answers are kept and said to be unchecked.
            print("note: %s: primary oracle %s is not available here: its "
                  "stored answers are kept, not re-derived" % (g, primary))
        versions = dict(doc.get("oracles", {}))
        old_everyone = sorted(versions, key=oracle_key)
        if check:
            group_use = [o for o in use if o.name in versions]
            if not group_use:
                raise Fail("%s: none of the oracles recorded in its manifest "
                           "is available here: nothing can be checked" % g)
        else:
            group_use = use
            if args.drop_missing:
                versions = {}
        for o in group_use:
            versions[o.name] = o.version
        everyone = sorted(versions, key=oracle_key)
        new_cases = []
        for i, (jg, c, data) in enumerate(jobs):
            if jg != g:
                continue
            ans = stored_answers(c, old_everyone)
            ans = {n: a for n, a in ans.items()
                   if n in versions and n not in available}
            for o in group_use:
                ans[o.name] = fresh[o.name][i]
            case = dict(c)
            if "protocol" not in case:
                case["protocol"] = header_protocol(data)
            ans = {n: a for n, a in ans.items()
                   if in_scope(n, case["protocol"])}
            try:
                new = derive(case, ans, primary, flag_names, everyone)
            except Fail as e:
                failures.append("%s/%s" % (g, e))
                new = c
            new_cases.append(new)
            if check and dump_json(new) != dump_json(c):
                import difflib
                diff = "".join(difflib.unified_diff(
                    dump_json(c).splitlines(True),
                    dump_json(new).splitlines(True),
                    "stored", "oracle", n=1))
                failures.append("%s/%s: stored expectation differs\n%s"
                                % (g, c["id"], diff))
        text = render_manifest(doc, new_cases, versions, primary)
        changed_files[manifest_path(corpus, g)] = text
        if check and doc.get("oracles"):
            for n, v in sorted(doc["oracles"].items()):
                if n in available and available[n].version != v:
                    print("note: %s is %s here, %s in %s.json"
                          % (n, available[n].version, v, g))
    md_path = os.path.join(corpus, "FLAGS.md")
    md = flags_markdown(flags_doc)
    if check:
        try:
            with open(md_path, encoding="utf-8") as f:
                if f.read() != md:
                    failures.append("corpus/FLAGS.md is not up to date with "
                                    "flags.json (run regen.py)")
        except OSError:
            failures.append("corpus/FLAGS.md is missing (run regen.py)")
    div_path = os.path.join(corpus, "DIVERGENCES.md")
    manifests = {}
    for fn in sorted(os.listdir(os.path.join(corpus, "manifest"))):
        if fn.endswith(".json"):
            path = os.path.join(corpus, "manifest", fn)
            text = changed_files.get(path)
            if text is None:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            manifests[fn[:-5]] = json.loads(text)
    div = divergences_markdown(manifests)
    if check:
        try:
            with open(div_path, encoding="utf-8") as f:
                if f.read() != div:
                    failures.append("corpus/DIVERGENCES.md is not up to date with "
                                    "the manifests (run regen.py)")
        except OSError:
            failures.append("corpus/DIVERGENCES.md is missing (run regen.py)")
    if failures:
        for f in failures:
            print("FAIL " + f)
        print("%d problem(s)" % len(failures))
        return 1
    if check:
        print("%d cases in %d groups: expectations up to date"
              % (len(jobs), len(groups)))
        return 0
    for path, text in sorted(changed_files.items()):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    with open(md_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(md)
    with open(div_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(div)
    summary = {}
    for g in groups:
        with open(manifest_path(corpus, g), encoding="utf-8") as f:
            for c in json.load(f)["cases"]:
                summary.setdefault(g, {}).setdefault(c["result"], 0)
                summary[g][c["result"]] += 1
    for g in groups:
        print("%-18s %s" % (g, " ".join("%s=%d" % kv for kv in
                                        sorted(summary.get(g, {}).items()))))
    return 0


def add_cases(corpus, group, src, description, intent, flags):
    cdir = os.path.join(corpus, "cases", group)
    mdir = os.path.join(corpus, "manifest")
    for d in (cdir, mdir):
        if not os.path.isdir(d):
            os.makedirs(d)
    path = manifest_path(corpus, group)
    if os.path.exists(path):
        doc = read_manifest(corpus, group)
    else:
        doc = {"format": FORMAT, "group": group,
               "description": description or group, "cases": []}
    have = {c["id"] for c in doc["cases"]}
    added = 0
    for fn in sorted(os.listdir(src)):
        if not fn.endswith(".pkl"):
            continue
        cid = fn[:-4]
        if not _ID_RX.match(cid):
            raise Fail("%s: not a valid case id" % fn)
        if cid in have:
            raise Fail("%s/%s already exists" % (group, cid))
        with open(os.path.join(src, fn), "rb") as f:
            data = f.read()
        shutil.copyfile(os.path.join(src, fn), os.path.join(cdir, fn))
        c = {"id": cid, "file": "%s/%s" % (group, fn),
             "description": cid.replace("_", " ").replace("-", " "),
             "protocol": header_protocol(data), "flags": sorted(flags)}
        side = os.path.join(src, cid + ".json")
        if os.path.exists(side):   # optional author metadata
            with open(side, encoding="utf-8") as f:
                meta = json.load(f)
            for k in ("description", "protocol", "intent", "flags"):
                if k in meta:
                    c[k] = meta[k]
        if intent and "intent" not in c:
            c["intent"] = intent
        doc["cases"].append(c)
        added += 1
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(render_doc(doc))
    print("added %d cases to %s" % (added, group))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("groups", nargs="*")
    p.add_argument("--corpus", default=CORPUS)
    p.add_argument("--check", action="store_true")
    p.add_argument("--python", action="append", metavar="PY",
                   help="use these interpreters instead of discovery "
                        "(repeatable)")
    p.add_argument("--add", metavar="GROUP")
    p.add_argument("--from", dest="src", metavar="DIR")
    p.add_argument("--description")
    p.add_argument("--intent", choices=["invalid"])
    p.add_argument("--flag", action="append", default=[])
    p.add_argument("--drop-missing", action="store_true",
                   help="forget stored answers of oracles not available "
                        "here")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="per-case wall-clock seconds (default 120)")
    p.add_argument("--confirm-memory-limit", type=int,
                   default=CONFIRM_MEMORY_LIMIT_MB, metavar="MB",
                   help="re-run resource-limit answers with this limit "
                        "(default %d; 0: do not)" % CONFIRM_MEMORY_LIMIT_MB)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    try:
        corpus = os.path.abspath(args.corpus)
        if args.add:
            if not args.src or args.check:
                p.error("--add needs --from DIR (and no --check)")
            add_cases(corpus, args.add, args.src, args.description,
                      args.intent, args.flag)
            groups = [args.add]
        else:
            groups = args.groups or groups_in(corpus)
        if not groups:
            raise Fail("no groups in %s/manifest" % corpus)
        oracles = find_oracles(args.python)
        if not oracles:
            raise Fail("no CPython 3.6+ oracle found")
        return process(corpus, groups, oracles, args, args.check)
    except Fail as e:
        sys.stderr.write("regen.py: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
