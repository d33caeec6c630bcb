"""Reading `brine run --json` files (docs/runner.md, format 1) and the
corpus manifests they point to, merged into one model for the pages.

Input files are trusted to be JSON, not to be well formed: a missing or
mistyped field gets a default, a file that is not a run at all is a
ReportError (the command exits 2 with its message).
"""

import json
import os

# From best to worst, as harness/verdict.h orders them.
VERDICTS = ["pass", "acceptable", "oracle-limit", "out-of-scope", "refused",
            "trace-mismatch", "mismatch", "accept-vs-reject", "safety-mismatch",
            "timeout", "crash"]
NOT_FAILURE = ("pass", "acceptable", "oracle-limit", "out-of-scope")

# The legend, row by row as docs/runner.md's verdict table words it
# (tests/reports/test_build.py checks that every row there is here, word for
# word).
LEGEND = [
    (("pass",), "the oracle's answer (document and, where the implementation traces, "
     "safety trace)", "no"),
    (("acceptable",), "one of the recorded answers of an implementation-defined case (CPython "
     "versions or its two unpicklers disagree), or `error resource-limit` on a case where the "
     "oracle ran out of memory", "no"),
    (("oracle-limit",), "the oracle itself only hit a resource limit: there is nothing to judge "
     "against (agreeing with it proves nothing either)", "no, counted apart"),
    (("out-of-scope",), "the case is about a protocol newer than the one the implementation "
     "says it supports (hello `highest-protocol`), and it fails it; a case it passes anyway "
     "counts as `pass`", "no, counted apart"),
    (("refused",), "`error forbidden` (a policy refused a global or persistent id) where the "
     "oracle loads or fails otherwise", "yes, unless `--policy`"),
    (("trace-mismatch",), "same document, different safety trace, nothing missed", "yes"),
    (("mismatch",), "both loaded (or both rejected) but differently: the first differing line, "
     "or the two error classes", "yes"),
    (("accept-vs-reject",), "one side loaded, the other rejected", "yes"),
    (("safety-mismatch",), "the implementation missed a global the oracle resolves (imports), "
     "or made fewer calls: the worst verdict, checked before the others", "yes"),
    (("timeout", "crash"), "no answer in time; died or answered outside the protocol", "yes"),
]


class ReportError(Exception):
    pass


def _s(d, key, default=""):
    v = d.get(key, default) if isinstance(d, dict) else default
    return v if isinstance(v, str) else default


def _n(d, key, default=0):
    v = d.get(key, default) if isinstance(d, dict) else default
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def is_failure(verdict, policy=False):
    if verdict in NOT_FAILURE:
        return False
    if verdict == "refused" and policy:
        return False
    return True


class Impl(object):
    """One implementation column. key: the unique name used in the report
    (the run's name, with '@N' appended when two runs use the same name)."""

    def __init__(self, key, name, label, start_error, seconds, summary, run_path):
        self.key = key
        self.name = name
        self.label = label
        self.start_error = start_error
        self.seconds = seconds
        self.summary = summary
        self.run_path = run_path
        self.results = []


class Report(object):
    def __init__(self):
        self.runs = []          # [(path, corpus, level, cases)]
        self.impls = []         # [Impl], in run order then the run's order
        self.coverage = None    # the first run's "coverage" object
        self.coverage_from = ""
        self.coverage_conflict = False
        self.warnings = []
        self.manifest = {}      # (group, id) -> case dict from the corpus manifests
        self.group_info = {}    # group -> description

    @property
    def corpora(self):
        return sorted(set(r[1] for r in self.runs))

    @property
    def levels(self):
        return sorted(set(r[2] for r in self.runs))

    def groups(self):
        return sorted(set(r["group"] for im in self.impls for r in im.results))


def _load_json(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ReportError("%s: cannot read: %s" % (path, e.strerror or e))
    try:
        return json.loads(raw.decode("utf-8", "surrogateescape"))
    except ValueError as e:
        raise ReportError("%s: not JSON: %s" % (path, e))


def _result(r, key):
    out = {
        "impl": key,
        "group": _s(r, "group"),
        "id": _s(r, "id"),
        "path": _s(r, "path"),
        "result": _s(r, "result"),
        "verdict": _s(r, "verdict", "unknown") or "unknown",
        "detail": _s(r, "detail"),
        "protocol": _n(r, "protocol", -1),
        "seconds": _n(r, "seconds", 0),
    }
    for k in ("expected", "expected_trace", "got", "got_trace"):
        if isinstance(r.get(k), str):
            out[k] = r[k]
    return out


def load(paths):
    """Merges the run files, in the order given, into a Report."""
    rep = Report()
    taken = set()
    for path in paths:
        doc = _load_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) \
                or not isinstance(doc.get("implementations"), list):
            raise ReportError("%s: not a `brine run --json` file (no implementations/results)" % path)
        if doc.get("format") != 1:
            rep.warnings.append("%s: format %r, this builder knows format 1" % (path, doc.get("format")))
        corpus, level = _s(doc, "corpus"), _s(doc, "level", "raw")
        rep.runs.append((path, corpus, level, _n(doc, "cases")))
        keys = {}
        for im in doc["implementations"]:
            if not isinstance(im, dict):
                continue
            name = _s(im, "name") or "?"
            if name in keys:
                continue
            key, n = name, 2
            while key in taken:
                key = "%s@%d" % (name, n)
                n += 1
            taken.add(key)
            keys[name] = key
            summary = im.get("summary") if isinstance(im.get("summary"), dict) else {}
            rep.impls.append(Impl(key, name, _s(im, "label"), _s(im, "start_error"),
                                  _n(im, "seconds"), summary, path))
        by_key = dict((im.key, im) for im in rep.impls)
        for r in doc["results"]:
            if not isinstance(r, dict):
                continue
            name = _s(r, "impl") or "?"
            if name not in keys:
                # a result of an implementation the header does not list
                key, n = name, 2
                while key in taken:
                    key = "%s@%d" % (name, n)
                    n += 1
                taken.add(key)
                keys[name] = key
                im = Impl(key, name, "", "", 0, {}, path)
                rep.impls.append(im)
                by_key[key] = im
                rep.warnings.append("%s: results for %r, which is not among its implementations"
                                    % (path, name))
            by_key[keys[name]].results.append(_result(r, keys[name]))
        cov = doc.get("coverage")
        if isinstance(cov, dict) and isinstance(cov.get("cells"), list):
            if rep.coverage is None:
                rep.coverage, rep.coverage_from = cov, path
            elif cov.get("cells") != rep.coverage.get("cells"):
                rep.coverage_conflict = True
    if len(rep.corpora) > 1:
        rep.warnings.append("the runs are over different corpora (%s): their counts are not "
                            "comparable" % ", ".join(rep.corpora))
    for im in rep.impls:
        if im.start_error:
            continue
        counted = {}
        for r in im.results:
            counted[r["verdict"]] = counted.get(r["verdict"], 0) + 1
        for v in sorted(set(counted) | set(k for k in im.summary if isinstance(im.summary[k], int))):
            if im.summary.get(v, 0) != counted.get(v, 0):
                rep.warnings.append("%s: its summary says %s %s, its results hold %d"
                                    % (im.key, im.summary.get(v, 0), v, counted.get(v, 0)))
                break
    for corpus in rep.corpora:
        _read_manifests(rep, corpus)
    return rep


def _read_manifests(rep, corpus):
    """Descriptions and flags of the cases, when the corpus is a brine corpus
    on this machine (a plain folder has none)."""
    mdir = os.path.join(corpus, "manifest") if corpus else ""
    if not mdir or not os.path.isdir(mdir):
        return
    for name in sorted(os.listdir(mdir)):
        if not name.endswith(".json"):
            continue
        try:
            doc = _load_json(os.path.join(mdir, name))
        except ReportError as e:
            rep.warnings.append("manifest %s" % e)
            continue
        if not isinstance(doc, dict):
            continue
        group = _s(doc, "group") or name[:-5]
        rep.group_info.setdefault(group, _s(doc, "description"))
        for c in doc.get("cases") or []:
            if isinstance(c, dict) and _s(c, "id"):
                rep.manifest.setdefault((group, c["id"]), c)


def counts(results, policy=False):
    """{"pass", "acceptable", "failures", "other", "total", verdict: n ...}."""
    out = {"pass": 0, "acceptable": 0, "failures": 0, "other": 0, "total": 0}
    per = {}
    for r in results:
        v = r["verdict"]
        per[v] = per.get(v, 0) + 1
        out["total"] += 1
        if v in ("pass", "acceptable"):
            out[v] += 1
        elif is_failure(v, policy):
            out["failures"] += 1
        else:
            out["other"] += 1
    out["per"] = per
    return out
