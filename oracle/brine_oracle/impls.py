"""Which pickle implementations can brine run on this machine?

    python3 -m brine_oracle.impls [--json] [--brine PATH]

Lists, with a stable name, a version and the command line (argv, plus the
environment it needs) that starts its adapter (docs/adapter-protocol.md):

* ``pkl``: libpkl, the bundled C implementation (``brine serve``);
* ``cpython-X.Y-c`` and ``cpython-X.Y-py``: CPython's C unpickler
  (``_pickle``) and pure-Python unpickler (``pickle._Unpickler``), for every
  CPython 3.x found (servable from 3.6: the oracle's floor);
* ``cpython-2.7-c`` / ``cpython-2.7-py`` when a 2.7 is found: cPickle and
  pickle.Unpickler, served by the same worker with Python 2 semantics
  (brine_oracle.py27, docs/oracle-py27.md: a py2 str loads as bytes,
  protocols 0-2).  They are implementations, not oracles of the corpus.
* ``pypy-X.Y-py`` for PyPy 3 (its unpickler is the pure-Python one).

Interpreters come from PATH, ``/usr/bin/python*``, ``/usr/local/bin``,
``~/.pyenv/versions/*/bin`` and ``pypy3``; each is used by absolute path,
pyenv's shims (shell scripts that re-dispatch) are skipped, and two paths to
one file count once.  Each is asked what it is (a few lines of Python run
with ``-E -s``; nothing else is imported).  When two interpreters have the
same name (say Debian's 3.11 and pyenv's 3.11), the newest patch release is
listed and the others are given as ``alternatives``.

Runs on Python 3.6+.  Text output: one implementation per line,
``name  version  command`` (the command shell-quoted, with its environment
as ``VAR=value`` prefixes); for one that cannot be served, ``-`` and the
reason in parentheses.  ``--json``: a list of objects with keys name,
version, implementation (libpkl|cpython|pypy), unpickler (c|py|null),
python, servable, argv, env, note and alternatives.
"""

import argparse
import glob
import json
import os
import re
import shlex
import subprocess
import sys

__all__ = ["discover", "find_interpreters", "probe", "main"]

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE_DIR = os.path.dirname(HERE)        # the directory holding brine_oracle
SOURCE_DIR = os.path.dirname(ORACLE_DIR)  # the brine source tree

_NAME_RX = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?$")

# Runs under 2.7 and 3.x: implementation, version, whether the C unpickler
# exists, PyPy's own version.
_PROBE = (
    "import sys, platform\n"
    "v = sys.version_info\n"
    "c = 0\n"
    "try:\n"
    "    if v[0] >= 3:\n"
    "        import pickle, _pickle\n"
    "        c = int(pickle.Unpickler is _pickle.Unpickler)\n"
    "    else:\n"
    "        import cPickle\n"
    "        c = 1\n"
    "except Exception:\n"
    "    c = 0\n"
    "pv = getattr(sys, 'pypy_version_info', None)\n"
    "pv = '%d.%d.%d' % tuple(pv[:3]) if pv else '-'\n"
    "impl = platform.python_implementation()\n"
    "sys.stdout.write('%s %d.%d.%d %s %d %s\\n' % (impl, v[0], v[1], v[2],"
    " sys.version.split()[0], c, pv))\n"
)


def _is_script(path):
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def _candidates():
    """Absolute paths that may be interpreters, in discovery order."""
    seen = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not os.path.isabs(d):
            continue
        for pat in ("python", "python[0-9]*", "pypy", "pypy[0-9]*"):
            seen.extend(sorted(glob.glob(os.path.join(d, pat))))
    for pat in ("/usr/bin/python[0-9]*", "/usr/bin/pypy*",
                "/usr/local/bin/python[0-9]*", "/usr/local/bin/pypy*"):
        seen.extend(sorted(glob.glob(pat)))
    home = os.path.expanduser("~")
    for pat in ("python", "python[0-9]*", "pypy", "pypy[0-9]*"):
        seen.extend(sorted(glob.glob(os.path.join(
            home, ".pyenv", "versions", "*", "bin", pat))))
    return seen


def find_interpreters():
    """[(path, realpath)] of executables that look like interpreters,
    deduplicated by real path, shims and scripts skipped."""
    out = []
    real_seen = set()
    for p in _candidates():
        if not _NAME_RX.match(os.path.basename(p)):
            continue
        if "/shims/" in p or not os.path.isfile(p) or \
                not os.access(p, os.X_OK):
            continue
        real = os.path.realpath(p)
        if real in real_seen or _is_script(real):
            continue
        real_seen.add(real)
        out.append((os.path.abspath(p), real))
    return out


def probe(path, timeout=20):
    """What the interpreter at `path` is: a dict with impl (CPython, PyPy),
    version (X.Y.Z), full (sys.version's first word), c_pickle (bool), pypy
    (PyPy's own version or None); None when it does not answer."""
    try:
        p = subprocess.Popen([path, "-E", "-s", "-c", _PROBE],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return None
    except OSError:
        return None
    if p.returncode != 0:
        return None
    parts = out.decode("ascii", "replace").split()
    if len(parts) != 5:
        return None
    impl, ver, full, c, pv = parts
    try:
        vt = tuple(int(x) for x in ver.split("."))
    except ValueError:
        return None
    return {"impl": impl, "version": ver, "version_tuple": vt, "full": full,
            "c_pickle": c == "1", "pypy": None if pv == "-" else pv}


def _brine_version(brine):
    try:
        out = subprocess.check_output([brine, "version"],
                                      stdin=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"libpkl (\S+?),", out.decode("ascii", "replace"))
    return m.group(1) if m else None


def _find_brine():
    for p in (os.path.join(SOURCE_DIR, "build", "brine"),):
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "brine")
        if os.path.isabs(p) and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def _entry(name, version, implementation, unpickler, python, servable,
           argv, env, note, alternatives=()):
    return {"name": name, "version": version,
            "implementation": implementation, "unpickler": unpickler,
            "python": python, "servable": servable, "argv": argv,
            "env": env, "note": note, "alternatives": list(alternatives)}


def _pkl_entry(brine):
    if brine is None:
        return _entry("pkl", "unknown", "libpkl", None, None, False, None, {},
                      "brine is not built (cmake -B build -S . && "
                      "cmake --build build), or pass --brine PATH")
    brine = os.path.abspath(brine)
    version = _brine_version(brine)
    if version is None:
        return _entry("pkl", "unknown", "libpkl", None, None, False, None, {},
                      "%s version did not answer" % brine)
    return _entry("pkl", version, "libpkl", None, None, True,
                  [brine, "serve"], {}, "")


def _python_entries(path, info, alternatives):
    """The entries of one interpreter."""
    vt = info["version_tuple"]
    xy = "%d.%d" % vt[:2]
    env = {"PYTHONPATH": ORACLE_DIR}
    out = []
    if info["impl"] == "CPython":
        for u in ("c", "py"):
            name = "cpython-%s-%s" % (xy, u)
            if u == "c" and not info["c_pickle"]:
                out.append(_entry(name, info["full"], "cpython", u, path,
                                  False, None, {},
                                  "this interpreter has no C unpickler",
                                  alternatives))
                continue
            if vt[:2] == (2, 7):
                out.append(_entry(
                    name, info["full"], "cpython", u, path, True,
                    [path, "-m", "brine_oracle", "serve", "--unpickler", u],
                    env, "Python 2 semantics (docs/oracle-py27.md)",
                    alternatives))
            elif vt < (3, 6):
                out.append(_entry(name, info["full"], "cpython", u, path,
                                  False, None, {},
                                  "the oracle needs Python 2.7 or 3.6+",
                                  alternatives))
            else:
                out.append(_entry(
                    name, info["full"], "cpython", u, path, True,
                    [path, "-m", "brine_oracle", "serve", "--unpickler", u],
                    env, "", alternatives))
    elif info["impl"] == "PyPy":
        name = "pypy-%s-py" % xy
        version = "%s (PyPy %s)" % (info["full"], info["pypy"])
        if vt < (3, 6):
            out.append(_entry(name, version, "pypy", "py", path, False, None,
                              {}, "the oracle needs Python 3.6+",
                              alternatives))
        else:
            out.append(_entry(
                name, version, "pypy", "py", path, True,
                [path, "-m", "brine_oracle", "serve", "--unpickler", "py"],
                env, "", alternatives))
    return out


def discover(brine=None):
    """Every implementation, `pkl` first, then CPython and PyPy by version."""
    if brine is None:
        brine = _find_brine()
    entries = [_pkl_entry(brine)]
    best = {}    # (impl, X.Y) -> (version_tuple, path, info, [alternatives])
    order = []
    for path, real in find_interpreters():
        info = probe(path)
        if info is None or info["impl"] not in ("CPython", "PyPy"):
            continue
        key = (info["impl"], info["version_tuple"][:2])
        cur = best.get(key)
        if cur is None:
            best[key] = [info["version_tuple"], path, info, []]
            order.append(key)
        elif info["version_tuple"] > cur[0]:
            cur[3].append(cur[1])
            cur[0], cur[1], cur[2] = info["version_tuple"], path, info
        else:
            cur[3].append(path)
    rank = {"CPython": 0, "PyPy": 1}
    for key in sorted(order, key=lambda k: (rank[k[0]], k[1])):
        _, path, info, alts = best[key]
        entries.extend(_python_entries(path, info, alts))
    return entries


def _command_text(e):
    if not e["argv"]:
        return "-  (%s)" % e["note"]
    env = " ".join("%s=%s" % (k, shlex.quote(v))
                   for k, v in sorted(e["env"].items()))
    cmd = " ".join(shlex.quote(a) for a in e["argv"])
    return (env + " " + cmd) if env else cmd


def format_text(entries):
    wn = max(len(e["name"]) for e in entries)
    wv = max(len(e["version"]) for e in entries)
    return "".join("%-*s  %-*s  %s\n" % (wn, e["name"], wv, e["version"],
                                         _command_text(e))
                   for e in entries)


def format_json(entries):
    return "[\n" + ",\n".join("  " + json.dumps(e, sort_keys=False)
                              for e in entries) + "\n]\n"


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m brine_oracle.impls",
        description="list the pickle implementations brine can run here")
    p.add_argument("--json", action="store_true")
    p.add_argument("--brine", metavar="PATH",
                   help="the brine executable (default: build/brine of the "
                        "source tree, else brine on PATH)")
    args = p.parse_args(argv)
    entries = discover(args.brine)
    sys.stdout.write(format_json(entries) if args.json
                     else format_text(entries))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
