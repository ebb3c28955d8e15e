"""Held-out loss of a trained text StreamLM at multiples of its training length, per RoPE extrapolation method.

    python scripts/eval_lm_length.py --weights runs/lm_len128/weights/lm.safetensors --multiples "[1, 2, 4, 8]"
    python scripts/eval_lm_length.py --weights ... --methods "[none, ntk, yarn, rerope]" --log_n both --out len.json

For each method (``rope_scaling`` of :class:`~genlab.lm.model.LMConfig`, with ``log_n_post_hoc`` off,
on, or both) and each multiple ``m``, the trained weights are loaded into a model of context
``m x L_train`` (``train_len = L_train``, so fixed scalings use ``factor = m``) and scored on windows
of ``m x L_train`` bytes of the held-out Python standard library (:mod:`genlab.data.text`),
counting only the loss on the last ``L_train - 1`` bytes of each window (blocks.md section 4: a
longer context should then lower the loss, never raise it). Loss in nats per byte. Writes JSON
with the corpus's Python version and sha256.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import torch

from genlab.data.text import ByteWindows, python_stdlib_corpus
from genlab.io import write_text_atomic
from genlab.lm.data import text_batch
from genlab.lm.model import LMConfig, StreamLM, lm_config_dict
from genlab.nn.rope import SCALINGS
from genlab.train import parse_config
from genlab.utils import check_choice


@dataclass
class LengthEvalConfig:
    """Which model, methods and lengths to score."""

    weights: str = ""  # a text StreamLM written by train_lm.py (file or save_pretrained folder)
    methods: list[str] = field(default_factory=lambda: ["none", "pi", "ntk", "ntk_dynamic", "ntk_mixed", "yarn",
                                                        "yarn_dynamic", "rerope", "leaky_rerope"])  # rope_scaling methods to score
    log_n: str = "both"  # post-hoc log-n scale: off | on | both
    multiples: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # evaluation lengths in units of the training length
    windows: int = 64  # held-out windows per multiple (spread evenly)
    batch_size: int = 8  # windows per forward pass
    rerope_window: int = 0  # ReRoPE window; 0 = train_len / 4
    threads: int = 1  # torch CPU threads
    out: str = ""  # JSON file (default: length_eval.json next to the weights)

    def validate(self) -> None:
        if not self.weights:
            raise ValueError("config key 'weights' is required: a StreamLM file or folder written by train_lm.py")
        for m in self.methods:
            check_choice("methods", m, SCALINGS)
        check_choice("log_n", self.log_n, ["off", "on", "both"])
        if any(m < 1 for m in self.multiples) or self.windows < 1 or self.batch_size < 1 or self.threads < 1:
            raise ValueError(f"multiples={self.multiples}, windows={self.windows}, batch_size={self.batch_size} and "
                             f"threads={self.threads} must be >= 1")


@torch.no_grad()
def tail_loss(model: StreamLM, windows: ByteWindows, tail: int, batch_size: int) -> float:
    """Mean next-byte cross-entropy over the last ``tail - 1`` targets of every window (those predicted from the
    last ``tail`` positions, so a window of exactly ``tail`` bytes counts every target)."""
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        tokens = windows.windows[start:start + batch_size].long()
        batch = text_batch(tokens)
        logits = model(tokens, batch.positions, batch.padding_mask)[:, -tail:-1].float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tokens[:, 1 - tail:], reduction="sum")
        total, count = total + ce.item(), count + tokens.shape[0] * (tail - 1)
    return total / count


def evaluate(trained: StreamLM, methods: list[str], log_n: list[bool], multiples: list[int], windows: int,
             batch_size: int, overrides: dict) -> list[dict]:
    cfg = trained.config
    train_len = cfg.train_len or cfg.context
    corpus = python_stdlib_corpus()
    rows = []
    for m in multiples:
        data = ByteWindows(corpus.heldout, m * train_len, windows)
        for method in methods:
            for post in log_n:
                fields = {**lm_config_dict(cfg), "context": m * train_len, "train_len": train_len, "rope_scaling": method,
                          "rope_factor": 0.0, "log_n_post_hoc": post, **overrides}
                try:
                    model = StreamLM(LMConfig(**fields))
                except ValueError as e:  # e.g. post-hoc log-n on a model trained with log-n
                    rows.append({"method": method, "log_n_post_hoc": post, "multiple": m, "skipped": str(e)})
                    continue
                model.load_state_dict(trained.state_dict())
                t0 = time.time()
                loss = tail_loss(model.eval(), data, train_len, batch_size)
                rows.append({"method": method, "log_n_post_hoc": post, "multiple": m, "context": m * train_len,
                             "loss": loss, "windows": len(data), "seconds": time.time() - t0})
                print(f"{method:>13} log_n={int(post)} x{m}: {loss:.4f} nats/byte", flush=True)
    return rows, corpus.info()


def main(argv: list[str] | None = None) -> dict:
    args = parse_config(LengthEvalConfig, argv, doc=__doc__, prog="eval_lm_length.py")
    torch.set_num_threads(args.threads)
    trained = StreamLM.from_pretrained(args.weights)
    if trained.config.image_codebook_size:
        raise ValueError(f"{args.weights!r} is a text+image model; length evaluation runs on text models")
    log_n = {"off": [False], "on": [True], "both": [False, True]}[args.log_n]
    overrides = {"rerope_window": args.rerope_window} if args.rerope_window else {}
    rows, corpus = evaluate(trained, args.methods, log_n, args.multiples, args.windows, args.batch_size, overrides)
    result = {"weights": args.weights, "config": lm_config_dict(trained.config), "corpus": corpus,
              "protocol": f"held-out loss (nats/byte) on the last train_len bytes of {args.windows} windows per multiple",
              "rows": rows}
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.weights)), "length_eval.json")
    write_text_atomic(out, json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
