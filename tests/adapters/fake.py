"""A misbehaving-on-demand adapter for tests/test_adapter.c (protocol v1).

    fake.py [--name NAME] [--hello KIND] [--batch K] [--delay S]
            [--fail-start-if PATH] [--one-shot]

It answers every request with a document that names the request's bytes,
so the test can tell which case an answer belongs to:

    brine-canonical 1 raw
    fake <hex of the request>
    --- trace
    1 persid                  (only when the request's length is odd)

Some requests make it misbehave instead (the request is the whole pickle):

    HANG        never answers
    HANGKIDS    starts a `sleep` child, writes its pid to $FAKE_PIDFILE, hangs
    EXIT3       exits with status 3
    SEGV        kills itself with SIGSEGV
    HUGE        writes a frame header claiming 2,000,000,000 bytes, then hangs
    CLAIM       writes a header claiming 1,300,000,000 bytes and 10 of them, hangs
    SHORT       writes a header claiming 100 bytes and 10 of them, exits 0
    GARBAGE     answers with a frame that is not a canonical document
    NOISE       writes unframed text on stdout (desynchronises the stream)
    ERROR       answers `error truncated`
    BIG:N       answers a document of N payload bytes
    ENV:KEY     answers `fake <hex of $KEY>`
    STDERR      writes a line to stderr, then answers normally
    CLOSEIN     closes its stdin, answers, exits 0 half a second later
    QUIT        answers, then exits 0

--hello KIND replaces the hello: badfirst, badname, nolevel, huge, exit
(exits before any hello), hang (never greets), unknownkeys (valid, with
extra keys). --batch K holds answers back while more requests are already
waiting, up to K of them (like the oracle worker); --delay S sleeps S
seconds per case. --fail-start-if PATH: exit 1 before the hello when PATH
exists. --one-shot: the request on stdin, the document on stdout, exit 0,
or 1 for ERROR (LIE0: error document with exit 0; LIE1: a normal document
with exit 1).

Nothing here is a real unpickler: requests are never interpreted as pickles.
"""

import binascii
import os
import select
import signal
import struct
import subprocess
import sys
import time

OUT = sys.stdout.buffer
IN = sys.stdin.buffer.raw  # unbuffered, so select() on fd 0 sees what waits


def doc(data):
    body = "brine-canonical 1 raw\nfake %s\n--- trace\n" % \
        binascii.hexlify(data).decode("ascii")
    if len(data) % 2:
        body += "1 persid\n"
    return body.encode("ascii")


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = IN.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def hang():
    while True:
        time.sleep(3600)


HELLOS = {
    "badfirst": b"brine-adapter 2\nname fake\nversion 0\nlevel raw\nfeatures\n",
    "badname": b"brine-adapter 1\nname Fake!\nversion 0\nlevel raw\nfeatures\n",
    "nolevel": b"brine-adapter 1\nname fake\nversion 0\nfeatures\n",
    "huge": b"brine-adapter 1\nname fake\nx " + b"y" * 70000 + b"\n",
    "unknownkeys": b"brine-adapter 1\ncolour blue\nname fake\nversion 1.2\n"
                   b"level value\nfeatures trace fast\nzzz\n",
}


def answer(data, out):
    """The response frame for `data` (bytes to write), or None after acting."""
    if data == b"HANG":
        hang()
    if data == b"HANGKIDS":
        child = subprocess.Popen(["sleep", "3600"])
        with open(os.environ["FAKE_PIDFILE"], "w") as f:
            f.write("%d\n" % child.pid)
        hang()
    if data == b"EXIT3":
        out.flush()
        os._exit(3)
    if data == b"SEGV":
        out.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
        hang()
    if data == b"HUGE":
        out.write(struct.pack("<I", 2000000000) + b"x" * 10)
        out.flush()
        hang()
    if data == b"CLAIM":
        out.write(struct.pack("<I", 1300000000) + b"x" * 10)
        out.flush()
        hang()
    if data == b"SHORT":
        out.write(struct.pack("<I", 100) + b"x" * 10)
        out.flush()
        os._exit(0)
    if data == b"GARBAGE":
        return frame(b"hello world, this is not a document\n")
    if data == b"NOISE":
        return b"oops, a stray print\n"
    if data == b"ERROR":
        return frame(b"brine-canonical 1 raw\nerror truncated\n--- trace\n")
    if data.startswith(b"BIG:"):
        n = int(data[4:])
        return frame(b"brine-canonical 1 raw\nbig " + b"a" * n + b"\n--- trace\n")
    if data.startswith(b"ENV:"):
        val = os.environ.get(data[4:].decode("ascii"), "").encode()
        return frame(doc(val))
    if data == b"STDERR":
        sys.stderr.write("fake: a line on stderr\n")
        sys.stderr.flush()
    return frame(doc(data))


def persistent(args):
    hello = HELLOS.get(args.get("hello"))
    if args.get("hello") == "exit":
        os._exit(1)
    if args.get("hello") == "hang":
        hang()
    if hello is None:
        hello = ("brine-adapter 1\nname %s\nversion 0\nlevel raw\n"
                 "features trace\n" % args.get("name", "fake")).encode()
    OUT.write(frame(hello))
    OUT.flush()
    batch = int(args.get("batch", "1"))
    delay = float(args.get("delay", "0"))
    held = []
    while True:
        head = read_exact(4)
        if head is None:
            break
        data = read_exact(struct.unpack("<I", head)[0])
        if data is None:
            break
        if delay:
            time.sleep(delay)
        if data == b"QUIT":
            OUT.write(b"".join(held) + answer(data, OUT))
            OUT.flush()
            os._exit(0)
        if data == b"CLOSEIN":
            os.close(0)
            OUT.write(b"".join(held) + answer(data, OUT))
            OUT.flush()
            time.sleep(0.5)
            os._exit(0)
        held.append(answer(data, OUT))
        # hold answers while more requests wait
        waiting = bool(select.select([0], [], [], 0)[0])
        if len(held) >= batch or not waiting:
            OUT.write(b"".join(held))
            OUT.flush()
            held = []
    OUT.write(b"".join(held))
    OUT.flush()


def one_shot():
    data = IN.read()
    if data in (b"HANG", b"EXIT3", b"SEGV"):
        answer(data, OUT)
    if data == b"GARBAGE":
        OUT.write(b"hello world\n")
        return 0
    if data == b"ERROR":
        OUT.write(b"brine-canonical 1 raw\nerror truncated\n")
        return 1
    if data == b"LIE0":
        OUT.write(b"brine-canonical 1 raw\nerror truncated\n")
        return 0
    if data == b"LIE1":
        OUT.write(doc(data).split(b"--- trace\n")[0])
        return 1
    OUT.write(doc(data).split(b"--- trace\n")[0])
    return 0


def main():
    args = {}
    argv = sys.argv[1:]
    while argv:
        a = argv.pop(0)
        if a == "--one-shot":
            args["one-shot"] = True
        else:
            args[a.lstrip("-")] = argv.pop(0)
    path = args.get("fail-start-if")
    if path and os.path.exists(path):
        sys.exit(1)
    if args.get("one-shot"):
        code = one_shot()
        OUT.flush()
        sys.exit(code)
    persistent(args)


if __name__ == "__main__":
    main()
