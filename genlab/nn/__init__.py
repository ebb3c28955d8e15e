"""genlab.nn: rotary embeddings, stream positions, attention, GAU, Transformer blocks, widening, conv blocks."""

from genlab.nn.attention import Attention, KVCache
from genlab.nn.gau import GAU
from genlab.nn.norm import RMSNorm
from genlab.nn.rope import RotaryEmbedding
from genlab.nn.transformer import MLP, Transformer, TransformerBlock
from genlab.nn.widen import widen

__all__ = ["GAU", "MLP", "Attention", "KVCache", "RMSNorm", "RotaryEmbedding", "Transformer", "TransformerBlock", "widen"]
