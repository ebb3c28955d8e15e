"""Multimodal token streams: byte-level text, images as tokenizer indices, RoPE-Tie positions,
and a decoder-only Transformer that generates text or images from text prompts."""

from genlab.lm.captions import TEMPLATES, caption, label_of, prompt_for
from genlab.lm.generate import Sampling, complete_text, generate, text_to_image
from genlab.lm.model import LMConfig, StreamLM
from genlab.lm.stream import ImageTokens, PositionCounter, Stream, StreamBatch, StreamBuilder, Vocabulary, collate, loss_mask
from genlab.lm.text import ByteTokenizer

__all__ = [
    "ByteTokenizer", "ImageTokens", "LMConfig", "PositionCounter", "Sampling", "Stream", "StreamBatch", "StreamBuilder",
    "StreamLM", "TEMPLATES", "Vocabulary", "caption", "collate", "complete_text", "generate", "label_of", "loss_mask",
    "prompt_for", "text_to_image",
]
