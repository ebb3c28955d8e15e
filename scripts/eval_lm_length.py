"""Held-out loss of a trained text StreamLM at multiples of its training length, per RoPE extrapolation method.

    python scripts/eval_lm_length.py --weights runs/lm_len128/weights/lm.safetensors --multiples 1 2 4 8
    python scripts/eval_lm_length.py --weights ... --methods none ntk yarn rerope --log_n both --out len.json

For each method (``rope_scaling`` of :class:`~genlab.lm.model.LMConfig`, with ``log_n_post_hoc`` off,
on, or both) and each multiple ``m``, the trained weights are loaded into a model of context
``m x L_train`` (``train_len = L_train``, so fixed scalings use ``factor = m``) and scored on windows
of ``m x L_train`` bytes of the held-out Python standard library (:mod:`genlab.data.text`),
counting only the loss on the last ``L_train - 1`` bytes of each window (blocks.md section 4: a
longer context should then lower the loss, never raise it). Loss in nats per byte. Writes JSON
with the corpus's Python version and sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlab.data.text import ByteWindows, python_stdlib_corpus  # noqa: E402
from genlab.lm.data import text_batch  # noqa: E402
from genlab.lm.model import LMConfig, StreamLM, lm_config_dict  # noqa: E402
from genlab.nn.rope import SCALINGS  # noqa: E402
from genlab.io import write_text_atomic  # noqa: E402


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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="a StreamLM safetensors file written by train_lm.py")
    p.add_argument("--methods", nargs="+", default=["none", "pi", "ntk", "ntk_dynamic", "ntk_mixed", "yarn", "yarn_dynamic",
                                                    "rerope", "leaky_rerope"], choices=SCALINGS)
    p.add_argument("--log_n", choices=["off", "on", "both"], default="both", help="post-hoc log-n scale")
    p.add_argument("--multiples", nargs="+", type=int, default=[1, 2, 4, 8])
    p.add_argument("--windows", type=int, default=64, help="held-out windows per multiple (spread evenly)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--rerope_window", type=int, default=0, help="0 = train_len / 4")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="", help="JSON file (default: length_eval.json next to the weights)")
    args = p.parse_args(argv)
    if any(m < 1 for m in args.multiples) or args.windows < 1 or args.batch_size < 1:
        raise ValueError(f"multiples={args.multiples}, windows={args.windows} and batch_size={args.batch_size} must be >= 1")
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
