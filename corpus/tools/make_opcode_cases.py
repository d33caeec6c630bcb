#!/usr/bin/env python3
"""Write the `opcodes` group's case files into a staging directory.

    make_opcode_cases.py OUTDIR
    regen.py --add opcodes --from OUTDIR --description "..."

For every opcode of pickletools.opcodes and every protocol from the one
that introduced it to 5, one minimal pickle that executes the opcode
(`op-<NAME>-p<N>.pkl`); protocols 2+ start with PROTO N, 0 and 1 have no
header.  Plus `allops-p<N>.pkl`: one object graph that makes this
interpreter's C pickler emit most opcodes of protocol N.  Each .pkl has a
side-car .json (description, protocol) that --add reads.

The pickles are written here by hand (the bytes below); only the allops
cases come from pickle.dumps.  Nothing is ever loaded.  Every opcode must
have a snippet: the script fails when pickletools knows an opcode it does
not (a new protocol).
"""

import collections
import json
import os
import pickle
import pickletools
import struct
import sys

# name -> (snippet before STOP, what it builds).  Snippets use only opcodes
# of the opcode's own protocol or lower, so one snippet serves every
# protocol where the opcode is valid.
S = {
    "INT": (b"I42\n", "int 42 as a decimal line"),
    "LONG": (b"L12345678901234567890L\n", "a long decimal line, L suffix"),
    "STRING": (b"S'abc'\n", "a quoted py2 str"),
    "UNICODE": (b"Vab\\u20ac\n", "raw-unicode-escape text line"),
    "FLOAT": (b"F1.5\n", "float as a decimal line"),
    "NONE": (b"N", "None"),
    "PERSID": (b"Pkey\n", "a persistent id, text form"),
    "GLOBAL": (b"cmod\nname\n", "a global, two text lines"),
    "INST": (b"(imod\nname\n", "INST: class from lines, args above MARK"),
    "REDUCE": (b"cmod\nname\n(tR", "call a global with ()"),
    "BUILD": (b"cmod\nname\n(tR(dS'a'\nI1\nsb", "set state with a dict"),
    "APPEND": (b"(lI1\na", "append to a list"),
    "LIST": (b"(I1\nl", "list from the items above MARK"),
    "DICT": (b"(I1\nI2\nd", "dict from pairs above MARK"),
    "SETITEM": (b"(dI1\nI2\ns", "set one dict item"),
    "APPENDS": (b"(l(I1\nI2\ne", "append the items above MARK"),
    "TUPLE": (b"(I1\nI2\nt", "tuple from the items above MARK"),
    "POP": (b"I1\nI2\n0", "discard the top item"),
    "DUP": (b"(I1\n2t", "duplicate the top item"),
    "MARK": (b"(t", "MARK then an empty tuple"),
    "POP_MARK": (b"N(I1\nI2\n1", "discard everything above MARK"),
    "GET": (b"(I1\np0\ng0\nt", "memo get, decimal key"),
    "PUT": (b"I1\np7\n", "memo put, decimal key"),
    "STOP": (b"N", "STOP after NONE"),
    # protocol 1
    "BININT": (b"J\xff\xff\xff\xff", "signed 4-byte int -1"),
    "BININT1": (b"K\xff", "1-byte unsigned int 255"),
    "BININT2": (b"M\xff\xff", "2-byte unsigned int 65535"),
    "BINSTRING": (b"T\x03\x00\x00\x00abc", "4-byte length py2 str"),
    "SHORT_BINSTRING": (b"U\x03abc", "1-byte length py2 str"),
    "BINUNICODE": (b"X\x03\x00\x00\x00\xe2\x82\xac", "UTF-8 text, 4-byte length"),
    "BINFLOAT": (b"G\x3f\xf8\x00\x00\x00\x00\x00\x00", "big-endian double 1.5"),
    "EMPTY_TUPLE": (b")", "()"),
    "EMPTY_LIST": (b"]", "[]"),
    "EMPTY_DICT": (b"}", "{}"),
    "BINPERSID": (b"K\x01Q", "persistent id from the stack"),
    "OBJ": (b"(cmod\nname\no", "OBJ: class and args above MARK"),
    "BINGET": (b"(K\x01q\x00h\x00t", "memo get, 1-byte key"),
    "LONG_BINGET": (b"(K\x01r\x00\x00\x00\x00j\x00\x00\x00\x00t",
                    "memo get, 4-byte key"),
    "BINPUT": (b"K\x01q\x05", "memo put, 1-byte key"),
    "LONG_BINPUT": (b"K\x01r\x05\x00\x00\x00", "memo put, 4-byte key"),
    "SETITEMS": (b"}(K\x01K\x02K\x03K\x04u", "set the pairs above MARK"),
    # protocol 2
    "PROTO": (b"", "PROTO alone (protocol 0/1 never have it)"),
    "NEWOBJ": (b"cmod\nname\n)\x81", "cls.__new__(cls, *())"),
    "EXT1": (b"\x82\x01", "extension code 1 (not registered in the oracle)"),
    "EXT2": (b"\x83\x00\x01", "extension code 256 (not registered)"),
    "EXT4": (b"\x84\x00\x00\x01\x00", "extension code 65536 (not registered)"),
    "TUPLE1": (b"K\x01\x85", "1-tuple"),
    "TUPLE2": (b"K\x01K\x02\x86", "2-tuple"),
    "TUPLE3": (b"K\x01K\x02K\x03\x87", "3-tuple"),
    "NEWTRUE": (b"\x88", "True"),
    "NEWFALSE": (b"\x89", "False"),
    "LONG1": (b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\xff",
              "9-byte two's complement -2**63"),
    "LONG4": (b"\x8b\x02\x00\x00\x00\xff\x7f", "LONG4 32767"),
    # protocol 3
    "BINBYTES": (b"B\x03\x00\x00\x00\x00\xffa", "bytes, 4-byte length"),
    "SHORT_BINBYTES": (b"C\x02\x00\xff", "bytes, 1-byte length"),
    # protocol 4
    "SHORT_BINUNICODE": (b"\x8c\x02\xc3\xa9", "UTF-8 text, 1-byte length"),
    "BINUNICODE8": (b"\x8d\x01\x00\x00\x00\x00\x00\x00\x00a",
                    "UTF-8 text, 8-byte length"),
    "BINBYTES8": (b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00a",
                  "bytes, 8-byte length"),
    "EMPTY_SET": (b"\x8f", "set()"),
    "ADDITEMS": (b"\x8f(K\x01K\x02\x90", "add the items above MARK to a set"),
    "FROZENSET": (b"(K\x01K\x02\x91", "frozenset of the items above MARK"),
    "NEWOBJ_EX": (b"\x8c\x03mod\x8c\x04name\x93)}\x92",
                  "cls.__new__(cls, *(), **{})"),
    "STACK_GLOBAL": (b"\x8c\x03mod\x8c\x08name.sub\x93",
                     "global from two stack strings, dotted name"),
    "MEMOIZE": (b"K\x01\x94", "memo put at the next index"),
    "FRAME": (b"\x95\x02\x00\x00\x00\x00\x00\x00\x00K\x01",
              "a frame holding BININT1 1 (STOP outside)"),
    # protocol 5
    "BYTEARRAY8": (b"\x96\x02\x00\x00\x00\x00\x00\x00\x00ab",
                   "bytearray, 8-byte length"),
    "NEXT_BUFFER": (b"\x97", "out-of-band buffer (none given: no-buffers)"),
    "READONLY_BUFFER": (b"\x96\x01\x00\x00\x00\x00\x00\x00\x00a\x98",
                        "make the top buffer read-only"),
}


def snippet_pickle(name, proto):
    body, _ = S[name]
    head = bytes([0x80, proto]) if proto >= 2 else b""
    if name == "PROTO" and proto < 2:
        raise ValueError
    if name == "PROTO":
        return head + b"N."
    if name == "STOP":
        return head + body + b"."
    return head + body + b"."


class Point(object):
    def __init__(self, x):
        self.x = x


def allops_object():
    import types
    mod = types.ModuleType("brine_corpus")   # pickling checks the name
    mod.Point = Point
    sys.modules["brine_corpus"] = mod
    Point.__module__ = "brine_corpus"
    Point.__qualname__ = "Point"
    shared = [1, 2]
    return [None, True, False, 0, 1, -1, 255, 256, 65535, 65536, -2 ** 31,
            2 ** 31, 2 ** 64, -2 ** 64, 1.5, "", "a", "\u20ac" * 3,
            "x" * 300, b"", b"ab", b"y" * 300, bytearray(b"ba"), (), (1,),
            (1, 2), (1, 2, 3), (1, 2, 3, 4), [], {}, {"k": 1, "j": 2},
            set(), {1, 2}, frozenset(), frozenset([3]), shared, shared,
            collections.OrderedDict([("a", 1)]), Point(3), complex(1, 2)]


def main(argv):
    if len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    out = argv[0]
    if not os.path.isdir(out):
        os.makedirs(out)
    names = [op.name for op in pickletools.opcodes]
    missing = [n for n in names if n not in S]
    if missing:
        sys.stderr.write("no snippet for: %s\n" % " ".join(missing))
        return 1
    n = 0
    for op in pickletools.opcodes:
        for proto in range(max(op.proto, 2 if op.name == "PROTO" else 0),
                           pickle.HIGHEST_PROTOCOL + 1):
            data = snippet_pickle(op.name, proto)
            cid = "op-%s-p%d" % (op.name, proto)
            meta = {"description": "%s (%s) at protocol %d: %s" % (
                op.name, repr(op.code)[1:-1], proto, S[op.name][1]),
                "protocol": proto, "flags": []}
            _write(out, cid, data, meta)
            n += 1
    obj = allops_object()
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(obj, proto)
        ops = sorted(set(o.name for o, _, _ in pickletools.genops(data)))
        meta = {"description": "C pickler of CPython %d.%d, protocol %d: "
                "one graph using %d opcodes" % (
                    sys.version_info[0], sys.version_info[1], proto,
                    len(ops)),
                "protocol": proto, "flags": []}
        _write(out, "allops-p%d" % proto, data, meta)
        n += 1
    print("%d cases written to %s" % (n, out))
    return 0


def _write(out, cid, data, meta):
    with open(os.path.join(out, cid + ".pkl"), "wb") as f:
        f.write(data)
    with open(os.path.join(out, cid + ".json"), "w") as f:
        json.dump(meta, f, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
