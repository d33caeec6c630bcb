"""What the pages ask of the brine binary (`--brine`) and of the source
tree: the version line, disassemblies, the opcode table.

brine only ever disassembles here (`brine dis` reads bytes, runs nothing
they name); every call has a timeout, and its output is cut to a bounded
size before it reaches a page.
"""

import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

DIS_MAX_LINES = 400
DIS_MAX_BYTES = 64 * 1024


def _run(argv, timeout):
    """(exit status, stdout + stderr as text) or (None, why)."""
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    except OSError as e:
        return None, "cannot run %s: %s" % (argv[0], e.strerror or e)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return None, "%s did not finish in %d s" % (" ".join(argv[:2]), timeout)
    text = (out + err).decode("utf-8", "replace")
    return p.returncode, text


def cut(text, max_lines=DIS_MAX_LINES, max_bytes=DIS_MAX_BYTES):
    """text bounded in lines and bytes, with a note saying what was cut."""
    lines = text.split("\n")
    note = ""
    if len(lines) > max_lines:
        note = "... %d more lines not shown" % (len(lines) - max_lines)
        lines = lines[:max_lines]
    out = "\n".join(lines)
    if len(out) > max_bytes:
        out = out[:max_bytes]
        note = "... cut at %d characters" % max_bytes
    return out + ("\n" + note if note else "")


class Brine(object):
    def __init__(self, path):
        self.path = path
        self._dis = {}

    def version(self):
        if not self.path:
            return ""
        rc, text = _run([self.path, "version"], 20)
        return text.strip().split("\n")[0] if rc == 0 else ""

    def dis(self, case_path):
        """Disassembly of a case file (None without a brine binary)."""
        if not self.path:
            return None
        if case_path in self._dis:
            return self._dis[case_path]
        if not case_path or not os.path.isfile(case_path):
            text = "(no disassembly: %s is not a file here)" % (case_path or "the case has no path")
        else:
            # absolute: a path from the run file never reads as an option or as "-"
            _, text = _run([self.path, "dis", os.path.abspath(case_path)], 30)
            text = cut(text.rstrip("\n"))
        self._dis[case_path] = text
        return text

    def opcodes(self):
        """[{name, code, proto, summary}] from `brine opcodes --json`, or None."""
        if not self.path:
            return None
        rc, text = _run([self.path, "opcodes", "--json"], 20)
        if rc != 0:
            return None
        try:
            table = json.loads(text[:text.rindex("]") + 1])
            return [{"name": str(o["name"]), "code": int(o["code"]), "proto": int(o["proto"]),
                     "summary": str(o.get("summary", ""))} for o in table]
        except (ValueError, KeyError, TypeError):
            return None


_OPDEF = re.compile(r'^PKL_OPCODE\(\s*(\w+)\s*,\s*0x([0-9a-fA-F]+)\s*,\s*\w+\s*,\s*(\d+)\s*,'
                    r'\s*"[^"]*"\s*,\s*"[^"]*"\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)')


def spec_opcodes(path=None):
    """The opcode table from spec/opcodes.def of this source tree, or None."""
    path = path or os.path.join(REPO, "spec", "opcodes.def")
    try:
        with open(path, encoding="utf-8") as f:
            rows = [_OPDEF.match(line) for line in f]
    except OSError:
        return None
    table = [{"name": m.group(1), "code": int(m.group(2), 16), "proto": int(m.group(3)),
              "summary": m.group(4)} for m in rows if m]
    return table or None
