"""Divergence pages from a `brine fuzz` findings folder: DIR/<id>/ per
distinct divergence, holding meta.json ({id, signature, explanation,
classification, count, first_seen, target}), input.pkl, min.pkl, dis.txt,
pkl.txt and cpython.txt (canonical document, then `--- trace` and the
trace lines). Every file is optional here: what is missing or malformed is
said on the page, never fatal."""

import json
import os

from .diff import side_by_side
from .html import attr, data_uri, esc, file_slug, hexdump, py_bytes_literal
from .tools import cut

CLASSES = ["unexplained", "libpkl-bug", "cpython-quirk"]
BYTES_MAX = 16 * 1024 * 1024
TEXT_MAX = 1024 * 1024
DOWNLOAD_MAX = 1024 * 1024
TRACE_MARK = "--- trace"


def _read(path, limit):
    """(bytes, total size, problem)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            return f.read(limit), size, ""
    except OSError as e:
        return None, 0, "%s: %s" % (os.path.basename(path), e.strerror or e)


def _text(path, limit=TEXT_MAX):
    data, size, problem = _read(path, limit)
    if data is None:
        return None, problem
    text = data.decode("utf-8", "replace")
    if size > limit:
        text += "\n... cut at %d of %d bytes" % (limit, size)
    return text, ""


def split_answer(text):
    """(document, trace) of a pkl.txt / cpython.txt."""
    lines = text.split("\n")
    if TRACE_MARK in lines:
        k = lines.index(TRACE_MARK)
        return "\n".join(lines[:k]) + "\n", "\n".join(lines[k + 1:])
    return text, ""


class Finding(object):
    def __init__(self, folder, dirname):
        self.dir = os.path.join(folder, dirname)
        self.dirname = dirname
        self.problems = []
        meta = {}
        raw, _, problem = _read(os.path.join(self.dir, "meta.json"), TEXT_MAX)
        if raw is None:
            self.problems.append(problem)
        else:
            try:
                meta = json.loads(raw.decode("utf-8", "replace"))
                if not isinstance(meta, dict):
                    self.problems.append("meta.json is not an object")
                    meta = {}
            except ValueError as e:
                self.problems.append("meta.json is not JSON: %s" % e)
        self.meta = meta
        self.id = self._s("id") or dirname
        if self._s("id") and self._s("id") != dirname:
            self.problems.append("meta.json id %r is not the folder's name" % self._s("id"))
        self.signature = self._s("signature")
        self.explanation = self._s("explanation")
        self.classification = self._s("classification")
        if meta and self.classification not in CLASSES:
            self.problems.append("classification %r is none of %s"
                                 % (self.classification, ", ".join(CLASSES)))
        count = meta.get("count")
        self.count = count if isinstance(count, int) and not isinstance(count, bool) else 0
        self.first_seen = "%s" % meta.get("first_seen", "") if meta.get("first_seen") is not None else ""
        self.target = self._s("target")
        self.page = "%s.html" % file_slug(dirname)
        self.min_size = None
        try:
            self.min_size = os.path.getsize(os.path.join(self.dir, "min.pkl"))
        except OSError:
            pass

    def _s(self, key):
        v = self.meta.get(key)
        return v if isinstance(v, str) else ("" if v is None else "%s" % (v,))

    def sort_key(self):
        rank = CLASSES.index(self.classification) if self.classification in CLASSES else len(CLASSES)
        return (rank, -self.count, self.signature, self.dirname)


def load(folder):
    """Every finding folder below folder, in report order."""
    try:
        names = sorted(n for n in os.listdir(folder)
                       if not n.startswith(".") and os.path.isdir(os.path.join(folder, n)))
    except OSError as e:
        return None, "%s: %s" % (folder, e.strerror or e)
    return sorted((Finding(folder, n) for n in names), key=Finding.sort_key), ""


def index(findings, problem, folder):
    out = ["<h1>Divergences</h1>",
           '<table class="meta"><tr><td>findings folder</td><td>%s</td></tr>'
           '<tr><td>distinct divergences</td><td>%d</td></tr><tr><td>inputs in all</td>'
           '<td>%d</td></tr></table>' % (esc(folder), len(findings or []),
                                          sum(f.count for f in findings or []))]
    if problem:
        out.append('<div class="warn">%s</div>' % esc(problem))
        return "\n".join(out)
    per = {}
    for f in findings:
        per[f.classification] = per.get(f.classification, 0) + 1
    out.append("<p>%s. Click a column to sort.</p>" % esc(", ".join(
        "%d %s" % (per[c], c or "unclassified") for c in sorted(per))) if per else "<p>No findings.</p>")
    rows = []
    for f in findings:
        rows.append(
            '<tr><td data-sort="%d">%s%s</td><td><a class="mono" data-finding="%s" href="%s">%s</a></td>'
            '<td data-sort="%d">%d</td><td>%s</td><td>%s</td><td>%s</td><td data-sort="%d">%s</td></tr>'
            % (f.sort_key()[0], esc(f.classification or "?"),
               ' <span class="bad" title="%s">!</span>' % attr("; ".join(f.problems)) if f.problems else "",
               attr(f.dirname), attr(f.page), esc(f.signature or f.dirname), f.count, f.count, esc(f.first_seen),
               esc(f.target), esc(f.explanation), -1 if f.min_size is None else f.min_size,
               "-" if f.min_size is None else "%d" % f.min_size))
    out.append('<table class="sortable"><thead><tr><th>classification</th><th>signature</th>'
               '<th>count</th><th>first seen</th><th>target</th><th>explanation</th>'
               '<th>min bytes</th></tr></thead><tbody>%s</tbody></table>' % "\n".join(rows))
    return "\n".join(out)


def _bytes_block(f, name, title):
    data, size, problem = _read(os.path.join(f.dir, name), BYTES_MAX)
    if data is None:
        return '<h2>%s</h2><p class="muted">%s</p>' % (esc(title), esc(problem))
    out = ['<h2>%s <span class="muted n">%d bytes</span></h2>' % (esc(title), size)]
    if size <= DOWNLOAD_MAX:
        out.append('<p><a download="%s" href="%s">download %s</a></p>'
                   % (attr(name), attr(data_uri(data)), esc(name)))
    out.append("<h3>hex</h3><pre>%s</pre>" % esc(hexdump(data)))
    shown = data[:4096]
    out.append("<h3>as a Python bytes literal%s</h3><pre>%s</pre>"
               % (" (first 4096 bytes)" if size > len(shown) else "", esc(py_bytes_literal(shown))))
    return "\n".join(out)


def page(f):
    out = ["<h1>Divergence <span class=\"mono\">%s</span></h1>" % esc(f.signature or f.dirname)]
    meta = [("explanation", f.explanation or "-"), ("classification", f.classification or "-"),
            ("signature", f.signature or "-"), ("id", f.id), ("count", f.count),
            ("first seen", f.first_seen or "-"), ("target", f.target or "-")]
    out.append('<table class="meta">%s</table>' % "".join(
        '<tr><td>%s</td><td>%s</td></tr>' % (esc(k), esc(v)) for k, v in meta))
    for p in f.problems:
        out.append('<div class="warn">%s</div>' % esc(p))
    out.append(_bytes_block(f, "min.pkl", "minimized input (min.pkl)"))
    dis, problem = _text(os.path.join(f.dir, "dis.txt"))
    out.append("<h2>disassembly of min.pkl</h2>")
    out.append("<pre>%s</pre>" % esc(cut(dis.rstrip("\n"))) if dis is not None
               else '<p class="muted">%s</p>' % esc(problem))
    pkl, p1 = _text(os.path.join(f.dir, "pkl.txt"))
    py, p2 = _text(os.path.join(f.dir, "cpython.txt"))
    out.append("<h2>canonical texts of min.pkl</h2>")
    for p in (p1, p2):
        if p:
            out.append('<p class="muted">%s</p>' % esc(p))
    pd, pt = split_answer(pkl or "")
    yd, yt = split_answer(py or "")
    doc, _ = side_by_side(pd, yd, "libpkl (pkl.txt)", "CPython (cpython.txt)")
    out.append("<h3>documents</h3>" + doc)
    tr, nt = side_by_side(pt, yt, "libpkl trace", "CPython trace")
    out.append("<h3>safety traces%s</h3>%s" % ("" if nt else " (identical)", tr))
    first, _, _ = _read(os.path.join(f.dir, "input.pkl"), BYTES_MAX)
    minimized, _, _ = _read(os.path.join(f.dir, "min.pkl"), BYTES_MAX)
    if first is not None and first == minimized:
        out.append("<h2>first input seen (input.pkl)</h2><p>the same bytes as min.pkl</p>")
    else:
        out.append(_bytes_block(f, "input.pkl", "first input seen (input.pkl)"))
    return "\n".join(out)
