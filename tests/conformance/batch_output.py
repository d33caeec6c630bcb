"""Shared by the conformance scripts: reading batch-mode output."""


def parse_batch(out):
    """{file name: text} from the '== name' separated output of
    `brine load --batch` and `python3 -m brine_oracle load --batch`."""
    docs = {}
    name = None
    buf = []
    for line in out.decode("utf-8", "replace").splitlines(True):
        if line.startswith("== "):
            if name is not None:
                docs[name] = "".join(buf)
            name = line[3:].rstrip("\n")
            buf = []
        elif name is not None:
            buf.append(line)
    if name is not None:
        docs[name] = "".join(buf)
    return docs
