"""Every block option of the stream LM: reachable from LMConfig and the command line, round-tripping
through config.yaml and the weights' JSON metadata, and building the module it names."""

import dataclasses
import json

import pytest
import torch

from genlab.lm.data import text_batch
from genlab.lm.model import LMConfig, StreamLM, lm_config_dict
from genlab.nn.attention import Attention
from genlab.nn.gau import GAU
from genlab.optim import Lion, lazy_rows, param_groups
from genlab.train.config import dump_config, parse_config
from scripts.train_lm import LMTrainConfig

TINY = dict(dim=32, depth=2, heads=2, qk_dim=16, context=32)
OPTIONS = [  # (field, value) pairs away from the defaults
    ("train_len", 16), ("attn_scale", "log_n"), ("attn_scale", "fixed"), ("attn_scale", "qk_norm"), ("attn_alpha", 2.5),
    ("log_n_post_hoc", True), ("rope_scaling", "pi"), ("rope_scaling", "ntk"), ("rope_scaling", "ntk_dynamic"),
    ("rope_scaling", "ntk_mixed"), ("rope_scaling", "yarn"), ("rope_scaling", "yarn_dynamic"), ("rope_scaling", "rerope"),
    ("rope_scaling", "leaky_rerope"), ("rope_factor", 4.0), ("ntk_mixed_b", 0.75), ("yarn_tau", 16.0), ("rerope_window", 8),
    ("rerope_leak", 32.0), ("mixer", "gau"), ("gau_attention", "relu2"), ("gau_attention", "softmax"), ("norm", "post"),
    ("deepnet", "lamb"), ("deepnet", "adam"), ("embeddings", "tied"), ("embeddings", "tied_swap"),
]


def _config(key, value, **extra):
    kw = {**TINY, key: value, **extra}
    if key == "gau_attention" or (key == "log_n_post_hoc" and extra.get("mixer") == "gau"):
        kw["mixer"] = "gau"
    return LMConfig(**kw)


@pytest.mark.parametrize("key,value", OPTIONS)
def test_option_round_trips_and_builds(key, value, tmp_path):
    cfg = _config(key, value)
    model = StreamLM(cfg)
    # weights metadata (JSON) and config.yaml / command line give the same config back
    assert LMConfig(**json.loads(json.dumps(lm_config_dict(model.config)))) == model.config
    train_cfg = LMTrainConfig(**lm_config_dict(cfg), dataset="pystdlib")
    (tmp_path / "config.yaml").write_text(dump_config(train_cfg))
    assert lm_config_dict(parse_config(LMTrainConfig, ["--config", str(tmp_path / "config.yaml")])) == lm_config_dict(cfg)
    flag = json.dumps(value) if not isinstance(value, str) else value
    assert getattr(parse_config(LMTrainConfig, [f"--{key}", flag, *(["--mixer", "gau"] if cfg.mixer == "gau" else [])]), key) == value
    tokens = torch.randint(0, 256, (2, 32))
    batch = text_batch(tokens)
    logits = model(tokens, batch.positions, batch.padding_mask)
    assert logits.shape == (2, 32, model.vocab.size) and torch.isfinite(logits).all()


def test_options_reach_the_modules():
    def mixer(**kw):
        return StreamLM(LMConfig(**{**TINY, **kw})).transformer.blocks[0].mixer

    assert isinstance(mixer(mixer="gau", gau_attention="relu2"), GAU) and mixer(mixer="gau", gau_attention="relu2").attention == "relu2"
    m = mixer(attn_scale="qk_norm", attn_alpha=9.0)
    assert isinstance(m, Attention) and m.scale_mode == "qk_norm" and m.scale == 9.0
    assert mixer(attn_scale="fixed", attn_alpha=2.0).scale == pytest.approx(2.0 / 4)  # alpha / sqrt(16)
    m = mixer(log_n_post_hoc=True, train_len=16)
    assert m.log_n_post_hoc and m.train_len == 16 and m.log_n_floor == 16
    rope = StreamLM(LMConfig(**TINY, rope_scaling="yarn", train_len=8)).transformer.rope
    assert rope.scaling == "yarn" and rope.factor == 4.0 and rope.train_len == 8  # factor = context / train_len
    rope = StreamLM(LMConfig(**TINY, rope_scaling="leaky_rerope", train_len=16, rerope_leak=8.0)).transformer.rope
    assert rope.rerope_window == 4 and rope.rerope_leak == 8.0
    post = StreamLM(LMConfig(**TINY, norm="post", deepnet="adam")).transformer.blocks[0]
    assert post.alpha == pytest.approx(4 ** 0.5)  # 2 blocks x 2 sublayers
    tied = StreamLM(LMConfig(**TINY, embeddings="tied"))
    assert tied.head is None and "head.weight" not in tied.state_dict()


def test_tied_swap_logits():
    torch.manual_seed(0)
    model = StreamLM(LMConfig(**TINY, embeddings="tied_swap"))
    h = torch.randn(3, 32)
    torch.testing.assert_close(model.logits(h), torch.cat([h[:, 16:], h[:, :16]], -1) @ model.embed.weight.T)


@pytest.mark.parametrize("bad", [dict(attn_scale="cos"), dict(rope_scaling="alibi"), dict(embeddings="shared"),
                                 dict(deepnet="yes"), dict(rope_factor=0.5), dict(attn_scale="log_n", log_n_post_hoc=True),
                                 dict(mixer="gau", log_n_post_hoc=True), dict(gau_attention="relu"), dict(rerope_leak=0.5)])
def test_bad_options_name_the_field(bad):
    with pytest.raises(ValueError, match=next(iter(k for k in bad if k != "mixer")) if len(bad) == 1 else "log_n_post_hoc"):
        StreamLM(LMConfig(**TINY, **bad))


def test_every_config_field_is_covered():
    new = {f.name for f in dataclasses.fields(LMConfig)} - {"image_codebook_size", "image_grid", "positions", "context", "dim",
                                                           "depth", "heads", "mlp_ratio", "qk_dim", "dropout", "rope_base"}
    assert new <= {k for k, _ in OPTIONS}


def test_lazy_rows_keep_absent_embedding_rows_in_place():
    torch.manual_seed(0)
    model = StreamLM(LMConfig(**TINY))
    opt = Lion(param_groups(model, 1.0), lr=0.1, weight_decay=1.0)
    lazy_rows(opt)
    tokens = torch.randint(0, 100, (2, 32))
    batch = text_batch(tokens)
    model.loss(batch).backward()
    opt.step()  # rows 0..99 may move; the momentum of row 200 is then set by hand
    opt.zero_grad()
    opt.state[model.embed.weight]["exp_avg"][200] = 1.0
    before = model.embed.weight[200:].detach().clone()
    moved = model.embed.weight[:100].detach().clone()
    model.loss(batch).backward()
    opt.step()
    assert torch.equal(model.embed.weight[200:], before) and opt.state[model.embed.weight]["exp_avg"][200].eq(1).all()
    assert not torch.equal(model.embed.weight[:100], moved)


@pytest.mark.parametrize("scaling", ["rerope", "leaky_rerope"])
def test_cached_decoding_past_train_len_matches_full_forwards(scaling):
    """Decoding past train_len with the KV cache equals re-running the whole stream (ReRoPE's cache holds pre-RoPE keys).

    Not so for the dynamic scalings: their cached keys keep the rotation they were stored with."""
    torch.manual_seed(0)
    model = StreamLM(LMConfig(**{**TINY, "train_len": 8, "rope_scaling": scaling, "rerope_window": 3})).eval()
    tokens = torch.randint(0, 256, (1, 12))
    cache = model.new_cache()
    batch = text_batch(tokens)
    model(tokens[:, :8], batch.positions[..., :8], cache=cache)
    steps = [model(tokens[:, i:i + 1], batch.positions[..., i:i + 1], cache=cache)[:, -1] for i in range(8, 12)]
    full = [model(tokens[:, :i + 1], batch.positions[..., :i + 1])[:, -1] for i in range(8, 12)]
    torch.testing.assert_close(torch.stack(steps), torch.stack(full), atol=1e-5, rtol=0)
