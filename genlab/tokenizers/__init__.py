"""Image tokenizers: quantizers (FSQ, VQ) inside an encoder/quantizer/decoder autoencoder."""

from genlab.tokenizers.autoencoder import (
    BACKBONES,
    QUANTIZERS,
    ImageTokenizer,
    TokenizerConfig,
    TokenizerOutput,
    build_tokenizer,
    tokenizer_config_dict,
)
from genlab.tokenizers.base import QuantizerOutput
from genlab.tokenizers.fsq import FSQ
from genlab.tokenizers.vq import VectorQuantizer

__all__ = [
    "BACKBONES", "FSQ", "ImageTokenizer", "QUANTIZERS", "QuantizerOutput", "TokenizerConfig", "TokenizerOutput",
    "VectorQuantizer", "build_tokenizer", "tokenizer_config_dict",
]
