"""index.html: the results matrix, case groups x implementations."""

import re

from .html import attr, esc, token
from .runs import LEGEND, counts

# data-group of the "all" row's cells: no group name, since groups are
# manifest file names and a plain folder's group is ""
ALL = "(all)"


def _colour(c):
    """Green when nothing failed, then from yellow to red with the share of
    failures among the judged cases."""
    judged = c["pass"] + c["acceptable"] + c["failures"]
    if not judged:
        return "#eeeeee"
    if not c["failures"]:
        return "#b8e6b8" if not c["acceptable"] else "#c8e6d8"
    share = float(c["failures"]) / judged
    hue = int(round(55 * (1 - share)))
    return "hsl(%d,85%%,%d%%)" % (hue, 72 - int(round(14 * share)))


def _cell(impl, group, results, page, policy):
    if impl.start_error:
        return ('<td class="cell" data-impl="%s" data-group="%s" data-notrun="1" '
                'style="background:#ddd">did not start</td>' % (attr(impl.key), attr(group)))
    if not results:
        return ('<td class="cell" data-impl="%s" data-group="%s" data-total="0" '
                'style="background:#f6f6f6"><span class="muted">no cases</span></td>'
                % (attr(impl.key), attr(group)))
    c = counts(results, policy)
    title = ", ".join("%d %s" % (c["per"][v], v) for v in sorted(c["per"]))
    extra = ""
    if c["other"]:
        extra = '<div class="n muted">%d counted apart</div>' % c["other"]
    href = page + ("" if group == ALL else "#group=" + token_group(group))
    return ('<td class="cell" data-impl="%s" data-group="%s" data-total="%d" data-pass="%d" '
            'data-acceptable="%d" data-failures="%d" data-other="%d" style="background:%s" '
            'title="%s"><a href="%s"><b>%d</b> pass<div class="n">%d acceptable · '
            '<b>%d</b> fail</div>%s</a></td>'
            % (attr(impl.key), attr(group), c["total"], c["pass"], c["acceptable"], c["failures"],
               c["other"], _colour(c), attr(title), attr(href), c["pass"], c["acceptable"],
               c["failures"], extra))


def token_group(group):
    """The filter token of a group on an implementation page."""
    return "g-" + token(group)


def _code(text):
    """esc(text) with `quoted` parts as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", esc(text))


def legend():
    rows = []
    for verdicts, meaning, failure in LEGEND:
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td></tr>"
                    % (", ".join("<code>%s</code>" % esc(v) for v in verdicts), _code(meaning),
                       _code(failure)))
    return ('<table class="legend"><thead><tr><th>verdict</th><th>meaning</th>'
            '<th>a failure?</th></tr></thead><tbody>%s</tbody></table>' % "\n".join(rows))


def build(rep, impl_pages, brine_version, policy, extra_links, extra_html=""):
    """The body of index.html. impl_pages: impl key -> file name;
    extra_links: [(label, href)]; extra_html: shown under the links."""
    out = ["<h1>brine conformance report</h1>"]
    meta = [("corpus", ", ".join(rep.corpora) or "?"),
            ("level", ", ".join(rep.levels) or "?"),
            ("brine", brine_version or "unknown (pass --brine to record it)"),
            ("runs", ", ".join(r[0] for r in rep.runs)),
            ("refused", "counted as passing a policy (--policy)" if policy else
             "counted as a failure (build with --policy for a restricted unpickler)")]
    out.append('<table class="meta">%s</table>' % "".join(
        "<tr><td>%s</td><td>%s</td></tr>" % (esc(k), esc(v)) for k, v in meta))
    for w in rep.warnings:
        out.append('<div class="warn">%s</div>' % esc(w))
    for label, href in extra_links:
        out.append('<p><a href="%s">%s</a></p>' % (attr(href), esc(label)))
    if extra_html:
        out.append(extra_html)

    groups = rep.groups()
    head = ["<th>group</th>"]
    for im in rep.impls:
        head.append('<th><a href="%s" data-impl="%s">%s</a><div class="n muted">%s</div>%s</th>'
                    % (attr(impl_pages[im.key]), attr(im.key), esc(im.key), esc(im.label),
                       '<div class="bad">did not start: %s</div>' % esc(im.start_error)
                       if im.start_error else ""))
    rows = []
    for group in [ALL] + groups:
        desc = rep.group_info.get(group, "") if group != ALL else "every case"
        shown = "all" if group == ALL else (group or "(no group)")
        cells = ['<th title="%s">%s</th>' % (attr(desc), esc(shown))]
        for im in rep.impls:
            res = im.results if group == ALL else [r for r in im.results if r["group"] == group]
            cells.append(_cell(im, group, res, impl_pages[im.key], policy))
        rows.append("<tr>%s</tr>" % "".join(cells))
    out.append('<h2>Results</h2><p>Each cell: cases that pass, acceptable ones (an answer '
               'CPython itself gives on an implementation-defined case), failures; the colour '
               'goes from green (no failure) through yellow to red (every judged case fails). '
               'A cell links to the implementation\'s page for that group.</p>')
    out.append('<table class="matrix"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>'
               % ("".join(head), "\n".join(rows)))
    described = [g for g in groups if rep.group_info.get(g)]
    if described:
        out.append("<h2>Groups</h2>")
        out.append('<table class="meta">%s</table>' % "".join(
            "<tr><td>%s</td><td>%s</td></tr>" % (esc(g), esc(rep.group_info[g])) for g in described))
    out.append("<h2>Verdicts</h2>")
    out.append(legend())
    return "\n".join(out)
