"""Side-by-side, line-aligned diff of two texts (canonical documents,
safety traces) as an HTML table: differing rows are marked (class "chg"),
the differing part of a changed line is marked inside it, and long runs
of identical lines fold to one row.
"""

import difflib

from .html import esc

# Above this many line pairs SequenceMatcher gets slow (quadratic in the
# worst case); bigger texts are aligned line by line instead, which is what
# a canonical document mostly needs anyway (same shape, changed values).
_MATCH_LIMIT = 4000000


def split_lines(text):
    if not text:
        return []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _intraline(a, b):
    """a and b with their differing middle part wrapped in <span class="x">."""
    n = min(len(a), len(b))
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[len(a) - 1 - s] == b[len(b) - 1 - s]:
        s += 1

    def mark(t):
        mid = t[p:len(t) - s]
        return esc(t[:p]) + ('<span class="x">%s</span>' % esc(mid) if mid else "") + esc(t[len(t) - s:])
    return mark(a), mark(b)


def _opcodes(a, b):
    if len(a) * len(b) <= _MATCH_LIMIT:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    ops = []
    n = min(len(a), len(b))
    i = 0
    while i < n:
        j = i
        same = a[i] == b[i]
        while j < n and (a[j] == b[j]) == same:
            j += 1
        ops.append(("equal" if same else "replace", i, j, i, j))
        i = j
    if len(a) > n:
        ops.append(("delete", n, len(a), n, n))
    elif len(b) > n:
        ops.append(("insert", n, n, n, len(b)))
    return ops


def side_by_side(left, right, left_title, right_title, context=3):
    """HTML table of left vs right (plain texts). Returns (html, ndiff),
    ndiff being the number of rows that differ."""
    a, b = split_lines(left), split_lines(right)
    rows = []
    ndiff = 0
    ops = _opcodes(a, b)
    for k, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            n = i2 - i1
            head = 0 if k == 0 else context
            tail = 0 if k == len(ops) - 1 else context
            if len(ops) == 1:
                head, tail = (n, 0) if n <= 40 else (context, 0)
            if n > head + tail + 1:
                for d in range(head):
                    rows.append(_row(i1 + d, esc(a[i1 + d]), j1 + d, esc(b[j1 + d]), False))
                rows.append('<tr class="skip"><td colspan="4">%d identical line%s</td></tr>'
                            % (n - head - tail, "" if n - head - tail == 1 else "s"))
                for d in range(n - tail, n):
                    rows.append(_row(i1 + d, esc(a[i1 + d]), j1 + d, esc(b[j1 + d]), False))
            else:
                for d in range(n):
                    rows.append(_row(i1 + d, esc(a[i1 + d]), j1 + d, esc(b[j1 + d]), False))
            continue
        la, lb = i2 - i1, j2 - j1
        for d in range(max(la, lb)):
            x = a[i1 + d] if d < la else None
            y = b[j1 + d] if d < lb else None
            if x is not None and y is not None:
                hx, hy = _intraline(x, y)
            else:
                hx = esc(x) if x is not None else ""
                hy = esc(y) if y is not None else ""
            rows.append(_row(i1 + d if x is not None else None, hx,
                             j1 + d if y is not None else None, hy, True))
            ndiff += 1
    if not a and not b:
        rows.append('<tr class="skip"><td colspan="4">both empty</td></tr>')
    head = ('<table class="sbs"><colgroup><col style="width:3.5em"><col><col style="width:3.5em">'
            '<col></colgroup><thead><tr><th></th><th>%s</th><th></th><th>%s</th></tr></thead>'
            '<tbody>' % (esc(left_title), esc(right_title)))
    return head + "\n".join(rows) + "</tbody></table>", ndiff


def _row(i, left_html, j, right_html, changed):
    return '<tr%s><td class="ln">%s</td><td class="l">%s</td><td class="ln">%s</td><td class="r">%s</td></tr>' % (
        ' class="chg"' if changed else "",
        "" if i is None else i + 1, left_html,
        "" if j is None else j + 1, right_html)
