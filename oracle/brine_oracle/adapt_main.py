"""Command line of the generic adapter (brine_oracle.adapt).

    python3 -m brine_oracle.adapt_main module:attr [--keep-find-class]
                                       [--one-shot] [--path DIR]...
                                       [--name NAME] [--no-trace]
                                       [--memory-limit MB] [--timeout S]
                                       [--max-output BYTES] [--quiet]

Serves ``attr`` of ``module`` (an Unpickler subclass, or a ``load(bytes)``
function; ``attr`` may be dotted) through adapter protocol v1
(docs/adapter-protocol.md): persistent mode by default, one-shot mode with
--one-shot.  The hello names it ``user-<module>.<attr>`` lowercased, with
every character outside [a-z0-9.-] made a '-' (--name overrides), version
``<the module's __version__> (Python X.Y.Z)``, level raw, feature trace
when brine_oracle.trace is available (--no-trace: never).

--path DIR puts DIR first on sys.path (repeatable); the current directory is
already there.  --keep-find-class keeps the user's find_class as a policy
(its refusals are ``error forbidden``; see brine_oracle.adapt).
--memory-limit (default 2048 MB, 0: none) and --timeout (per-case CPU
seconds, default 10, 0: none) bound each case; both answer
``error resource-limit``.

Order matters and is fixed here: the audit hook is installed and pickle is
patched *before* the user's module is imported.

Exit status: 0 at EOF (persistent) or loaded (one-shot), 1 rejected
(one-shot) or stdin ended inside a frame, 2 usage error or the target cannot
be served, 3 an adapter bug.
"""

import argparse
import importlib
import os
import sys

from .limits import set_memory_limit


def _user_version(module_name, mod):
    v = getattr(mod, "__version__", None)
    if v is None and "." in module_name:
        top = sys.modules.get(module_name.split(".")[0])
        v = getattr(top, "__version__", None)
    v = str(v) if v is not None else "unknown"
    v = " ".join(v.split()) or "unknown"   # one line
    return "%s (Python %s)" % (v, sys.version.split()[0])


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m brine_oracle.adapt_main",
        description="serve a Python unpickler through brine's adapter "
                    "protocol v1, never running what a pickle names")
    p.add_argument("spec", metavar="module:attr",
                   help="an Unpickler subclass or a load(bytes) function")
    p.add_argument("--keep-find-class", action="store_true",
                   help="keep the user's find_class as a policy "
                        "(refusals: error forbidden)")
    p.add_argument("--one-shot", action="store_true",
                   help="one case: the pickle on stdin, the document on "
                        "stdout, exit 0 loaded / 1 rejected")
    p.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="put DIR first on sys.path (repeatable)")
    p.add_argument("--name", help="the hello's implementation name")
    p.add_argument("--no-trace", action="store_true")
    p.add_argument("--memory-limit", type=int, default=2048, metavar="MB")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--max-output", type=int, default=None, metavar="BYTES")
    p.add_argument("--quiet", action="store_true")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0

    module_name, sep, attr = args.spec.partition(":")
    if not sep or not module_name or not attr:
        sys.stderr.write("brine adapt: give module:attr, e.g. "
                         "mypkg.safe:SafeUnpickler\n")
        return 2
    if args.name is not None:
        ok = args.name and all("a" <= c <= "z" or "0" <= c <= "9"
                               or c in ".-" for c in args.name)
        if not ok:
            sys.stderr.write("brine adapt: --name must match [a-z0-9.-]+\n")
            return 2

    # 1. the guard and the patch, before any user code
    from . import adapt
    from . import canon
    adapt.install_guard()
    adapt.patch_pickle()

    # 2. the user's module (its own code: not armed)
    for d in reversed(args.path):
        sys.path.insert(0, os.path.abspath(d))
    try:
        mod = importlib.import_module(module_name)
        target = mod
        for part in attr.split("."):
            target = getattr(target, part)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: B902
        sys.stderr.write("brine adapt: cannot load %s: %s: %s\n"
                         % (args.spec, type(e).__name__, e))
        return 2
    try:
        adapter = adapt.Adapter(
            target, keep=args.keep_find_class, trace=not args.no_trace,
            max_output=(args.max_output if args.max_output is not None
                        else canon.DEFAULT_MAX_OUTPUT),
            timeout=args.timeout)
    except TypeError as e:
        sys.stderr.write("brine adapt: %s\n" % e)
        return 2
    if args.memory_limit:
        set_memory_limit(args.memory_limit)

    def log(msg):
        if not args.quiet:
            try:
                sys.stderr.write(msg)
                sys.stderr.flush()
            except Exception:  # noqa: B902
                pass

    if not adapt.HAVE_AUDIT:
        log("brine adapt: no CPython audit events here (they need CPython "
            "3.8+): the stub patching and the import blocker are the only "
            "guards\n")
    if args.one_shot:
        return adapt.one_shot(adapter, log)
    name = args.name or adapt.adapter_name(args.spec)
    return adapt.serve(adapter, name, _user_version(module_name, mod), log)


def _main_guarded():
    try:
        return main()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: B902 - exit 1 means "rejected"
        import traceback
        traceback.print_exc()
        return 3


if __name__ == "__main__":
    sys.exit(_main_guarded())
