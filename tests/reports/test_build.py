#!/usr/bin/env python3
"""Tests of reports/build.py on real `brine run --json` output (ctest
reports.build).

    test_build.py --brine BUILD/brine --python PY [-v]

Runs brine over the corpus (libpkl with --coverage; the broken unpickler of
tests/oracle through the generic adapter, which fails on every case holding
a BININT1; a plain folder of pickles with markup in their names and
contents, judged by the live oracle), writes a findings folder with
tests/reports/make_findings_fixture.py, builds the report and reads the
pages back with html.parser: every implementation and group is in the
matrix with the JSON's counts, every non-passing case is on its
implementation's page with its differing lines marked, hostile text is
escaped everywhere, the coverage page has one cell per cell of the run,
findings render, output is deterministic, stale pages go.

Python 3.6+, standard library only.
"""

import argparse
import glob
import html.parser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "reports", "build.py")
NOT_FAILURE = ("pass", "acceptable", "oracle-limit", "out-of-scope")
ARGS = None
# every element the builder writes: anything else came from the data
OUR_TAGS = {"html", "head", "meta", "title", "style", "body", "nav", "a", "h1", "h2", "h3", "h4",
            "p", "table", "thead", "tbody", "tr", "th", "td", "div", "span", "b", "code", "pre",
            "details", "summary", "section", "select", "option", "colgroup", "col", "script"}
W = None  # the shared work: runs, fixture, one full build


class Page(html.parser.HTMLParser):
    """Start tags with their attributes, the text, and per element with
    data-case the number of changed diff rows inside it."""

    def __init__(self, path):
        html.parser.HTMLParser.__init__(self, convert_charrefs=True)
        self.tags = []
        self.text = []
        self.cases = []
        self._stack = []
        with open(path, encoding="utf-8") as f:
            self.raw = f.read()
        self.feed(self.raw)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in ("br", "col", "meta", "img", "input", "hr"):
            return
        entry = None
        if "data-case" in a:
            entry = {"attrs": a, "chg": 0}
            self.cases.append(entry)
        self._stack.append((tag, entry))
        if tag == "tr" and "chg" in (a.get("class") or "").split():
            for _, e in self._stack:
                if e is not None:
                    e["chg"] += 1

    def handle_endtag(self, tag):
        while self._stack:
            t, _ = self._stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag, **want):
        return [a for t, a in self.tags if t == tag and
                all(a.get(k.replace("_", "-")) == v for k, v in want.items())]


def run(argv, ok=(0,), **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, **kw)
    if p.returncode not in ok:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(map(shlex.quote, argv)),
                                                    p.returncode, p.stdout[-3000:]))
    return p


def broken_adapter():
    return "broken=PYTHONPATH=%s %s -m brine_oracle.adapt_main --path %s broken_unpickler:BrokenUnpickler" % (
        shlex.quote(os.path.join(REPO, "oracle")), shlex.quote(ARGS.python),
        shlex.quote(os.path.join(REPO, "tests", "oracle")))


def build(out, runs, extra=(), env=None, ok=(0,)):
    argv = [sys.executable, BUILD, "--out", out, "--brine", ARGS.brine]
    for r in runs:
        argv += ["--run", r]
    return run(argv + list(extra), ok=ok, env=env)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class Work(object):
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="brine-reports-test.")
        t = self.tmp
        self.r = os.path.join(t, "r.json")
        run([ARGS.brine, "run", "--impl", "pkl", "--coverage", "--quiet", "--json", self.r])
        self.b = os.path.join(t, "b.json")
        run([ARGS.brine, "run", "--adapter", broken_adapter(), "--quiet", "--max-report", "1",
             "--json", self.b], ok=(1,))
        # a plain folder: markup in file names and in what the pickles hold;
        # the broken unpickler fails on the ones holding a BININT1
        hostile = os.path.join(t, "hostile")
        os.makedirs(hostile)
        files = {
            "<script>alert(1)<\\script>.pkl": b"\x80\x02c<script>\nalert\nK\x05\x85R.",
            "str-<b>&amp;.pkl": b"\x80\x02X\x14\x00\x00\x00</pre><img src=x>\xe2\x80\xaeK\x01\x86.",
            "plain.pkl": b"\x80\x02N.",
        }
        for name, data in files.items():
            with open(os.path.join(hostile, name), "wb") as f:
                f.write(data)
        self.h = os.path.join(t, "h.json")
        run([ARGS.brine, "run", "--corpus", hostile, "--impl", "pkl", "--adapter", broken_adapter(),
             "--quiet", "--json", self.h], ok=(1,))
        self.findings = os.path.join(t, "findings")
        run([sys.executable, os.path.join(HERE, "make_findings_fixture.py"), "--brine", ARGS.brine,
             "--python", ARGS.python, "--out", self.findings])
        self.out = os.path.join(t, "out")
        self.env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        build(self.out, [self.r, self.b, self.h], ["--findings", self.findings, "--max-cases", "100000"],
              env=self.env)
        self.index = Page(os.path.join(self.out, "index.html"))

    def impl_page(self, key):
        (link,) = [a["href"] for a in self.index.find("a", data_impl=key)]
        return Page(os.path.join(self.out, link))


def expected_counts(results):
    c = {"total": 0, "pass": 0, "acceptable": 0, "failures": 0}
    for r in results:
        c["total"] += 1
        if r["verdict"] in ("pass", "acceptable"):
            c[r["verdict"]] += 1
        elif r["verdict"] not in NOT_FAILURE:
            c["failures"] += 1
    return c


def runs_merged():
    """[(report key, results, summary)] as the builder should name them."""
    out, seen = [], set()
    for path in (W.r, W.b, W.h):
        doc = load(path)
        for im in doc["implementations"]:
            key, n = im["name"], 2
            while key in seen:
                key = "%s@%d" % (im["name"], n)
                n += 1
            seen.add(key)
            out.append((key, [r for r in doc["results"] if r["impl"] == im["name"]], im["summary"]))
    return out


class TestMatrix(unittest.TestCase):
    def test_every_implementation_and_group_with_the_json_counts(self):
        merged = runs_merged()
        self.assertEqual([k for k, _, _ in merged], ["pkl", "broken", "pkl@2", "broken@2"])
        cells = W.index.find("td")
        cells = [a for a in cells if "data-impl" in a]
        seen = set()
        for key, results, summary in merged:
            groups = set(r["group"] for r in results)
            self.assertTrue(groups)
            for g in ["(all)"] + sorted(groups):
                mine = [a for a in cells if a["data-impl"] == key and a["data-group"] == g]
                self.assertEqual(len(mine), 1, (key, g))
                got = dict((k, int(mine[0]["data-" + k])) for k in ("total", "pass", "acceptable", "failures"))
                want = expected_counts(results if g == "(all)" else [r for r in results if r["group"] == g])
                self.assertEqual(got, want, (key, g))
                seen.add((key, g))
            # the "all" row against the runner's own summary line
            (allc,) = [a for a in cells if a["data-impl"] == key and a["data-group"] == "(all)"]
            self.assertEqual(int(allc["data-pass"]), summary["pass"])
            self.assertEqual(int(allc["data-acceptable"]), summary["acceptable"])
            self.assertEqual(int(allc["data-failures"]),
                             sum(v for k, v in summary.items() if k not in NOT_FAILURE))
        # the three runs' groups: every cell of every impl x group, nothing else
        groups = set(g for _, res, _ in merged for g in set(r["group"] for r in res))
        self.assertEqual(len(cells), len(merged) * (len(groups) + 1))
        self.assertIn(("broken", "opcodes"), seen)
        failing = [a for a in cells if a["data-impl"] == "broken" and a["data-group"] == "(all)"]
        self.assertGreater(int(failing[0]["data-failures"]), 0)

    def test_cells_link_to_the_group_on_the_implementation_page(self):
        links = [a["href"] for t, a in W.index.tags if t == "a" and "#group=" in a.get("href", "")]
        self.assertTrue(links)
        for href in links:
            page, frag = href.split("#", 1)
            p = Page(os.path.join(W.out, page))
            self.assertTrue(p.find("section", id=frag), href)

    def test_header_and_legend(self):
        text = " ".join(W.index.text)
        self.assertIn(os.path.join(REPO, "corpus"), text)
        self.assertIn("raw", text)
        version = run([ARGS.brine, "version"]).stdout.strip()
        self.assertIn(version, text)
        self.assertIn("generated by reports/build.py at 2023-11-14 22:13:20 UTC", text)
        # every row of docs/runner.md's verdict table, word for word
        with open(os.path.join(REPO, "docs", "runner.md"), encoding="utf-8") as f:
            doc = f.read()
        table = doc[doc.index("## Verdicts"):]
        rows = re.findall(r"^\| (`[^|]+) \| ([^|]+) \| ([^|]+) \|$", table, re.M)
        self.assertGreaterEqual(len(rows), 9)
        flat = re.sub(r"\s+", " ", "".join(W.index.text))
        legend = flat[flat.index("Verdicts"):]
        for verdicts, meaning, failure in rows:
            self.assertIn(meaning.replace("`", "").strip(), legend)
            self.assertIn(failure.replace("`", "").strip(), legend)
            for v in re.findall(r"`([^`]+)`", verdicts):
                self.assertIn(v, legend)


class TestImplementationPages(unittest.TestCase):
    def test_every_non_passing_case_with_its_diff(self):
        for key, results, _ in runs_merged():
            page = W.impl_page(key)
            bad = [r for r in results if r["verdict"] != "pass"]
            self.assertEqual(len(page.cases), len(bad), key)
            by_verdict = {}
            for c in page.cases:
                by_verdict[c["attrs"]["data-verdict"]] = by_verdict.get(c["attrs"]["data-verdict"], 0) + 1
            want = {}
            for r in bad:
                want[r["verdict"]] = want.get(r["verdict"], 0) + 1
            self.assertEqual(by_verdict, want, key)
            text = "".join(page.text)
            for r in bad:
                self.assertIn(r["id"], text)
                if r["detail"]:
                    self.assertIn(r["detail"], text)
            # a failure whose documents differ has its differing lines marked
            docs_differ = [r["group"] + "/" + r["id"] for r in bad
                           if "got" in r and r["got"] != r.get("expected")]
            marked = [c["attrs"]["data-case"] for c in page.cases if c["chg"] > 0]
            self.assertEqual(sorted(marked), sorted(docs_differ), key)

    def test_max_cases_bounds_the_detailed_ones(self):
        out = os.path.join(W.tmp, "out-max")
        build(out, [W.b], ["--max-cases", "7"])
        (page,) = glob.glob(os.path.join(out, "impl-*.html"))
        p = Page(page)
        bad = [r for r in load(W.b)["results"] if r["verdict"] != "pass"]
        self.assertEqual(len(p.cases), len(bad))
        self.assertEqual(p.raw.count("<summary>disassembly"), 7)
        by_key = dict((r["group"] + "/" + r["id"], r) for r in bad)
        first = [by_key[c["attrs"]["data-case"]] for c in p.cases[:7]]
        differ = [r for r in first if "got" in r and r["got"] != r.get("expected")]
        self.assertGreater(len(differ), 0)
        self.assertEqual([c["attrs"]["data-case"] for c in p.cases if c["chg"]],
                         [r["group"] + "/" + r["id"] for r in differ])

    def test_disassembly_and_description(self):
        page = W.impl_page("broken")
        self.assertIn("disassembly (brine dis)", "".join(page.text))
        self.assertIn("BININT1", "".join(page.text))
        # descriptions come from the corpus manifests
        self.assertIn("BININT1 starts in the frame, its argument lies after it", "".join(page.text))


class TestEscaping(unittest.TestCase):
    def pages(self):
        return sorted(glob.glob(os.path.join(W.out, "*.html")) + glob.glob(os.path.join(W.out, "findings", "*.html")))

    def test_no_markup_from_the_data(self):
        pages = self.pages()
        self.assertGreater(len(pages), 10)
        for path in pages:
            p = Page(path)
            self.assertEqual([t for t, _ in p.tags].count("script"), 1, path)
            self.assertEqual(set(t for t, _ in p.tags) - OUR_TAGS, set(), path)
            self.assertFalse(any(k.startswith("on") for _, a in p.tags for k in a), path)
            csp = p.find("meta", http_equiv="Content-Security-Policy")
            self.assertEqual(len(csp), 1, path)
            self.assertIn("script-src 'sha256-", csp[0]["content"])

    def test_hostile_case_shown_as_text(self):
        h = load(W.h)
        hostile = [r for r in h["results"] if r["id"].startswith("<script>")]
        self.assertEqual(len(hostile), 2)
        self.assertEqual(set(r["verdict"] for r in hostile), {"pass", "mismatch"})
        page = W.impl_page("broken@2")
        text = "".join(page.text)
        self.assertIn("<script>alert(1)<\\script>.pkl", text)
        self.assertIn('global "<script>" "alert"', text)
        self.assertIn("&lt;script&gt;alert(1)", page.raw)
        # a right-to-left override in a string is shown, not obeyed
        self.assertNotIn("\u202e", page.raw)
        self.assertIn("\\u202e", text)

    def test_injected_fields_of_a_run_file(self):
        doc = load(W.b)
        bad = [r for r in doc["results"] if r["verdict"] != "pass"][0]
        bad["id"] = "</pre><script>alert('id')</script>"
        bad["detail"] = "<img src=x onerror=alert(1)>"
        bad["group"] = "<g onmouseover=alert(1)>"
        bad["got"] = bad["got"] + "</td></tr></table><script>alert('got')</script>\n"
        doc["implementations"][0]["label"] = "<svg onload=alert(1)>"
        path = os.path.join(W.tmp, "injected.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        out = os.path.join(W.tmp, "out-injected")
        build(out, [path])
        for name in os.listdir(out):
            if name.endswith(".html"):
                p = Page(os.path.join(out, name))
                self.assertEqual([t for t, _ in p.tags].count("script"), 1, name)
                self.assertEqual(set(t for t, _ in p.tags) - OUR_TAGS, set(), name)
        page = Page(os.path.join(out, [n for n in os.listdir(out) if n.startswith("impl-")][0]))
        self.assertIn("</pre><script>alert('id')</script>", "".join(page.text))
        self.assertIn("<g onmouseover=alert(1)>", "".join(page.text))


class TestCoverage(unittest.TestCase):
    def test_one_cell_per_cell_of_the_run(self):
        cov = load(W.r)["coverage"]
        self.assertEqual(len(cov["cells"]), 304)
        p = Page(os.path.join(W.out, "coverage.html"))
        cells = [a for t, a in p.tags if t == "td" and "data-cell" in a]
        self.assertEqual(len(cells), len(cov["cells"]))
        self.assertEqual(len([a for t, a in p.tags if t == "td" and a.get("class") == "na"]), 68 * 6 - 304)
        stock = [c for c in cov["cells"] if not c["loaded"] and c["stock"]]
        self.assertEqual(len([a for a in cells if a["data-cell"] == "stock"]), len(stock))
        self.assertEqual(len([a for a in cells if a["data-cell"] == "hole"]), cov["holes"])
        text = "".join(p.text)
        for c in stock:
            self.assertIn("%ds" % c["stock"], text)

    def test_holes_are_marked(self):
        path = os.path.join(W.tmp, "faults.json")
        run([ARGS.brine, "run", "--impl", "pkl", "--group", "faults", "--coverage", "--quiet",
             "--json", path])
        cov = load(path)["coverage"]
        self.assertGreater(cov["holes"], 0)
        out = os.path.join(W.tmp, "out-faults")
        build(out, [path])
        p = Page(os.path.join(out, "coverage.html"))
        holes = [a for t, a in p.tags if t == "td" and a.get("data-cell") == "hole"]
        self.assertEqual(len(holes), cov["holes"])
        self.assertTrue(all(a.get("class") == "hole" for a in holes))


class TestFindings(unittest.TestCase):
    def test_index_and_one_page_each(self):
        dirs = sorted(d for d in os.listdir(W.findings) if os.path.isdir(os.path.join(W.findings, d)))
        self.assertEqual(len(dirs), 9)
        p = Page(os.path.join(W.out, "findings", "index.html"))
        links = [a["href"] for t, a in p.tags if t == "a" and "data-finding" in a]
        self.assertEqual(sorted(a["data-finding"] for t, a in p.tags if t == "a" and "data-finding" in a), dirs)
        text = "".join(p.text)
        for d in dirs:
            meta = os.path.join(W.findings, d, "meta.json")
            try:
                m = load(meta)
            except ValueError:
                continue
            self.assertIn(m["signature"], text)
            self.assertIn(m["explanation"], text)
        for href in links:
            fp = Page(os.path.join(W.out, "findings", href))
            self.assertEqual([t for t, _ in fp.tags].count("script"), 1)

    def test_divergence_page_content(self):
        (d,) = [d for d in os.listdir(W.findings) if os.path.isdir(os.path.join(W.findings, d))
                and d != "broken-meta" and load(os.path.join(W.findings, d, "meta.json"))["explanation"]
                .startswith("binint1-alone")]
        p = self.page_of(d)
        text = "".join(p.text)
        with open(os.path.join(W.findings, d, "min.pkl"), "rb") as f:
            data = f.read()
        self.assertIn(" ".join("%02x" % b for b in bytearray(data)), text)
        with open(os.path.join(W.findings, d, "dis.txt"), encoding="utf-8") as f:
            self.assertIn(f.read().strip(), text)
        chg = [a for t, a in p.tags if t == "tr" and a.get("class") == "chg"]
        self.assertEqual(len(chg), 1)  # int 7 against int 8
        self.assertIn("int 7", text)
        self.assertIn("int 8", text)

    def test_hostile_and_broken_findings(self):
        p = self.page_of('"><img src=x onerror=alert(1)>')
        text = "".join(p.text)
        self.assertIn("<script>alert('explanation')</script> & done", text)
        self.assertIn("<b>not-a-class</b>", text)
        self.assertIn("is none of unexplained", text)
        b = self.page_of("broken-meta")
        self.assertIn("meta.json is not JSON", "".join(b.text))

    def page_of(self, d):
        idx = Page(os.path.join(W.out, "findings", "index.html"))
        (href,) = [a["href"] for a in idx.find("a", data_finding=d)]
        return Page(os.path.join(W.out, "findings", href))


class TestOutput(unittest.TestCase):
    def test_deterministic(self):
        out2 = os.path.join(W.tmp, "out-again")
        build(out2, [W.r, W.b, W.h], ["--findings", W.findings, "--max-cases", "100000"], env=W.env)
        a = sorted(os.path.relpath(p, W.out) for p in glob.glob(os.path.join(W.out, "**"), recursive=True))
        b = sorted(os.path.relpath(p, out2) for p in glob.glob(os.path.join(out2, "**"), recursive=True))
        self.assertEqual(a, b)
        for rel in a:
            pa, pb = os.path.join(W.out, rel), os.path.join(out2, rel)
            if os.path.isfile(pa):
                with open(pa, "rb") as fa, open(pb, "rb") as fb:
                    self.assertEqual(fa.read(), fb.read(), rel)

    def test_stale_pages_removed_others_kept(self):
        out = os.path.join(W.tmp, "out-stale")
        build(out, [W.b], ["--findings", W.findings])
        self.assertTrue(os.path.isfile(os.path.join(out, "findings", "index.html")))
        with open(os.path.join(out, "notes.txt"), "w") as f:
            f.write("not the builder's\n")
        build(out, [W.r])
        self.assertFalse(os.path.exists(os.path.join(out, "findings", "index.html")))
        self.assertEqual(len(glob.glob(os.path.join(out, "impl-*.html"))), 1)
        self.assertTrue(os.path.isfile(os.path.join(out, "notes.txt")))

    def test_an_implementation_that_did_not_start(self):
        path = os.path.join(W.tmp, "dead.json")
        # beside libpkl, so the run knows its groups: a dead adapter has no results
        run([ARGS.brine, "run", "--impl", "pkl", "--adapter", "dead=/bin/false", "--group",
             "faults", "--quiet", "--json", path], ok=(1,))
        doc = load(path)
        self.assertTrue(doc["implementations"][1]["start_error"])
        self.assertFalse([r for r in doc["results"] if r["impl"] == "dead"])
        out = os.path.join(W.tmp, "out-dead")
        build(out, [path])
        idx = Page(os.path.join(out, "index.html"))
        cells = [a for a in idx.find("td") if a.get("data-impl") == "dead"]
        self.assertEqual(len(cells), 2)
        self.assertTrue(all(a.get("data-notrun") == "1" and "data-pass" not in a for a in cells))
        self.assertIn("did not start", "".join(idx.text))
        pages = glob.glob(os.path.join(out, "impl-*dead*.html"))
        self.assertEqual(len(pages), 1)
        self.assertEqual(Page(pages[0]).cases, [])

    def test_not_a_run_file(self):
        path = os.path.join(W.tmp, "not-a-run.json")
        with open(path, "w") as f:
            f.write('{"format": 1}')
        p = build(os.path.join(W.tmp, "out-bad"), [path], ok=(2,))
        self.assertIn("not a `brine run --json` file", p.stdout)
        with open(path, "w") as f:
            f.write("{")
        p = build(os.path.join(W.tmp, "out-bad"), [path], ok=(2,))
        self.assertIn("not JSON", p.stdout)

    def test_source_coverage_link(self):
        src = os.path.join(W.tmp, "src-cov")
        os.makedirs(src)
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write("<html></html>")
        with open(os.path.join(src, "summary.json"), "w") as f:
            json.dump({"areas": {"pkl/": {"line_percent": 91.5, "branch_percent": 80.25,
                                          "line_covered": 915, "line_total": 1000}}}, f)
        out = os.path.join(W.tmp, "out-src")
        build(out, [W.r], ["--source-coverage", src])
        p = Page(os.path.join(out, "index.html"))
        self.assertIn("../src-cov/index.html", [a.get("href") for t, a in p.tags if t == "a"])
        self.assertIn("91.5", "".join(p.text))
        self.assertIn("80.25", "".join(p.text))


def main():
    global ARGS, W
    ap = argparse.ArgumentParser()
    ap.add_argument("--brine", required=True)
    ap.add_argument("--python", required=True, help="runs the broken unpickler's adapter")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ARGS, rest = ap.parse_known_args()
    try:
        W = Work()
    except BaseException:
        print("setting up the test failed; its work folder: %s" % tempfile.gettempdir())
        raise
    try:
        prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False)
        ok = prog.result.wasSuccessful()
    finally:
        if ARGS.keep:
            print("work folder: %s" % W.tmp)
        else:
            shutil.rmtree(W.tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
