"""The offline text corpus: size, deterministic split by path hash, pinning, windows."""

import hashlib

import pytest
import torch

from genlab.data.text import ByteWindows, is_heldout, python_stdlib_corpus


@pytest.fixture(scope="module")
def corpus():
    return python_stdlib_corpus()


def test_corpus_is_large_split_and_pinned(corpus):
    assert len(corpus.train) + len(corpus.heldout) >= 5_000_000
    assert 0.02 < len(corpus.heldout) / len(corpus.train) < 0.2
    info = corpus.info()
    assert info["python"].count(".") == 2 and len(info["sha256"]) == 64
    assert python_stdlib_corpus().sha256 == corpus.sha256  # same files, same digest


def test_split_reads_the_path_hash_only(tmp_path):
    names = [f"pkg/m{i}.py" for i in range(40)]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "skipped.py").write_text("# never read\n")
    c = python_stdlib_corpus(0.3, root=tmp_path)
    held = [n for n in names if int(hashlib.sha256(n.encode()).hexdigest()[:8], 16) / 2**32 < 0.3]
    assert held == [n for n in names if is_heldout(n, 0.3)]
    assert c.heldout_documents == len(held) and c.train_documents == len(names) - len(held)
    assert b"never read" not in c.train + c.heldout
    assert all(f"# {n}".encode() in c.heldout for n in held)
    (tmp_path / "pkg" / "m0.py").write_text("# changed\n")
    assert python_stdlib_corpus(0.3, root=tmp_path).sha256 != c.sha256


def test_byte_windows():
    data = bytes(range(256)) * 3
    w = ByteWindows(data, 100)
    assert len(w) == 7 and w[1].dtype == torch.long and w[1][0].item() == 100
    assert len(ByteWindows(data, 100, max_windows=3)) == 3
    with pytest.raises(ValueError, match="length"):
        ByteWindows(b"abc", 10)
