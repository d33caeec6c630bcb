"""Command line of the oracle.

    python3 -m brine_oracle load FILE|- [--unpickler c|py]
        prints the canonical text; exit 0 loaded, 1 rejected (the text is
        then an error document), 2 usage or I/O error.
    python3 -m brine_oracle load --batch DIR [--unpickler c|py]
        for every regular file in DIR, sorted by name, prints a line
        "== <filename>" followed by its canonical text; exit 0 unless DIR
        cannot be read (2).

    python3 -m brine_oracle load --one-shot [--unpickler c|py]
        the adapter protocol's one-shot mode (docs/adapter-protocol.md
        section 2): the pickle on stdin, its canonical document on stdout,
        exit 0 loaded, 1 rejected (2: I/O error, a crash for the runner).

Options: --max-output BYTES (canonical text limit, default 1 GiB),
--memory-limit MB (address-space limit for this process, default none:
CPython allocates eagerly on some tiny inputs, and a case that hits the limit
is reported as `error resource-limit`), --quiet (no messages on stderr).

    python3 -m brine_oracle serve [--unpickler c|py] [--memory-limit MB]
                                  [--timeout SECONDS] [--no-trace]
                                  [--max-output BYTES] [--quiet]
        the adapter protocol v1, persistent mode (brine_oracle.worker):
        hello, then one response frame per request frame until EOF.
        --memory-limit defaults to 2048 (0: none), --timeout (per-case CPU
        seconds) to 10 (0: none).
"""

import argparse
import os
import sys

from . import canon
from . import load_result, UNPICKLERS, HAVE_C_UNPICKLER, \
    DEFAULT_UNPICKLER, NO_C_UNPICKLER
from .limits import set_memory_limit


def _write(out, text):
    out.write(text.encode("ascii"))


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    # `adapt` installs its import guard and patches pickle before it imports
    # the user's module, so it parses its own arguments.
    if argv and argv[0] == "adapt":
        from .adapt_main import main as adapt_main
        return adapt_main(argv[1:])
    p = argparse.ArgumentParser(prog="python3 -m brine_oracle",
                                description="brine's CPython oracle")
    sub = p.add_subparsers(dest="command")
    lp = sub.add_parser("load", help="print the canonical text of pickles")
    lp.add_argument("path", nargs="?", help="pickle file, or - for stdin")
    lp.add_argument("--batch", metavar="DIR",
                    help="load every file in DIR (sorted)")
    lp.add_argument("--unpickler", choices=UNPICKLERS,
                    default=DEFAULT_UNPICKLER)
    lp.add_argument("--max-output", type=int, default=canon.DEFAULT_MAX_OUTPUT)
    lp.add_argument("--memory-limit", type=int, default=0, metavar="MB")
    lp.add_argument("--quiet", action="store_true")
    lp.add_argument("--one-shot", action="store_true",
                    help="adapter one-shot mode: the pickle on stdin")
    from . import worker
    sp = sub.add_parser("serve", help="adapter protocol v1 (persistent)")
    sp.add_argument("--unpickler", choices=UNPICKLERS,
                    default=DEFAULT_UNPICKLER)
    sp.add_argument("--memory-limit", type=int,
                    default=worker.DEFAULT_MEMORY_LIMIT_MB, metavar="MB")
    sp.add_argument("--timeout", type=float, default=worker.DEFAULT_TIMEOUT,
                    metavar="SECONDS")
    sp.add_argument("--no-trace", action="store_true")
    sp.add_argument("--max-output", type=int, default=canon.DEFAULT_MAX_OUTPUT)
    sp.add_argument("--quiet", action="store_true")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if args.unpickler == "c" and not HAVE_C_UNPICKLER:
        sys.stderr.write("brine_oracle %s: %s\n" % (args.command or "",
                                                   NO_C_UNPICKLER))
        return 2
    if args.command == "serve":
        return worker.serve(args.unpickler, args.memory_limit, args.timeout,
                            not args.no_trace, args.max_output, args.quiet)
    if args.command != "load":
        p.print_usage(sys.stderr)
        return 2
    if args.one_shot:
        if args.path not in (None, "-") or args.batch is not None:
            sys.stderr.write("brine_oracle load: --one-shot reads stdin\n")
            return 2
        args.path = "-"
    if (args.path is None) == (args.batch is None):
        sys.stderr.write("brine_oracle load: give exactly one of FILE, - "
                         "or --batch DIR\n")
        return 2
    if args.memory_limit:
        set_memory_limit(args.memory_limit)
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else sys.stdout

    def note(name, r):
        if r.error and not args.quiet:
            tag = "BUG in the oracle: " if r.error == "internal" else ""
            sys.stderr.write("brine_oracle: %s: %s%s\n"
                             % (name, tag, r.message()))

    if args.batch is not None:
        try:
            names = sorted(n for n in os.listdir(args.batch)
                           if os.path.isfile(os.path.join(args.batch, n)))
        except OSError as e:
            sys.stderr.write("brine_oracle: %s\n" % e)
            return 2
        for n in names:
            try:
                with open(os.path.join(args.batch, n), "rb") as f:
                    data = f.read()
            except OSError as e:
                sys.stderr.write("brine_oracle: %s\n" % e)
                return 2
            r = load_result(data, args.unpickler, args.max_output)
            note(n, r)
            _write(out, "== %s\n" % n)
            _write(out, r.text)
            out.flush()
        return 0

    try:
        if args.path == "-":
            inp = sys.stdin.buffer if hasattr(sys.stdin, "buffer") \
                else sys.stdin
            data = inp.read()
        else:
            with open(args.path, "rb") as f:
                data = f.read()
    except OSError as e:
        sys.stderr.write("brine_oracle: %s\n" % e)
        return 2
    r = load_result(data, args.unpickler, args.max_output)
    note(args.path, r)
    _write(out, r.text)
    out.flush()
    return 0 if r.ok else 1


def _main_guarded():
    # Exit 1 means "rejected" in one-shot mode: an oracle failure must not
    # look like that.  Anything unexpected exits 3 (a crash for the runner).
    try:
        return main()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: B902
        import traceback
        traceback.print_exc()
        return 3


if __name__ == "__main__":
    sys.exit(_main_guarded())
