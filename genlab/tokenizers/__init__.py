"""Image tokenizers: quantizers (FSQ, VQ) inside an encoder/quantizer/decoder autoencoder."""

from genlab.tokenizers.base import QuantizerOutput
from genlab.tokenizers.fsq import FSQ

__all__ = ["FSQ", "QuantizerOutput"]
