#!/bin/sh
# Prints the absolute path of every CPython 3.6+ interpreter on this machine,
# one per line, deduplicated by real path: PATH, Debian's /usr/bin/python3.*,
# pyenv's ~/.pyenv/versions/*. None is required; this lists what exists.
{
  for p in /usr/bin/python3 /usr/bin/python3.[0-9]* /usr/local/bin/python3.[0-9]* \
           "$HOME"/.pyenv/versions/3.*/bin/python3 $(command -v python3 2>/dev/null); do
    [ -x "$p" ] || continue
    case "$p" in *-config) continue ;; esac
    # pyenv's shims are shell scripts that re-dispatch: skip them
    head -c 2 "$p" | grep -q '#!' && continue
    "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 6) else 1)' 2>/dev/null || continue
    echo "$(readlink -f "$p") $p"
  done
} | sort -u -k1,1 | cut -d' ' -f2
