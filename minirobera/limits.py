"""What a checkpoint reader may allocate: the bounds every reader checks BEFORE it allocates.

A hub repo is untrusted input: anyone can publish one and a user only types its id. Every
weight file format can declare more than it holds: a `pytorch_model.bin` tensor can be a
stride-0 view of 40000 x 40000 elements over one float, a zip member or an HDF5 dataset can
deflate a few KB into GB, a chunked HDF5 dataset that was never written reads as its fill
value. So no reader builds a tensor from what the file *declares* before this module has
compared the declaration with what the config (or, without one, the file's size) justifies.

Owns:
    CheckpointError   the one error class of every checkpoint reader
    ReadLimits        one checkpoint's allowance: the shape each known tensor must have, the
                      largest tensor any other name may have, and a byte budget for what the
                      readers copy or decompress (charged before the allocation)
    check_strided     a strided view (torch's size / stride / offset) lies inside its storage
                      at BOTH ends: no negative sizes or strides, offset + extent <= numel
    check_inflation   what a file stores compressed may inflate at most MAX_INFLATION times
    inflate_at_most   inflate a deflate stream up to a byte count, never further, and never
                      past MAX_INFLATION times the compressed bytes it consumed
    short             repr() of anything read from a file, bounded (for error messages)

Leaves out: which names and shapes a RoBERTa checkpoint has (checkpoint.py's key table builds
the `expected` function), reading any format (checkpoint.py, fairseq.py).

>>> limits = ReadLimits("model.bin", budget=1 << 20, expected=lambda name: None, largest=100)
>>> limits.admit("x", (10, 10))
>>> limits.admit("x", (40000, 40000))
Traceback (most recent call last):
...
minirobera.limits.CheckpointError: model.bin: tensor 'x' declares shape (40000, 40000) (1600000000 elements), more than the largest tensor the config can justify (100 elements); refused before reading it
>>> check_strided("model.bin", "w", size=(24,), stride=(-1,), offset=8, storage_numel=64)
Traceback (most recent call last):
...
minirobera.limits.CheckpointError: model.bin: tensor 'w' has a negative size or stride (size (24,), stride (-1,)); a tensor view must lie inside its storage
"""

import copy
import os
import reprlib
import zlib
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

# Without a config, a reader may allocate this many times the file's size (float16 / bfloat16
# upcast to float32 doubles the bytes, a compressed file is a little smaller than its data, a
# transposed Keras kernel is one more copy), but never less than the floor: enough for any
# small checkpoint, far below what a memory bomb asks for.
FILE_SIZE_FACTOR = 4
BUDGET_FLOOR = 64 << 20
# Trained float weights barely compress (gzip gets ~1.1x); a stored block that inflates to more
# than this many times its size (+ 1 MiB for small all-zero tensors) is a bomb, not weights.
MAX_INFLATION = 16
# No RoBERTa tensor has more than 4 dimensions (TF's 3-D attention kernels the most); a
# declared shape of more, or a size / stride list of a million entries, is refused unread.
MAX_DIMS = 8
# Without a config: at most this many tensors in one file (a 96-layer model has ~1,600).
MAX_TENSORS = 20_000

_REPR = reprlib.Repr()  # what a file declares, shown in an error: bounded in depth and length
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def short(value) -> str:
    """repr() of something read from a file, cut to a few dozen characters without building
    the whole repr first (a pickle can nest a tuple a million deep, or share one list at
    every level: repr() of it would never return).

    >>> nested = ()
    >>> for _ in range(100_000):
    ...     nested = (nested, nested)
    >>> short(nested)
    '((((...), (...)), ((...), (...))), (((...), (...)), ((...), (...))))'
    """
    return _REPR.repr(value)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, is unsafe, or does not fit the config."""


class ReadLimits:
    """One checkpoint's allowance, shared by every file of it (shards included).

    expected(name) -> the shape the config needs for a tensor under that (normalised,
    PyTorch) name, or None for a name the model does not use; such a tensor may not be
    larger than `largest` elements (the biggest one the model uses). `budget` is the number
    of bytes the readers may copy or decompress in all; charge() takes from it.
    """

    def __init__(self, path, budget: int, expected: Callable[[str], Optional[Tuple[int, ...]]],
                 largest: int, describe: str = "", max_tensors: int = MAX_TENSORS):
        self.path, self.expected, self.largest = os.fspath(path), expected, largest
        self.max_tensors = max_tensors  # tensors one file may declare
        self.describe = describe  # e.g. "hidden_size=768, vocab_size=50265", for shape errors
        self._left = [int(budget)]  # shared by the copies at() makes, one per shard

    def at(self, path) -> "ReadLimits":
        """The same allowance (one budget) for reading another file: errors name that file."""
        other = copy.copy(self)
        other.path = os.fspath(path)
        return other

    @classmethod
    def for_file(cls, path) -> "ReadLimits":
        """No config to compare with: bound everything by the file's own size."""
        budget = max(FILE_SIZE_FACTOR * os.path.getsize(path), BUDGET_FLOOR)
        return cls(path, budget, lambda name: None, largest=budget // 4)

    def admit(self, name: str, shape: Sequence[int]) -> None:
        """Refuse a declared tensor that the config does not justify, before it is read."""
        if not (isinstance(shape, (tuple, list)) and len(shape) <= MAX_DIMS and all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
                for d in shape)):
            raise CheckpointError(f"{self.path}: tensor {short(name)} declares shape "
                                  f"{short(shape)}; a shape is at most {MAX_DIMS} non-negative "
                                  f"integers")
        shape = tuple(int(d) for d in shape)
        if 0 in shape and max(shape) > max(self.largest, 1):  # empty, but [0, 2**62] all the same
            raise CheckpointError(f"{self.path}: tensor {short(name)} declares shape {shape}, a "
                                  f"dimension above the largest tensor's {self.largest} elements")
        want = self.expected(name)
        if want is not None and shape != tuple(want):
            detail = f" ({self.describe})" if self.describe else ""
            raise CheckpointError(f"{self.path}: tensor {short(name)} has shape {shape} but the "
                                  f"config needs {tuple(want)}{detail}")
        numel = int(np.prod(shape, dtype=object))
        if want is None and numel > self.largest:
            raise CheckpointError(f"{self.path}: tensor {short(name)} declares shape {shape} "
                                  f"({numel} elements), more than the largest tensor the config "
                                  f"can justify ({self.largest} elements); refused before "
                                  f"reading it")

    def admit_count(self, n: int, what: str = "tensors") -> None:
        """Refuse a file that declares more tensors (names, layers...) than the model has."""
        if n > self.max_tensors:
            raise CheckpointError(f"{self.path} declares {n} {what}, more than the "
                                  f"{self.max_tensors} the config can justify; refused")

    def charge(self, nbytes: int, what: str) -> None:
        """Take `nbytes` from the budget before allocating them; refuse past the budget."""
        nbytes = int(nbytes)
        if nbytes > self._left[0]:
            raise CheckpointError(f"{self.path}: reading {what} would allocate {nbytes} bytes, "
                                  f"past what the config and the file justify ({self._left[0]} "
                                  f"bytes left); refused before allocating")
        self._left[0] -= nbytes


def check_strided(path, name, size, stride, offset, storage_numel) -> int:
    """Check a strided view against its storage; return the number of elements it needs
    from the storage (0 for an empty tensor). The first and the last element it reaches
    must both lie in [0, storage_numel): with non-negative strides that is offset >= 0 and
    offset + sum((size - 1) * stride) < storage_numel.

    >>> check_strided("m.bin", "w", size=(2, 3), stride=(1, 2), offset=0, storage_numel=6)
    6
    >>> check_strided("m.bin", "w", size=(2, 3), stride=(3, 1), offset=1, storage_numel=6)
    Traceback (most recent call last):
    ...
    minirobera.limits.CheckpointError: m.bin: tensor 'w' (size (2, 3), stride (3, 1), offset 1) reaches element 6 of a storage of 6 elements
    """
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
            and len(size) == len(stride) <= MAX_DIMS):
        raise CheckpointError(f"{path}: tensor {short(name)} has a malformed view (size "
                              f"{short(size)}, stride {short(stride)}, offset {short(offset)})")
    size, stride = tuple(size), tuple(stride)
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in size + stride + (offset, storage_numel))
    if not ints:
        raise CheckpointError(f"{path}: tensor {short(name)} has a malformed view (size "
                              f"{short(size)}, stride {short(stride)}, offset {short(offset)})")
    if any(v < 0 for v in size + stride):
        raise CheckpointError(f"{path}: tensor {name!r} has a negative size or stride (size "
                              f"{size}, stride {stride}); a tensor view must lie inside its "
                              f"storage")
    if offset < 0 or storage_numel < 0:
        raise CheckpointError(f"{path}: tensor {name!r} starts at element {offset} of a storage "
                              f"of {storage_numel}")
    if 0 in size:
        return 0
    last = int(offset) + sum((int(s) - 1) * int(st) for s, st in zip(size, stride))
    if last >= storage_numel:
        raise CheckpointError(f"{path}: tensor {name!r} (size {size}, stride {stride}, offset "
                              f"{offset}) reaches element {last} of a storage of "
                              f"{storage_numel} elements")
    return last + 1


def check_inflation(path, name, nbytes: int, stored: int) -> None:
    """Refuse data that would inflate from `stored` bytes in the file to `nbytes` in memory
    past MAX_INFLATION (an HDF5 dataset never written has 0 stored bytes: its fill value).

    >>> check_inflation("tf_model.h5", "/w", nbytes=10 << 30, stored=4 << 20)
    Traceback (most recent call last):
    ...
    minirobera.limits.CheckpointError: tf_model.h5: '/w' would inflate 4194304 stored bytes to 10737418240; refused (weights do not compress 16x)
    """
    if nbytes > MAX_INFLATION * stored + (1 << 20):
        raise CheckpointError(f"{path}: {name!r} would inflate {stored} stored bytes to "
                              f"{nbytes}; refused (weights do not compress {MAX_INFLATION}x)")


def inflate_at_most(raw, nbytes: int, path, name, chunk: int = 1 << 16) -> bytes:
    """The first `nbytes` of the deflate stream read from the file object `raw`, inflated a
    chunk at a time: never more than `nbytes` out, and never more than MAX_INFLATION times
    the compressed bytes actually consumed (+ 1 MiB), whatever sizes the file declares
    about itself (a zip's compress_size is the writer's word, not a fact).

    >>> import io, zlib
    >>> inflate_at_most(io.BytesIO(zlib.compress(b"abc" * 1000)[2:-4]), 6, "m.bin", "data/0")
    b'abcabc'
    >>> zeros = io.BytesIO(zlib.compress(bytes(1 << 26))[2:-4])  # 64 MiB in ~65 KB
    >>> inflate_at_most(zeros, 1 << 26, "m.bin", "data/0")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    minirobera.limits.CheckpointError: m.bin: 'data/0' inflates past 16x the ... compressed bytes read so far; refused (weights do not compress so well)
    """
    inflater, out, size, consumed = zlib.decompressobj(-zlib.MAX_WBITS), [], 0, 0
    pending = b""
    while size < nbytes:
        if not pending:
            pending = raw.read(chunk)
            consumed += len(pending)
            if not pending:
                break
        piece = inflater.decompress(pending, min(nbytes - size, 1 << 20))
        pending = inflater.unconsumed_tail
        size += len(piece)
        out.append(piece)
        if size > MAX_INFLATION * consumed + (1 << 20):
            raise CheckpointError(f"{path}: {name!r} inflates past {MAX_INFLATION}x the "
                                  f"{consumed} compressed bytes read so far; refused (weights "
                                  f"do not compress so well)")
        if inflater.eof:
            break
    if size < nbytes:
        raise CheckpointError(f"{path}: {name!r} is truncated ({size} bytes, needs {nbytes})")
    return b"".join(out)
