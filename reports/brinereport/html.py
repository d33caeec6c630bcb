"""HTML building blocks: escaping, the page shell, shared style and script.

Everything a page shows from a run, a corpus or a findings folder may come
from a hostile pickle (global names, strings, file names), so text only
enters a page through esc() and attribute values only through attr(). The
pages also carry a Content-Security-Policy that allows no script but the
one below (by hash): a hole in the escaping still could not run script.
"""

import base64
import hashlib
import html
import re

from .runs import VERDICTS

# Characters that are invisible, reorder text or break layout: shown as
# escapes so that hostile text cannot disguise itself (bidi overrides, NUL,
# lone surrogates from a bad decode).
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]")


def _show_hidden(m):
    c = ord(m.group(0))
    return "\\x%02x" % c if c < 0x100 else "\\u%04x" % c


def visible(s):
    """s with hidden and layout-breaking characters written as escapes."""
    return _HIDDEN.sub(_show_hidden, "%s" % (s,))


def esc(s):
    """Text for element content."""
    return html.escape(visible(s), quote=True)


def attr(s):
    """Text for a double-quoted attribute value."""
    return html.escape(visible(s), quote=True).replace("\n", "&#10;")


_SAFE = re.compile(r"[A-Za-z0-9_.-]")


def token(s):
    """A deterministic, URL- and id-safe spelling of any string (percent
    encoding of its UTF-8 bytes, [A-Za-z0-9_.-] kept). Unlike
    urllib.parse.quote it does not change between Python versions."""
    out = []
    for ch in "%s" % (s,):
        if _SAFE.match(ch):
            out.append(ch)
        else:
            out.extend("%%%02X" % b for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def file_slug(s, limit=40):
    """A filename part for an untrusted name: safe characters of it plus a
    short hash of all of it, so two names never share a file."""
    raw = ("%s" % (s,)).encode("utf-8", "surrogatepass")
    keep = re.sub(r"[^A-Za-z0-9_.-]", "_", raw.decode("ascii", "replace"))[:limit].strip(".")
    return "%s-%s" % (keep or "x", hashlib.sha256(raw).hexdigest()[:8])


def data_uri(data, mime="application/octet-stream"):
    return "data:%s;base64,%s" % (mime, base64.b64encode(data).decode("ascii"))


def py_bytes_literal(data):
    """A Python bytes literal of data, printable ASCII kept."""
    out = ["b'"]
    for b in bytearray(data):
        c = chr(b)
        if c == "\\" or c == "'":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    out.append("'")
    return "".join(out)


def hexdump(data, limit=64 * 1024):
    """Offset, 16 bytes in hex, the same as ASCII ('.' for the rest)."""
    lines = []
    view = bytearray(data[:limit])
    for off in range(0, len(view), 16):
        chunk = view[off:off + 16]
        hx = " ".join("%02x" % b for b in chunk)
        asc = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        lines.append("%08x  %-47s  %s" % (off, hx, asc))
    if len(data) > limit:
        lines.append("... %d more bytes not shown" % (len(data) - limit))
    return "\n".join(lines)


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#222;background:#fff}
nav{padding:.5em 0;border-bottom:1px solid #ccc;margin-bottom:1em}
nav a{margin-right:1.2em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .45em;vertical-align:top}
th{background:#f0f0f0;text-align:left}
table.sortable th{cursor:pointer}
pre,code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;overflow:auto;max-height:40em;margin:.3em 0}
.meta td:first-child{font-weight:600;white-space:nowrap}
.muted{color:#777}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.4em .7em;margin:.5em 0}
.bad{color:#a00;font-weight:600}
.v{display:inline-block;padding:0 .4em;border-radius:3px;font-weight:600;font-size:12px}
.v-pass{background:#c8ecc8}.v-acceptable{background:#d8ecff}.v-oracle-limit,.v-out-of-scope{background:#e6e6e6}
.v-refused{background:#ffe3b0}.v-trace-mismatch{background:#ffd0a0}.v-mismatch{background:#ffb0a0}
.v-accept-vs-reject{background:#ff9a8a}.v-safety-mismatch{background:#d0001c;color:#fff}
.v-timeout,.v-crash{background:#600;color:#fff}.v-unknown{background:#999;color:#fff}
.matrix td.cell{text-align:center;min-width:9em}
.matrix td.cell a{color:inherit;text-decoration:none;display:block}
.matrix .n{font-size:12px}
.cov td{text-align:right;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.cov td.na{color:#999;background:#fafafa;text-align:center}
.cov td.hole{background:#e02020;color:#fff;font-weight:700}
.cov td.stock{background:#bcd7f5}
.sbs{table-layout:fixed;width:100%}
.sbs td{border:0;padding:0 .4em;white-space:pre-wrap;word-break:break-all;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.sbs td.ln{width:3.5em;text-align:right;color:#999;user-select:none}
.sbs tr.chg td.l{background:#ffe4e4}.sbs tr.chg td.r{background:#e2f7e2}
.sbs tr.chg td.ln{background:#f3f3f3}
.sbs span.x{background:#ffb3b3}.sbs td.r span.x{background:#9be29b}
.sbs tr.skip td{color:#777;font-style:italic;text-align:center;background:#f7f7f7}
.sbs th{font-weight:600}
.case{border:1px solid #ccc;border-radius:4px;padding:.4em .8em;margin:.7em 0}
.case h3{margin:.2em 0}
details>summary{cursor:pointer;color:#245}
.legend td:first-child{white-space:nowrap}
code.wrap{word-break:break-all;white-space:pre-wrap}
.matrix tbody th{max-width:24em;font-weight:600}
"""

# Sorting of tables with class "sortable" (a cell's data-sort beats its text)
# and the group/verdict filter of implementation pages (#group=<token> in the
# address selects a group). Reads only the page's own attributes.
SCRIPT = """(function(){
function key(td){var k=td.getAttribute('data-sort');return k===null?td.textContent:k;}
var ts=document.querySelectorAll('table.sortable');
Array.prototype.forEach.call(ts,function(t){
 if(!t.tHead||!t.tBodies.length)return;
 var ths=t.tHead.rows[0].cells;
 Array.prototype.forEach.call(ths,function(th,i){
  th.addEventListener('click',function(){
   var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
   var dir=th.getAttribute('data-dir')==='asc'?'desc':'asc';
   Array.prototype.forEach.call(ths,function(h){h.removeAttribute('data-dir');});
   th.setAttribute('data-dir',dir);
   rows.sort(function(a,b){
    var x=key(a.cells[i]),y=key(b.cells[i]),nx=parseFloat(x),ny=parseFloat(y);
    var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:(x<y?-1:(x>y?1:0));
    return dir==='asc'?c:-c;});
   rows.forEach(function(r){body.appendChild(r);});
  });
 });
});
var fg=document.getElementById('f-group'),fv=document.getElementById('f-verdict');
if(!fg||!fv)return;
function apply(){
 var g=fg.value,v=fv.value,n=0;
 Array.prototype.forEach.call(document.querySelectorAll('[data-case]'),function(e){
  var ok=(!g||e.getAttribute('data-group')===g)&&(!v||e.getAttribute('data-verdict')===v);
  e.hidden=!ok;if(ok)n++;});
 Array.prototype.forEach.call(document.querySelectorAll('[data-groupsec]'),function(s){
  s.hidden=!!g&&s.getAttribute('data-groupsec')!==g;});
 var c=document.getElementById('f-count');if(c)c.textContent=n+' shown';
}
function fromHash(){
 var h=location.hash.slice(1);
 if(h.indexOf('group=')===0){fg.value=h.slice(6);if(fg.value!==h.slice(6))fg.value='';}
 apply();
}
fg.addEventListener('change',function(){
 history.replaceState(null,'',fg.value?'#group='+fg.value:location.pathname+location.search);apply();});
fv.addEventListener('change',apply);
window.addEventListener('hashchange',fromHash);
fromHash();
})();"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       "script-src 'sha256-%s'; base-uri 'none'; form-action 'none'" % _SCRIPT_HASH)


def page(title, body, generated, depth=0, nav=None):
    """A whole page. title is plain text (escaped here); body is HTML built
    with esc()/attr(); generated is the generated-at line (plain text); depth
    is how many folders below the report root the page lives; nav is a list
    of (label, path from the report root) for the top bar."""
    up = "../" * depth
    links = "".join('<a href="%s">%s</a>' % (attr(up + href), esc(label))
                    for label, href in (nav or []))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"%s\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n<nav>%s</nav>\n%s\n"
            "<p class=\"muted\" id=\"generated\">%s</p>\n<script>%s</script>\n</body>\n</html>\n"
            % (attr(CSP), esc(title), STYLE, links, body, esc(generated), SCRIPT))


def verdict_badge(v):
    cls = v if v in VERDICTS else "unknown"
    return '<span class="v v-%s">%s</span>' % (cls, esc(v))


def table(headers, rows, cls="", sortable=False):
    """headers: plain texts; rows: lists of HTML cell strings (each a full
    <td ...>...</td> or plain HTML content wrapped in <td>)."""
    classes = " ".join(c for c in (cls, "sortable" if sortable else "") if c)
    out = ['<table%s>' % (' class="%s"' % classes if classes else "")]
    out.append("<thead><tr>%s</tr></thead><tbody>" % "".join("<th>%s</th>" % esc(h) for h in headers))
    for row in rows:
        out.append("<tr>%s</tr>" % "".join(c if c.startswith("<td") else "<td>%s</td>" % c for c in row))
    out.append("</tbody></table>")
    return "\n".join(out)
