"""Byte-level text tokenizer: the 256 byte values plus a few special tokens, no vocabulary file.

Any UTF-8 string is its bytes (ids ``0..255``), so encoding never fails and decoding the ids of
a string returns it exactly. Special tokens take the ids after the bytes; they never come out
of :meth:`ByteTokenizer.encode` (a literal ``"<|bos|>"`` in a string stays plain bytes), so text
cannot forge them.

    tok = ByteTokenizer()
    ids = tok.encode("a handwritten seven", bos=True)   # [257, 97, 32, ...]
    tok.decode(ids)                                     # '<|bos|>a handwritten seven'
    tok.decode(ids, skip_special=True)                  # 'a handwritten seven'
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor

BYTES = 256
SPECIAL_TOKENS = ("pad", "bos", "eos", "begin_image", "end_image")


class ByteTokenizer:
    """UTF-8 bytes as ids ``0..255``; specials ``PAD, BOS, EOS, BEGIN_IMAGE, END_IMAGE`` at ``256..260``."""

    PAD, BOS, EOS, BEGIN_IMAGE, END_IMAGE = range(BYTES, BYTES + len(SPECIAL_TOKENS))
    vocab_size = BYTES + len(SPECIAL_TOKENS)

    @staticmethod
    def special_name(token: int) -> str:
        """``"<|bos|>"`` for ``BOS`` and so on."""
        return f"<|{SPECIAL_TOKENS[token - BYTES]}|>"

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text``'s UTF-8 bytes, optionally wrapped in ``BOS`` / ``EOS``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; got {type(text).__name__}")
        ids = list(text.encode("utf-8"))
        return ([self.BOS] if bos else []) + ids + ([self.EOS] if eos else [])

    def decode(self, ids: Sequence[int] | Tensor, skip_special: bool = False, errors: str = "strict") -> str:
        """The string of ``ids``; special tokens print as ``<|name|>`` unless ``skip_special``.

        ``errors`` is passed to ``bytes.decode``: ``"strict"`` raises on byte runs that are not
        UTF-8 (ids of an encoded string always are), ``"replace"`` suits sampled text.
        """
        parts: list[str] = []
        run = bytearray()
        for token in self._check_ids(ids):
            if token < BYTES:
                run.append(token)
                continue
            parts.append(run.decode("utf-8", errors))
            run.clear()
            if not skip_special:
                parts.append(self.special_name(token))
        parts.append(run.decode("utf-8", errors))
        return "".join(parts)

    def _check_ids(self, ids: Sequence[int] | Tensor) -> Iterable[int]:
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < self.vocab_size]
        if bad:
            raise ValueError(f"ids must be text token ids in [0, {self.vocab_size}); got {bad[:5]}")
        return values

    def tensor(self, text: str, bos: bool = False, eos: bool = False) -> Tensor:
        """:meth:`encode` as a ``(T,)`` long tensor."""
        return torch.tensor(self.encode(text, bos, eos), dtype=torch.long)


__all__ = ["ByteTokenizer", "SPECIAL_TOKENS"]
