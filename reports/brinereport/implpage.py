"""One page per implementation: every case it does not pass, by group, with
the reason, what the corpus says about the case, the two documents and
traces side by side, and the case's disassembly."""

import os

from .diff import side_by_side
from .html import attr, esc, file_slug, py_bytes_literal, token, verdict_badge
from .matrix import token_group
from .runs import VERDICTS, counts, is_failure

BYTES_SHOWN = 512


def page_name(impl):
    return "impl-%s.html" % file_slug(impl.key)


def _severity(v):
    return VERDICTS.index(v) if v in VERDICTS else len(VERDICTS)


def _case_bytes(path):
    """(size, first bytes) of a case file, or (None, None)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            return size, f.read(BYTES_SHOWN + 1)
    except (OSError, TypeError, ValueError):
        return None, None


def _case(r, rep, brine, detailed):
    info = rep.manifest.get((r["group"], r["id"]), {})
    anchor = "case:%s:%s" % (token(r["group"]), token(r["id"]))
    out = ['<div class="case" data-case="%s" data-group="%s" data-verdict="%s" id="%s">'
           % (attr(r["group"] + "/" + r["id"]), attr(token_group(r["group"])), attr(r["verdict"]),
              attr(anchor))]
    out.append('<h3>%s <a href="#%s" class="mono">%s</a></h3>'
               % (verdict_badge(r["verdict"]), attr(anchor),
                  esc(r["group"] + "/" + r["id"] if r["group"] else r["id"])))
    meta = [("reason", r["detail"] or "-")]
    if info.get("description"):
        meta.append(("description", info["description"]))
    meta.append(("result in the corpus", r["result"] or "-"))
    meta.append(("protocol", r["protocol"] if r["protocol"] >= 0 else "- (from the stream)"))
    flags = info.get("flags")
    if isinstance(flags, list) and flags:
        meta.append(("flags", ", ".join("%s" % f for f in flags)))
    meta.append(("file", r["path"] or "-"))
    out.append('<table class="meta">%s</table>' % "".join(
        '<tr><td>%s</td><td>%s</td></tr>' % (esc(k), esc(v)) for k, v in meta))
    if not detailed:
        out.append("</div>")
        return "\n".join(out)
    size, head = _case_bytes(r["path"])
    if size is not None:
        if size <= BYTES_SHOWN:
            out.append('<p>%d bytes: <code class="wrap">%s</code></p>' % (size, esc(py_bytes_literal(head))))
        else:
            out.append('<p>%d bytes</p>' % size)
    if "got" in r or "expected" in r:
        doc, nd = side_by_side(r.get("expected", ""), r.get("got", ""),
                               "expected (the oracle's answer it was compared with)",
                               "got (%s)" % r["impl"])
        out.append("<h4>canonical documents</h4>" + doc)
        if r.get("expected_trace") or r.get("got_trace"):
            tr, nt = side_by_side(r.get("expected_trace", ""), r.get("got_trace", ""),
                                  "expected trace", "got trace")
            out.append("<h4>safety traces%s</h4>%s"
                       % ("" if nt else " (identical)", tr))
        elif "got_trace" in r or "expected_trace" in r:
            out.append('<p class="muted">safety traces: both empty</p>')
    elif is_failure(r["verdict"]):
        out.append('<p class="muted">the run holds no documents for this case</p>')
    dis = brine.dis(r["path"])
    if dis is not None:
        out.append("<details><summary>disassembly (brine dis)</summary><pre>%s</pre></details>"
                   % esc(dis))
    out.append("</div>")
    return "\n".join(out)


def build(rep, impl, brine, max_cases, policy):
    """The body of one implementation's page."""
    out = ["<h1>%s</h1>" % esc(impl.key)]
    c = counts(impl.results, policy)
    meta = [("label", impl.label or "-"), ("run", impl.run_path),
            ("time", "%.3f s" % impl.seconds),
            ("cases", "%d: %s" % (c["total"], ", ".join(
                "%d %s" % (c["per"][v], v) for v in sorted(c["per"], key=_severity))))]
    if impl.start_error:
        meta.append(("did not start", impl.start_error))
    out.append('<table class="meta">%s</table>' % "".join(
        '<tr><td>%s</td><td>%s</td></tr>' % (esc(k), esc(v)) for k, v in meta))
    if impl.start_error:
        out.append('<div class="warn">This implementation did not start: its results in the '
                   'run are not answers and are not listed.</div>')
        return "\n".join(out)

    groups = sorted(set(r["group"] for r in impl.results))
    bad = [r for r in impl.results if r["verdict"] != "pass"]
    bad.sort(key=lambda r: (r["group"], -_severity(r["verdict"]), r["id"], r["path"]))
    verdicts = sorted(set(r["verdict"] for r in bad), key=_severity)
    out.append('<p>Every case %s does not pass (%d), worst first within each group. '
               'Filter: <select id="f-group"><option value="">every group</option>%s</select> '
               '<select id="f-verdict"><option value="">every verdict</option>%s</select> '
               '<span id="f-count" class="muted"></span></p>'
               % (esc(impl.key), len(bad),
                  "".join('<option value="%s">%s</option>' % (attr(token_group(g)), esc(g or "(no group)"))
                          for g in groups),
                  "".join('<option value="%s">%s</option>' % (attr(v), esc(v)) for v in verdicts)))
    if len(bad) > max_cases:
        out.append('<div class="warn">Documents, traces and disassembly are shown for the '
                   'first %d of %d cases (--max-cases); the others are listed with their '
                   'reason.</div>' % (max_cases, len(bad)))
    shown = 0
    for g in groups:
        in_g = [r for r in impl.results if r["group"] == g]
        gc = counts(in_g, policy)
        key = token_group(g)
        out.append('<section data-groupsec="%s" id="%s">' % (attr(key), attr("group=" + key)))
        desc = rep.group_info.get(g, "")
        out.append('<h2>%s <span class="muted n">%d cases: %d pass, %d acceptable, %d fail%s</span></h2>'
                   % (esc(g or "(no group)"), gc["total"], gc["pass"], gc["acceptable"],
                      gc["failures"], ", %d counted apart" % gc["other"] if gc["other"] else ""))
        if desc:
            out.append('<p class="muted">%s</p>' % esc(desc))
        g_bad = [r for r in bad if r["group"] == g]
        if not g_bad:
            out.append("<p>Every case of this group passes.</p>")
        for r in g_bad:
            out.append(_case(r, rep, brine, shown < max_cases))
            shown += 1
        out.append("</section>")
    return "\n".join(out)
