"""An offline text corpus of several megabytes: the Python standard library's own source files.

The ``.py`` files of the running interpreter's standard library (code, comments, docstrings and
``pydoc_data/topics.py``, the reference documentation's topics as text) are about 12 MB of mixed
English and code under the PSF license, present wherever Python is. Each file is a document; a
document goes to the held-out set when the first 8 hex digits of the sha256 of its relative path
(POSIX form), read as a fraction of ``2^32``, fall below ``heldout_fraction``, so the split does not
depend on file order or on the files present. Test suites (``test``, ``tests``, ``idle_test``) and
installed packages (``site-packages``) are left out.

The files differ between Python releases, so :class:`TextCorpus` records the Python version and
a sha256 over every (path, bytes) pair in order: numbers measured on it cite both.

    corpus = python_stdlib_corpus()
    train = ByteWindows(corpus.train, length=128)      # (128,) long windows of byte ids
    corpus.info()                                      # {"name": ..., "python": "3.11.7", "sha256": ..., ...}
"""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlab.utils import check_positive_int

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})
SEPARATOR = b"\n\n"


@dataclass(frozen=True)
class TextCorpus:
    """Train and held-out bytes of a corpus, with what pins it (``python``, ``sha256``)."""

    name: str
    train: bytes
    heldout: bytes
    train_documents: int
    heldout_documents: int
    python: str
    sha256: str

    def info(self) -> dict:
        """Everything but the bytes, for results files."""
        return {"name": self.name, "python": self.python, "sha256": self.sha256, "train_bytes": len(self.train),
                "heldout_bytes": len(self.heldout), "train_documents": self.train_documents,
                "heldout_documents": self.heldout_documents}


def is_heldout(relpath: str, fraction: float) -> bool:
    """Whether the document at ``relpath`` is held out: ``sha256(relpath)[:8] / 2^32 < fraction``."""
    return int(hashlib.sha256(relpath.encode("utf-8")).hexdigest()[:8], 16) / 2**32 < fraction


def python_stdlib_corpus(heldout_fraction: float = 0.05, root: str | Path | None = None) -> TextCorpus:
    """The standard library's ``.py`` files as documents, split by :func:`is_heldout`.

    ``root`` defaults to this interpreter's ``sysconfig`` stdlib folder; documents are read as
    bytes in sorted relative-path order and joined with a blank line.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction={heldout_fraction!r} must be in (0, 1)")
    root = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise ValueError(f"root={str(root)!r} is not a folder")
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*.py")
                   if not EXCLUDED_DIRS.intersection(p.relative_to(root).parts[:-1]))
    if not files:
        raise ValueError(f"no .py files under {str(root)!r}")
    digest = hashlib.sha256()
    parts: dict[bool, list[bytes]] = {False: [], True: []}
    for rel, path in files:
        data = path.read_bytes()
        digest.update(rel.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0" + data)
        parts[is_heldout(rel, heldout_fraction)].append(data)
    if not parts[True] or not parts[False]:
        raise ValueError(f"heldout_fraction={heldout_fraction} leaves one split of {len(files)} documents empty")
    return TextCorpus("python-stdlib", SEPARATOR.join(parts[False]), SEPARATOR.join(parts[True]), len(parts[False]),
                      len(parts[True]), platform.python_version(), digest.hexdigest())


class ByteWindows(Dataset):
    """Non-overlapping windows ``(length,)`` long of byte ids from ``data`` (the tail shorter than a window is dropped).

    ``max_windows`` keeps that many windows spread evenly over the data (for cheap evaluations).
    """

    def __init__(self, data: bytes, length: int, max_windows: int | None = None):
        check_positive_int("length", length, minimum=2)
        n = len(data) // length
        if n == 0:
            raise ValueError(f"the data has {len(data)} bytes, fewer than one window of length={length}")
        ids = torch.frombuffer(bytearray(data[: n * length]), dtype=torch.uint8).view(n, length)
        if max_windows is not None:
            check_positive_int("max_windows", max_windows)
            ids = ids[torch.linspace(0, n - 1, min(max_windows, n)).long()]
        self.windows = ids

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> Tensor:
        return self.windows[i].long()


__all__ = ["ByteWindows", "EXCLUDED_DIRS", "TextCorpus", "is_heldout", "python_stdlib_corpus"]
