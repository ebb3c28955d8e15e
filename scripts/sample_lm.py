"""Text-to-image sampling from a trained stream LM: an image grid per prompt, the digits classifier's
accuracy on the class each prompt names, and FD-digits-cnn with its protocol.

    python scripts/sample_lm.py --run runs/lm                                   # "a handwritten <digit>", 0-9
    python scripts/sample_lm.py --run runs/lm --prompts '["the digit three", "a scanned 8"]' --guidance 2
    python scripts/sample_lm.py --weights lm.safetensors --tokenizer tokenizer.safetensors --out samples

Writes ``<out>/`` (default ``<run>/samples/prompts``): ``prompt_<k>_<slug>.png`` per prompt,
``all_prompts.png`` (one row per prompt) and ``results.json`` (per-prompt accuracy, the mean over
prompts that name a digit, FD-digits-cnn with noise floor and protocol, and the sampling settings).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genlab.lm.captions import label_of, prompt_for
from genlab.lm.generate import Sampling, text_to_image
from genlab.lm.model import StreamLM
from genlab.metrics import digits_features, digits_scores
from genlab.tokenizers import ImageTokenizer
from genlab.train import parse_config, save_grid
from genlab.io import write_text_atomic


@dataclass
class SampleConfig:
    """What to sample and how; ``weights``/``tokenizer`` default to the run folder's."""

    run: str = "runs/lm"  # a scripts/train_lm.py run folder
    weights: str = ""  # default <run>/weights/lm.safetensors
    tokenizer: str = ""  # default <run>/weights/tokenizer.safetensors
    prompts: list[str] = field(default_factory=list)  # default: "a handwritten <digit>" for each digit
    samples_per_prompt: int = 20  # images generated per prompt
    temperature: float = 1.0  # softmax temperature of the image tokens
    top_k: int = 0  # keep the k most likely tokens; 0 = all
    top_p: float = 1.0  # nucleus sampling mass; 1 = off
    guidance: float = 3.0  # classifier-free guidance scale (1 = none)
    seed: int = 0  # seeds the sampling generator
    batch_size: int = 200  # prompts sampled together
    out: str = ""  # default <run>/samples/prompts
    device: str = ""  # default cuda when available, else cpu

    def validate(self) -> None:
        Sampling(self.temperature, self.top_k, self.top_p, self.guidance).validate()
        for key in ("samples_per_prompt", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"config key {key!r}={getattr(self, key)} must be >= 1")
        if any(not p.strip() for p in self.prompts):
            raise ValueError(f"config key 'prompts'={self.prompts!r} holds an empty prompt")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "prompt"


@torch.no_grad()
def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(SampleConfig, argv, doc=__doc__, prog="sample_lm.py")
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = StreamLM.from_pretrained(cfg.weights or os.path.join(cfg.run, "weights", "lm.safetensors"), device)
    tok = ImageTokenizer.from_pretrained(cfg.tokenizer or os.path.join(cfg.run, "weights", "tokenizer.safetensors"), device)
    if tok.codebook_size != model.vocab.image_codebook_size:
        raise ValueError(f"the tokenizer has {tok.codebook_size} codes but the model's image vocabulary has "
                         f"{model.vocab.image_codebook_size}; pass the tokenizer the model was trained with")
    prompts = cfg.prompts or [prompt_for(c) for c in range(10)]
    out = Path(cfg.out or os.path.join(cfg.run, "samples", "prompts"))
    sampling = Sampling(cfg.temperature, cfg.top_k, cfg.top_p, cfg.guidance)
    n = cfg.samples_per_prompt

    flat = [p for p in prompts for _ in range(n)]
    g = torch.Generator(device).manual_seed(cfg.seed)
    chunks = tqdm(range(0, len(flat), cfg.batch_size), desc="sample", unit="batch", dynamic_ncols=True)
    grids = torch.cat([text_to_image(model, flat[i:i + cfg.batch_size], sampling, generator=g) for i in chunks])
    images = torch.cat([tok.decode(chunk).float().clamp(-1, 1).cpu() for chunk in grids.split(256)])
    per_prompt = images.view(len(prompts), n, *images.shape[1:])
    shown = min(n, 10)
    for k, (prompt, rows) in enumerate(zip(prompts, per_prompt)):
        save_grid(rows, out / f"prompt_{k:02d}_{slug(prompt)}.png", nrow=min(n, 10), scale=2)
    save_grid(per_prompt[:, :shown].flatten(0, 1), out / "all_prompts.png", nrow=shown, scale=2)

    labels = [label_of(p) for p in prompts]
    results: dict = {"sampling": asdict(sampling), "samples_per_prompt": n, "seed": cfg.seed, "prompts": []}
    named = [k for k, c in enumerate(labels) if c is not None]
    if named and images.shape[1] == 1:
        x = per_prompt[named].flatten(0, 1)
        y = torch.tensor([labels[k] for k in named]).repeat_interleave(n)
        if len(x) >= 10:
            score = digits_scores(x, y, seed=cfg.seed)
            results["fd"] = {"metric": score.metric, "value": score.value, "noise_floor": score.extra["noise_floor"],
                             "precision": score.extra["precision"], "recall": score.extra["recall"],
                             "protocol": score.protocol}
        _, preds = digits_features(x)
        hits = (preds == y).float().view(len(named), n).mean(1).tolist()
        results["mean_accuracy"] = sum(hits) / len(hits)
        accuracy = dict(zip(named, hits))
    else:
        accuracy = {}
    for k, (prompt, label) in enumerate(zip(prompts, labels)):
        results["prompts"].append({"prompt": prompt, "label": label, "accuracy": accuracy.get(k),
                                   "grid": f"prompt_{k:02d}_{slug(prompt)}.png"})
    write_text_atomic(out / "results.json", json.dumps(results, indent=1))
    for r in results["prompts"]:
        acc = f"{r['accuracy']:.2f}" if r["accuracy"] is not None else "n/a"
        print(f"{r['prompt']!r}: classifier accuracy on the named digit {acc}")
    if "mean_accuracy" in results:
        print(f"mean accuracy over {len(named)} prompts: {results['mean_accuracy']:.3f}")
    if "fd" in results:
        print(f"{results['fd']['metric']} {results['fd']['value']:.3g} (noise floor {results['fd']['noise_floor']:.3g}, "
              f"{results['fd']['protocol']['samples']} samples)")
    return results


if __name__ == "__main__":
    main()
