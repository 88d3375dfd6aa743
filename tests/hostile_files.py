"""Hostile checkpoint files, written by hand (no torch, no transformers), for the tests.

torch_pickle() spells out, opcode by opcode, the pickle torch.save writes for a state dict of
strided tensor views, so a test can declare any size / stride / offset / storage it likes;
write_bin() puts it in torch's zip layout (or the legacy one) with the storages' bytes.
"""

import pickle
import struct
import zipfile


def _int(v):  # LONG1: any Python int
    n = max(1, (v.bit_length() + 8) // 8)
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def _str(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tensor_opcodes(storage_key, numel, offset, size, stride, storage="FloatStorage"):
    """_rebuild_tensor_v2(<persistent storage>, offset, size, stride, False, OrderedDict())."""
    pid = _tuple([_str("storage"), _global("torch", storage), _str(storage_key), _str("cpu"),
                  _int(numel)]) + b"Q"  # BINPERSID
    args = _tuple([pid, _int(offset), _tuple([_int(v) for v in size]),
                   _tuple([_int(v) for v in stride]), b"\x89",
                   _global("collections", "OrderedDict") + b")R"])
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def torch_pickle(tensors):
    """{name: opcodes of a value} -> the bytes of a pickled dict (protocol 2)."""
    body = b"".join(_str(name) + value + b"s" for name, value in tensors.items())
    return b"\x80\x02}" + body + b"."


def write_bin(path, pkl, storages, compress=False, legacy=False):
    """A pytorch_model.bin: the pickle and {storage key: raw bytes} (zip, or legacy)."""
    if legacy:
        header = b"".join(pickle.dumps(x, protocol=2) for x in (
            0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))
        keys = pickle.dumps(list(storages), protocol=2)
        data = b"".join(struct.pack("<q", len(raw) // 4) + raw for raw in storages.values())
        path.write_bytes(header + pkl + keys + data)
        return path
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
        for key, raw in storages.items():
            if callable(raw):  # a generator of chunks, streamed (a large member)
                with z.open(f"archive/data/{key}", "w", force_zip64=True) as member:
                    for chunk in raw():
                        member.write(chunk)
            else:
                z.writestr(f"archive/data/{key}", raw)
    return path


def zeros_stream(nbytes, chunk=1 << 24):
    """A callable giving `nbytes` of zeros in chunks (for a member that deflates ~1000x)."""
    def chunks():
        left = nbytes
        while left:
            n = min(chunk, left)
            yield bytes(n)
            left -= n
    return chunks
