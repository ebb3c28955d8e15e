"""Bad input for every public entry point: what is tried and the error it must get, and the
unusual inputs accepted on purpose with the behaviour they get.

One registry, two uses: ``tests/test_bad_inputs.py`` runs every case, and
``python -m tests.bad_inputs_table`` runs them again and writes ``docs/bad_inputs.md`` with
the messages users actually see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from genlab.data import build_image_dataset, sample_toy2d
from genlab.flows import sample
from genlab.gans import FDivergence, NonFiniteCriticError, build_objective
from genlab.lm import ByteTokenizer, ImageTokens, text_to_image
from genlab.lm.generate import Sampling, sample_logits
from genlab.metrics import digits_scores, find_inception_weights, frechet_distance_features, inception_scores
from genlab.nn.attention import Attention, KVCache
from genlab.nn.transformer import Transformer
from genlab.optim import Lion, Tiger
from genlab.tokenizers import VectorQuantizer


@dataclass(frozen=True)
class Case:
    entry: str  # the public entry point, as a user writes it
    given: str  # the bad input, in words or code
    call: Callable[[], object]
    error: type[BaseException]
    match: str  # regex the message must contain


@dataclass(frozen=True)
class Accepted:
    """An unusual input that is accepted on purpose: ``check()`` is True when it gets ``behaviour``."""

    entry: str
    given: str
    check: Callable[[], bool]
    behaviour: str


def _tokenizer(**kwargs):
    from genlab.tokenizers import TokenizerConfig, build_tokenizer

    return build_tokenizer(TokenizerConfig(image_size=16, channels=8, **kwargs))


def _fsq(*args, **kwargs):
    from genlab.tokenizers import FSQ

    return FSQ(*args, **kwargs)


def _config(argv):
    from genlab.train.tokenizer import TokenizerTrainConfig

    from genlab.train import parse_config

    return parse_config(TokenizerTrainConfig, argv)


def _weights_of_another_model(tmp):
    from torch import nn

    from genlab.tokenizers import ImageTokenizer
    from genlab.train import save_weights

    path = tmp / "other.safetensors"
    save_weights(nn.Linear(2, 2), path, kind="Classifier")
    return ImageTokenizer.from_pretrained(str(path))


def _truncated_weights(tmp):
    from genlab.tokenizers import ImageTokenizer
    from genlab.tokenizers.autoencoder import WEIGHTS_KIND
    from genlab.train import save_weights

    path = tmp / "tok.safetensors"
    tok = _tokenizer()
    save_weights(tok, path, WEIGHTS_KIND, {"image_size": 16, "channels": 8})
    path.write_bytes(path.read_bytes()[:-100])
    return ImageTokenizer.from_pretrained(str(path))


def _weights_with_a_broken_config(tmp):
    from safetensors.torch import save_file

    from genlab.tokenizers import ImageTokenizer
    from genlab.tokenizers.autoencoder import WEIGHTS_KIND

    path = tmp / "tok.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"genlab_kind": WEIGHTS_KIND, "config": "not json"})
    return ImageTokenizer.from_pretrained(str(path))


def _folder_without_config(tmp):
    from genlab.tokenizers import ImageTokenizer

    (tmp / "weights").mkdir()
    return ImageTokenizer.from_pretrained(str(tmp / "weights"))


def _folder_as_weights_file(tmp):
    from genlab.io import load_weights

    (tmp / "weights").mkdir()
    return load_weights(_tokenizer(), tmp / "weights", "ImageTokenizer")


def _rope(**kwargs):
    from genlab.nn.rope import RotaryEmbedding

    return RotaryEmbedding(**kwargs)


def _lm(context=64):
    from genlab.lm import LMConfig, StreamLM

    return StreamLM(LMConfig(image_codebook_size=240, context=context, dim=16, depth=1, heads=2))


def _lm_from_another_model(tmp):
    from torch import nn

    from genlab.lm import StreamLM
    from genlab.train import save_weights

    path = tmp / "other.safetensors"
    save_weights(nn.Linear(2, 2), path, kind="Classifier")
    return StreamLM.from_pretrained(str(path))


def _script_config(script: str, config_class: str, argv: list[str]):
    import importlib

    from genlab.train import parse_config

    return parse_config(getattr(importlib.import_module(f"scripts.{script}"), config_class), argv)


def _param():
    return torch.nn.Parameter(torch.zeros(2))


def _identity(x, t):
    return x


def _gau():
    from genlab.nn.gau import GAU

    return GAU(8, qk_dim=4)


def _attention_with_cache_of(batch: int):
    attn, cache = Attention(8, heads=2), KVCache()
    attn(torch.zeros(batch, 3, 8), cache=cache)
    return attn, cache


def _vq_training(**kwargs):
    return VectorQuantizer(dim=4, codebook_size=8, **kwargs).train()


def _nan_after_half(x, t):
    return torch.where(t[:, None] >= 0.5, torch.full_like(x, float("nan")), torch.ones_like(x))


def _fully_padded_sequence_gives_zeros() -> bool:
    attn = Attention(8, heads=2)
    x, pad = torch.randn(2, 3, 8), torch.tensor([[True] * 3, [False] * 3])
    out = attn(x, key_padding_mask=pad)
    return torch.equal(out[1], attn.out(torch.zeros(3, 8))) and torch.equal(out[0], attn(x[:1])[0])


def _fsq_saturates() -> bool:
    return _fsq([8, 5, 5, 5])(torch.tensor([[1e38, -1e38, 3e38, 0.0]])).quantized.tolist() == [[0.75, -1.0, 1.0, 0.0]]


def _numpy_levels_equal_python() -> bool:
    import numpy as np

    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    return torch.equal(_fsq([np.int64(8), 5, 5, 5])(z).indices, _fsq([8, 5, 5, 5])(z).indices)


def _in_scratch(make_and_load):
    """Run ``make_and_load(folder)`` in a temporary folder that is removed afterwards."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="genlab-bad-input-") as folder:
        return make_and_load(Path(folder))


CASES: list[Case] = [
    # tokenizers
    Case("FSQ(levels)", "levels=[8, 2]", lambda: _fsq([8, 2]), ValueError, "every level must be an integer >= 3"),
    Case("FSQ(levels)", "levels=[8.0, 5]", lambda: _fsq([8.0, 5]), ValueError, "Python or NumPy ints\\), not floats"),
    Case("FSQ(levels)", "levels=[]", lambda: _fsq([]), ValueError, "non-empty list"),
    Case("FSQ(levels)", "levels=[1001, 3] (above 1 / eps)", lambda: _fsq([1001, 3]), ValueError,
         "<= MAX_LEVEL=1000 \\(got 1001\\)"),
    Case("FSQ(levels)", "levels=[2**31]", lambda: _fsq([2**31]), ValueError, "<= MAX_LEVEL=1000"),
    Case("FSQ(levels)", "levels=[1000] * 7 (10**21 codes)", lambda: _fsq([1000] * 7), ValueError,
         "int64 indices hold at most MAX_CODEBOOK_SIZE=2\\*\\*63"),
    Case("FSQ(bound)", "bound='tanh'", lambda: _fsq([8, 5], bound="tanh"), ValueError, "bound='tanh' is not supported"),
    Case("FSQ(z)", "last dimension 5 for levels [8, 5, 5, 5]", lambda: _fsq([8, 5, 5, 5])(torch.zeros(2, 5)),
         ValueError, "has 5 channels .* expected dim=4"),
    Case("FSQ(z)", "a NaN in z", lambda: _fsq([8, 5, 5, 5])(torch.tensor([[0.0, float("nan"), 0, 0]])),
         ValueError, "NaN or Inf"),
    Case("FSQ(z)", "integer z", lambda: _fsq([8, 5, 5, 5])(torch.zeros(2, 4, dtype=torch.long)), TypeError,
         "floating-point"),
    Case("FSQ(z)", "a 0-dim z", lambda: _fsq([8, 5, 5, 5])(torch.tensor(1.0)), ValueError, "got a 0-dim tensor"),
    Case("FSQ.indices_to_codes", "index 1000 of 1000 codes", lambda: _fsq([8, 5, 5, 5]).indices_to_codes(torch.tensor([1000])),
         ValueError, "indices out of range"),
    Case("FSQ.codes_to_indices", "a code off the grid", lambda: _fsq([8, 5, 5, 5]).codes_to_indices(torch.tensor([[2.0, 0, 0, 0]])),
         ValueError, "outside the FSQ grid"),
    Case("FSQ.codes_to_indices", "a code of 0.3 between the grid's 0.25 and 0.5",
         lambda: _fsq([8, 5, 5, 5]).codes_to_indices(torch.tensor([[0.3, 0, 0, 0]])), ValueError, "off the FSQ grid"),
    Case("VectorQuantizer(codebook_size)", "codebook_size=0", lambda: VectorQuantizer(dim=4, codebook_size=0), ValueError,
         "codebook_size=0 must be an integer >= 1"),
    Case("VectorQuantizer(z)", "last dimension 5 for dim=4", lambda: VectorQuantizer(dim=4, codebook_size=8)(torch.zeros(2, 3, 5)),
         ValueError, "has 5 channels .* expected dim=4"),
    Case("VectorQuantizer(z)", "NaN input", lambda: VectorQuantizer(dim=4, codebook_size=8)(torch.full((2, 3, 4), float("nan"))),
         ValueError, "NaN or Inf"),
    Case("VectorQuantizer(z)", "values of 1e38", lambda: VectorQuantizer(dim=4, codebook_size=8)(torch.full((2, 4), 1e38)),
         ValueError, "too large for float32 distances"),
    Case("VectorQuantizer(z)", "an empty batch in training, with k-means", lambda: _vq_training(kmeans_init=True)(torch.zeros(0, 4)),
         ValueError, "holds no vectors"),
    Case("VectorQuantizer(z)", "an empty batch in training, with dead-code reset",
         lambda: _vq_training(dead_code_threshold=1.0)(torch.zeros(0, 4)), ValueError, "holds no vectors"),
    Case("VectorQuantizer(z)", "a 0-dim z", lambda: VectorQuantizer(dim=4, codebook_size=8)(torch.tensor(1.0)), ValueError,
         "got a 0-dim tensor"),
    Case("VectorQuantizer(seed)", "seed=-1", lambda: VectorQuantizer(dim=4, codebook_size=8, seed=-1), ValueError,
         "seed=-1 must be an integer >= 0"),
    Case("VectorQuantizer.indices_to_codes", "index 8 of 8 codes",
         lambda: VectorQuantizer(dim=4, codebook_size=8).indices_to_codes(torch.tensor([8])), ValueError,
         "indices out of range: .* codebook_size=8"),
    Case("build_tokenizer(TokenizerConfig)", "downsample=6", lambda: _tokenizer(downsample=6), ValueError, "power of two"),
    Case("build_tokenizer(TokenizerConfig)", "quantizer='pq'", lambda: _tokenizer(quantizer="pq"), ValueError,
         "quantizer='pq' is not supported"),
    Case("ImageTokenizer(images)", "1-channel images for a 3-channel tokenizer", lambda: _tokenizer()(torch.zeros(1, 1, 16, 16)),
         ValueError, "expects image_channels=3"),
    Case("ImageTokenizer.decode", "indices of shape (16,)", lambda: _tokenizer().decode(torch.zeros(16, dtype=torch.long)),
         ValueError, "indices must be \\(B, h, w\\)"),
    Case("ImageTokenizer.from_pretrained", "a weights file of another model", lambda: _in_scratch(_weights_of_another_model),
         ValueError, "holds a 'Classifier', not an 'ImageTokenizer'"),
    Case("ImageTokenizer.from_pretrained", "a truncated weights file", lambda: _in_scratch(_truncated_weights),
         ValueError, "not a readable safetensors file|corrupt or truncated"),
    Case("ImageTokenizer.from_pretrained", "a genlab weights file whose stored config is not JSON",
         lambda: _in_scratch(_weights_with_a_broken_config), ValueError, "tok.safetensors' holds a 'ImageTokenizer' whose stored config is not JSON"),
    Case("ImageTokenizer.from_pretrained", "a folder without config.json", lambda: _in_scratch(_folder_without_config),
         FileNotFoundError, "has no config.json"),
    Case("genlab.io.load_weights", "a folder where a weights file is expected", lambda: _in_scratch(_folder_as_weights_file),
         IsADirectoryError, "is a folder"),
    # configs (every training script parses its config this way)
    Case("scripts/train_*.py", "--levls [8,5] (a misspelled key)", lambda: _config(["--levls", "[8,5]"]), ValueError,
         "unknown config key 'levls'.*did you mean \\['levels'\\]"),
    Case("scripts/train_*.py", "--max_steps abc", lambda: _config(["--max_steps", "abc"]), TypeError, "expects an integer"),
    Case("scripts/train_*.py", "--mixed_precision fp8", lambda: _config(["--mixed_precision", "fp8"]), ValueError,
         "expected one of \\['no', 'bf16', 'fp16'\\]"),
    # shared blocks
    Case("RotaryEmbedding(dim)", "dim=7", lambda: _rope(dim=7), ValueError, "positive even integer"),
    Case("RotaryEmbedding(pairing)", "pairing='rotate'", lambda: _rope(dim=8, pairing="rotate"), ValueError,
         "pairing='rotate' is not supported"),
    # shared blocks and optimizers
    Case("Attention(dim, heads)", "dim=10, heads=3", lambda: Attention(10, heads=3), ValueError, "dim=10 is not divisible by heads=3"),
    Case("Attention(x, key_padding_mask)", "a (2, 4) mask for 5 keys",
         lambda: Attention(8, heads=2)(torch.zeros(2, 5, 8), key_padding_mask=torch.ones(2, 4, dtype=torch.bool)),
         ValueError, "key_padding_mask must be \\(B=2, S=5\\)"),
    Case("Attention(x)", "width 9 for dim=8", lambda: Attention(8, heads=2)(torch.zeros(2, 3, 9)), ValueError,
         "width D=9; expected dim=8"),
    Case("Attention(x)", "a 2-D x (T, D)", lambda: Attention(8, heads=2)(torch.zeros(3, 8)), ValueError,
         "must be \\(B, T, D=8\\); got shape \\(3, 8\\)"),
    Case("Attention(x)", "a 4-D x", lambda: Attention(8, heads=2)(torch.zeros(1, 2, 3, 8)), ValueError,
         "must be \\(B, T, D=8\\); got shape \\(1, 2, 3, 8\\)"),
    Case("Attention(x)", "an empty batch (0, 3, 8)", lambda: Attention(8, heads=2)(torch.zeros(0, 3, 8)), ValueError,
         "is empty; expected B >= 1"),
    Case("Attention(x)", "an empty sequence (2, 0, 8)", lambda: Attention(8, heads=2)(torch.zeros(2, 0, 8)), ValueError,
         "is empty; expected B >= 1 sequences of T >= 1 tokens"),
    Case("Attention(x)", "float16 x, float32 weights, no autocast", lambda: Attention(8, heads=2)(torch.zeros(2, 3, 8).half()),
         TypeError, "dtype torch.float16 but the weights are torch.float32"),
    Case("Attention(x, positions)", "positions (3, T) for a batch of 2",
         lambda: Attention(8, heads=2, rope=_rope(dim=4))(torch.zeros(2, 3, 8), positions=torch.zeros(3, 3)), ValueError,
         "positions must be \\(T,\\) or \\(B, T\\) with B=2, T=3; got \\(3, 3\\)"),
    Case("Attention(x, cache)", "a batch of 3 on a cache of 2 sequences",
         lambda: (lambda a, c: a(torch.zeros(3, 1, 8), cache=c))(*_attention_with_cache_of(2)), ValueError,
         "batch size 3 but the cache holds 2 sequences"),
    Case("GAU(x)", "a 2-D x (T, D)", lambda: _gau()(torch.zeros(3, 8)), ValueError,
         "GAU input x must be \\(B, T, D=8\\)"),
    Case("Transformer(x)", "width 9 for dim=8", lambda: Transformer(8, depth=1, heads=2)(torch.zeros(2, 3, 9)), ValueError,
         "Transformer input x has width D=9; expected dim=8"),
    Case("Lion(params, betas)", "betas=(0.9, 1.5)", lambda: Lion([_param()], betas=(0.9, 1.5)), ValueError,
         "must be two numbers in \\[0, 1\\)"),
    Case("Tiger(params, beta)", "beta=1.0", lambda: Tiger([_param()], beta=1.0), ValueError, "beta=1.0 must be in \\[0, 1\\)"),
    Case("Tiger(params, beta)", "beta=(0.9, 0.99)", lambda: Tiger([_param()], beta=(0.9, 0.99)), TypeError,
         "must be one number in \\[0, 1\\): Tiger uses beta1 = beta2"),
    Case("Lion(param groups)", "a group with lr=-1.0", lambda: Lion([{"params": [_param()], "lr": -1.0}]), ValueError,
         "parameter group 0: lr=-1.0 must be a finite number >= 0"),
    Case("Tiger(param groups)", "a second group with beta=1.5",
         lambda: Tiger([{"params": [_param()]}, {"params": [_param()], "beta": 1.5}]), ValueError,
         "parameter group 1: beta=1.5 must be in \\[0, 1\\)"),
    # sampling
    Case("Sampling", "temperature=inf", lambda: Sampling(temperature=float("inf")), ValueError, "temperature=inf must be finite"),
    Case("Sampling", "temperature='1.0'", lambda: Sampling(temperature="1.0"), TypeError,
         "temperature='1.0' must be a number, not str"),
    Case("Sampling", "guidance=inf", lambda: Sampling(guidance=float("inf")), ValueError, "guidance=inf must be finite"),
    # flows
    Case("flows.sample", "steps=0", lambda: sample(_identity, torch.zeros(2, 2), steps=0), ValueError,
         "steps=0 must be an integer >= 1"),
    Case("flows.sample", "method='rk7'", lambda: sample(_identity, torch.zeros(2, 2), steps=2, method="rk7"), ValueError,
         "method='rk7' is not supported"),
    Case("flows.sample", "float16 x0", lambda: sample(_identity, torch.zeros(2, 2, dtype=torch.half), steps=2), TypeError,
         "x0 must be float32 or float64"),
    Case("flows.sample", "a NaN in x0", lambda: sample(_identity, torch.tensor([[0.0, float("nan")]]), steps=2), ValueError,
         "x0 contains NaN or Inf \\(1 of 2 values\\)"),
    Case("flows.sample", "a model that returns NaN from t = 0.5", lambda: sample(_nan_after_half, torch.zeros(2, 2), steps=4),
         FloatingPointError, "NaN or Inf velocities \\(4 of 4 values\\) at t=0.5, step 3 of 4"),
    Case("scripts/train_flow.py", "--dataset digits --net mlp", lambda: _script_config(
         "train_flow", "FlowTrainConfig", ["--dataset", "digits", "--net", "mlp"]), ValueError, "net='mlp' is for toy2d points"),
    # GANs
    Case("FDivergence(key)", "'chi'", lambda: FDivergence("chi"), ValueError, "unknown divergence 'chi'"),
    Case("build_objective(name)", "'wgan'", lambda: build_objective("wgan"), ValueError, "unknown objective 'wgan'"),
    Case("objective.critic_loss", "a critic that outputs NaN",
         lambda: build_objective("wgan_gp").critic_loss(lambda x: x.sum(1) * float("nan"), torch.zeros(4, 2),
                                                        torch.zeros(4, 2)), NonFiniteCriticError, "NaN or Inf .* the critic diverged"),
    Case("objective.critic_loss", "4 real and 3 fake samples",
         lambda: build_objective("fgan_js").critic_loss(lambda x: x.sum(1), torch.zeros(4, 2), torch.zeros(3, 2)),
         ValueError, "must have the same size"),
    Case("scripts/train_gan.py", "--objective fgan_js --generator_loss proximal", lambda: _script_config(
         "train_gan", "GANTrainConfig", ["--objective", "fgan_js", "--generator_loss", "proximal"]), ValueError,
         "generator_loss='proximal' needs a potential critic"),
    # multimodal token streams
    Case("ImageTokens(indices, h, w)", "5 indices on a 2 x 3 grid", lambda: ImageTokens(torch.arange(5), 2, 3), ValueError, "image has 5 tokens but its grid 2 x 3 needs 6"),
    Case("Vocabulary.image_to_tokens", "index 240 of 240 codes", lambda: _lm().vocab.image_to_tokens(torch.tensor([240])),
         ValueError, "image indices must lie in \\[0, 240\\)"),
    Case("StreamLM(tokens, positions)", "token id 501 in a vocabulary of 501", lambda: _lm()(
         torch.tensor([[501]]), torch.zeros(2, 1, 1)), ValueError, "tokens must be ids in \\[0, 501\\)"),
    Case("text_to_image(model, prompts)", "a 70-byte prompt for a context of 64", lambda: text_to_image(_lm(), ["x" * 70]),
         ValueError, "> the model's context 64"),
    Case("ByteTokenizer.decode", "id 261 (past the specials)", lambda: ByteTokenizer().decode([261]),
         ValueError, "ids must be text token ids in \\[0, 261\\)"),
    Case("StreamLM.from_pretrained", "a weights file of another model", lambda: _in_scratch(_lm_from_another_model),
         ValueError, "holds a 'Classifier', not a 'StreamLM'"),
    Case("scripts/train_lm.py", "--positions rope3d", lambda: _script_config("train_lm", "LMTrainConfig", ["--positions", "rope3d"]), ValueError,
         "positions='rope3d' is not supported"),
    # data and metrics
    Case("build_image_dataset", "name='imagenet'", lambda: build_image_dataset("imagenet"),
         ValueError, "dataset='imagenet' is not supported"),
    Case("sample_toy2d", "n=0", lambda: sample_toy2d("8gaussians", 0), ValueError,
         "must be a positive integer"),
    Case("digits_scores", "RGB images", lambda: digits_scores(torch.zeros(20, 3, 16, 16)),
         ValueError, "\\(N, 1, H, W\\)"),
    Case("frechet_distance_features", "feature sets of different widths",
         lambda: frechet_distance_features(torch.zeros(5, 3), torch.zeros(5, 4)),
         ValueError, "same D"),
    Case("inception_scores", "1 generated image", lambda: inception_scores(
         torch.zeros(4, 3, 32, 32), torch.zeros(1, 3, 32, 32), "unused.pth"), ValueError, "at least 2 per set"),
    Case("find_inception_weights", "a path that does not exist",
         lambda: find_inception_weights("/nonexistent/inception.pth"),
         FileNotFoundError, "do not exist"),
]


ACCEPTED: list[Accepted] = [
    Accepted("FSQ(z)", "values of 1e38", _fsq_saturates, "saturates to the outermost codes (tanh bound)"),
    Accepted("FSQ(levels)", "NumPy integers, e.g. [np.int64(8), 5, 5, 5]", _numpy_levels_equal_python,
             "the same quantizer as Python ints"),
    Accepted("Attention(x, key_padding_mask)", "a fully padded sequence", _fully_padded_sequence_gives_zeros,
             "its outputs are zeros (no NaN, no host sync per layer); the other sequences are unaffected"),
    Accepted("Sampling", "temperature=1e-45", lambda: torch.equal(
        sample_logits(torch.tensor([[-90.0, -3.0, float("-inf"), -3.5]]), Sampling(temperature=1e-45)), torch.tensor([1])),
        "well defined (logits are shifted by their maximum first): tends to greedy; 0 is exactly greedy"),
]

