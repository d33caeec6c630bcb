"""coverage.html: the opcode x protocol table of a run's `coverage`
(harness/cover.h): per cell the cases the oracle loads that execute the
opcode, "Ns" for the stock-error cases of EXT1/2/4 and NEXT_BUFFER, holes
in red, "-" before the opcode's protocol."""

import math

from .html import attr, esc

PROTOCOLS = range(6)


def _green(n, top):
    """Paler for few cases, deeper for many (log scale)."""
    if top <= 1:
        return "hsl(120,50%,80%)"
    t = math.log(n + 1) / math.log(top + 1)
    return "hsl(120,%d%%,%d%%)" % (35 + int(round(25 * t)), 88 - int(round(28 * t)))


def build(rep, table, table_source):
    """The body of coverage.html. table: the opcode table ([{name, code,
    proto, summary}]) or None, then taken from the cells."""
    out = ["<h1>Opcode &times; protocol coverage</h1>"]
    cov = rep.coverage
    if cov is None:
        out.append('<div class="warn">None of the runs holds a coverage table: run '
                   '<code>brine run --coverage --json FILE</code>.</div>')
        return "\n".join(out)
    cells = [c for c in cov.get("cells") or [] if isinstance(c, dict)]
    by = {}
    for c in cells:
        by[(str(c.get("opcode", "")), c.get("protocol"))] = c
    if table is None:
        table, seen = [], {}
        for c in cells:
            name = str(c.get("opcode", ""))
            if name not in seen:
                seen[name] = {"name": name, "code": c.get("code", 0), "proto": c.get("protocol", 0),
                              "summary": ""}
                table.append(seen[name])
            elif isinstance(c.get("protocol"), int):
                seen[name]["proto"] = min(seen[name]["proto"], c["protocol"])
        table_source = "the cells themselves (lowest protocol with a cell)"
    top = max([c.get("loaded", 0) for c in cells if isinstance(c.get("loaded"), int)] or [0])
    holes = 0
    rows = []
    stray = set(by)
    for op in table:
        tds = ['<th title="%s">%s</th>' % (attr(op["summary"]), esc(op["name"])),
               '<td>0x%02x</td>' % op["code"], '<td>%d</td>' % op["proto"]]
        for p in PROTOCOLS:
            c = by.get((op["name"], p))
            stray.discard((op["name"], p))
            if p < op["proto"]:
                tds.append('<td class="na">-</td>' if c is None else
                           '<td class="hole" title="a cell before the opcode\'s protocol">?</td>')
                continue
            if c is None:
                holes += 1
                tds.append('<td class="hole" data-cell="missing" title="not in the run\'s table">0!</td>')
                continue
            loaded, stock, fault = (c.get(k, 0) if isinstance(c.get(k), int) else 0
                                    for k in ("loaded", "stock", "fault"))
            title = "%s at protocol %d: %d loading cases, %d stock-error cases, %d other failing cases" % (
                op["name"], p, loaded, stock, fault)
            if loaded:
                tds.append('<td data-cell="loaded" style="background:%s" title="%s">%d</td>'
                           % (_green(loaded, top), attr(title), loaded))
            elif stock:
                tds.append('<td class="stock" data-cell="stock" title="%s">%ds</td>' % (attr(title), stock))
            else:
                holes += 1
                tds.append('<td class="hole" data-cell="hole" title="%s">0!</td>' % attr(title))
        rows.append("<tr>%s</tr>" % "".join(tds))
    out.append('<table class="meta"><tr><td>from</td><td>%s</td></tr><tr><td>cases</td><td>%s'
               '</td></tr><tr><td>loaded by the oracle</td><td>%s</td></tr><tr><td>holes</td>'
               '<td>%s (the run says %s)</td></tr><tr><td>opcode protocols</td><td>%s</td></tr></table>'
               % (esc(rep.coverage_from), esc(cov.get("cases", "?")), esc(cov.get("loaded", "?")),
                  '<span class="bad">%d</span>' % holes if holes else "0", esc(cov.get("holes", "?")),
                  esc(table_source)))
    if rep.coverage_conflict:
        out.append('<div class="warn">The runs hold different coverage tables; this is the '
                   'first one\'s.</div>')
    if stray:
        out.append('<div class="warn">Cells for opcodes or protocols the table does not have: %s</div>'
                   % esc(", ".join("%s/%s" % k for k in sorted(stray, key=str))))
    out.append("<p>A cell counts the cases about that protocol that the oracle loads and that "
               "execute the opcode on their way to STOP (darker: more). <b>Ns</b>: EXT1, EXT2, "
               "EXT4 and NEXT_BUFFER cannot load under the stock configuration (empty extension "
               "registry, no out-of-band buffers); N cases raise the error only they raise. "
               '<span class="bad">0!</span>: a hole, no case. <b>-</b>: the opcode does not '
               "exist at that protocol. Hover a cell for the failing cases it also has.</p>")
    head = "".join("<th>%s</th>" % h for h in ["opcode", "code", "since"] +
                   ["protocol %d" % p for p in PROTOCOLS])
    out.append('<table class="cov"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>'
               % (head, "\n".join(rows)))
    return "\n".join(out)
