"""The call shape every quantizer shares, so the image tokenizer swaps them by config."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class QuantizerOutput(NamedTuple):
    """What a quantizer returns.

    Attributes:
        quantized: the quantized tensor, same shape, layout and dtype as the input
            (straight-through gradients flow back to the input).
        indices: ``torch.long`` code indices, the input's shape without the channel axis
            (with a trailing ``num_codebooks`` axis when there are several codebooks).
        loss: scalar auxiliary loss (codebook and commitment terms for VQ; zero for FSQ).
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
