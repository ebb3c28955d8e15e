"""train_lm.py and sample_lm.py end to end on tiny models: files written, a SIGKILLed run resumes to
bitwise the same state, text-only training, two processes, NaN stops, bad configs and weights of
another model fail with a clear message."""

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from genlab.data import load_digits_tensors
from genlab.lm import LMConfig, StreamBuilder, StreamLM
from genlab.lm.data import captioned_image_batch
from genlab.lm.model import lm_config_dict, token_losses
from genlab.tokenizers import ImageTokenizer, TokenizerConfig, build_tokenizer, tokenizer_config_dict
from genlab.tokenizers.autoencoder import WEIGHTS_KIND
from genlab.train import list_checkpoints, save_weights
from tests.scripts.conftest import TWO_PROCESSES, assert_same_run, kill_after_checkpoint, run_script

TINY = ["--dim", "16", "--depth", "1", "--heads", "2", "--batch_size", "8", "--eval_samples", "1", "--log_every", "1",
        "--eval_every", "0", "--warmup_steps", "0", "--cpu_threads", "1"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """An untrained 16px digits tokenizer (4 x 4 grid, 27 codes): enough to drive the scripts."""
    torch.manual_seed(0)
    cfg = TokenizerConfig(image_channels=1, image_size=16, channels=8, downsample=4, levels=[3, 3, 3])
    path = tmp_path_factory.mktemp("tok") / "tokenizer.safetensors"
    save_weights(build_tokenizer(cfg), path, WEIGHTS_KIND, tokenizer_config_dict(cfg))
    return str(path)


def _state(run_dir, step):
    ckpt = run_dir / "checkpoints" / f"step_{step:08d}"
    return load_file(str(ckpt / "model.safetensors")), torch.load(ckpt / "optimizer.bin", weights_only=False)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_run_writes_everything_and_a_killed_run_resumes_bitwise(tmp_path, script, tokenizer):
    common = [script("train_lm.py"), *TINY, "--tokenizer", tokenizer, "--ckpt_every", "4", "--output_dir", str(tmp_path)]
    run_script(common + ["--max_steps", "20", "--name", "straight"], tmp_path)
    run = tmp_path / "straight"
    results = json.loads((run / "results.json").read_text())
    assert {"loss", "image_loss", "accuracy", "fd_digits_cnn", "fd_noise_floor", "per_class_accuracy"} <= set(results)
    assert results["fd_protocol"]["samples"] == 10 and results["processes"] == 1
    assert list((run / "samples").glob("digits_*.png")) and list((run / "tb").rglob("events.out.tfevents*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 21))
    model = StreamLM.from_pretrained(str(run / "weights" / "lm.safetensors"))
    assert model.vocab.image_codebook_size == 27 and model.config.positions == "rope_tie"
    assert ImageTokenizer.from_pretrained(str(run / "weights" / "tokenizer.safetensors")).codebook_size == 27

    # Kill a second run with SIGKILL right after its first checkpoint, then resume it.
    kill_after_checkpoint([*common, "--max_steps", "20", "--name", "killed"], tmp_path,
                          tmp_path / "killed" / "checkpoints" / "step_00000004")
    assert not (tmp_path / "killed" / "results.json").exists()
    run_script(common + ["--max_steps", "20", "--name", "killed", "--resume"], tmp_path)
    (wa, oa), (wb, ob) = _state(run, 20), _state(tmp_path / "killed", 20)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert _same(oa, ob)
    assert_same_run(run, tmp_path / "killed", 20)  # also the scheduler, the RNG states (dropout) and metrics.jsonl
    train = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
             if '"train"' in line]
    assert train == list(range(1, 21))  # records after the checkpoint were dropped, then written again

    # Sampling from the run: one grid per prompt, accuracy on the named digit, FD with protocol.
    from scripts.sample_lm import main as sample

    res = sample(["--run", str(run), "--samples_per_prompt", "2", "--prompts", '["a handwritten seven", "the digit 3", "hello"]'])
    assert [p["label"] for p in res["prompts"]] == [7, 3, None] and res["prompts"][2]["accuracy"] is None
    assert 0 <= res["mean_accuracy"] <= 1 and "fd" not in res  # 4 labeled samples: too few for a distance
    out = run / "samples" / "prompts"
    assert sorted(p.name for p in out.glob("prompt_*.png")) == [
        "prompt_00_a_handwritten_seven.png", "prompt_01_the_digit_3.png", "prompt_02_hello.png"]
    res = sample(["--run", str(run), "--samples_per_prompt", "1", "--out", str(tmp_path / "ten")])
    assert res["fd"]["metric"] == "FD-digits-cnn" and res["fd"]["protocol"]["samples"] == 10


def test_text_only_training(tmp_path, script):
    run_script([script("train_lm.py"), *TINY, "--dataset", "text", "--context", "32", "--max_steps", "3",
                "--name", "text", "--output_dir", str(tmp_path)], tmp_path)
    results = json.loads((tmp_path / "text" / "results.json").read_text())
    assert results["loss"] > 0 and "accuracy" not in results
    assert StreamLM.from_pretrained(str(tmp_path / "text" / "weights" / "lm.safetensors")).vocab.image_codebook_size == 0
    assert (tmp_path / "text" / "samples" / "text_00000003.txt").exists()
    assert not (tmp_path / "text" / "weights" / "tokenizer.safetensors").exists()


def test_trains_a_tokenizer_when_none_is_given_in_bf16(tmp_path, script):
    run_script([script("train_lm.py"), *TINY, "--tokenizer_steps", "2", "--tokenizer_levels", "[3,3]",
                "--tokenizer_channels", "8", "--max_steps", "1", "--mixed_precision", "bf16", "--name", "auto",
                "--output_dir", str(tmp_path)], tmp_path)
    assert (tmp_path / "fsq-digits16-grid4-levels3-3-ch8-steps2" / "weights" / "tokenizer.safetensors").exists()
    assert StreamLM.from_pretrained(str(tmp_path / "auto" / "weights" / "lm.safetensors")).vocab.image_codebook_size == 9


def test_weights_that_overflow_with_a_finite_loss_are_never_checkpointed(tmp_path, script):
    """At lr 1e6 a step with a finite loss leaves NaN in the weights: the run stops before that step's
    checkpoint, naming the step and the tensor, and the newest checkpoint holds finite weights only."""
    proc = run_script([script("train_lm.py"), "--dataset", "text", "--context", "32", "--dim", "32", "--depth", "1",
                       "--heads", "2", "--qk_dim", "16", "--batch_size", "4", "--max_steps", "8", "--ckpt_every", "1",
                       "--lr", "1e6", "--grad_clip", "0", "--warmup_steps", "0", "--eval_every", "0", "--cpu_threads", "1",
                       "--name", "nan", "--output_dir", str(tmp_path)], tmp_path, check=False)
    stopped = re.search(r"FloatingPointError: (model \(StreamLM\) tensor '[\w.]+'|optimizer \d state .*?|loss 'loss') "
                        r"(holds NaN or Inf|became \S+) at step (\d+)", proc.stderr)
    assert proc.returncode != 0 and stopped, proc.stderr[-3000:]
    assert "then --resume" not in proc.stderr  # resuming with the settings that diverged cannot help
    step = int(stopped.group(3))
    found = list_checkpoints(tmp_path / "nan" / "checkpoints")
    assert found and found[-1][0] == step - 1
    for newest in (found[-1][1] / "model.safetensors", found[-1][1] / "optimizer.bin"):
        values = load_file(str(newest)).values() if newest.suffix == ".safetensors" else \
            [t for s in torch.load(newest, weights_only=True)["state"].values() for t in s.values()]
        assert all(torch.isfinite(v).all() for v in values), newest


@pytest.mark.parametrize("argv, message", [
    (["--positions", "rope3d"], "positions='rope3d' is not supported"),
    (["--dataset", "text", "--loss_on", "image"], "has no targets with dataset='text'"),
    (["--image_grid", "[2,2]"], "into [4, 4] grids; this run needs 1-channel 16px digits on image_grid=[2, 2]"),
    (["--image_codebook_size", "30"], "image_codebook_size=30 does not match the tokenizer's 27 codes"),
    (["--caption_dropout", "1"], "'caption_dropout'=1.0 must be in [0, 1)"),
    (["--top_p", "0"], "top_p=0.0 must be in (0, 1]"),
    (["--levls", "[8,5]"], "unknown config key 'levls'"),
])
def test_bad_configs_fail_clearly(tmp_path, tokenizer, argv, message):
    from scripts.train_lm import main

    with pytest.raises((ValueError, TypeError)) as info:
        main([*TINY, "--tokenizer", tokenizer, "--max_steps", "1", "--output_dir", str(tmp_path), *argv])
    assert message in str(info.value)


def test_weights_of_another_model_fail_clearly(tmp_path, tokenizer):
    from scripts.sample_lm import main as sample
    from scripts.train_lm import main as train

    with pytest.raises(ValueError, match="holds a 'ImageTokenizer', not a 'StreamLM'"):
        sample(["--weights", tokenizer, "--tokenizer", tokenizer])
    lm = tmp_path / "lm.safetensors"
    model = StreamLM(LMConfig(dim=16, depth=1, heads=2))
    save_weights(model, lm, "StreamLM", lm_config_dict(model.config))
    with pytest.raises(ValueError, match="holds a 'StreamLM', not an 'ImageTokenizer'"):
        train([*TINY, "--tokenizer", str(lm), "--output_dir", str(tmp_path)])


@pytest.mark.slow
def test_two_processes_write_once_and_gather_metrics(tmp_path, script, tokenizer):
    run_script([script("train_lm.py"), *TINY, "--tokenizer", tokenizer, "--max_steps", "2", "--ckpt_every", "2",
                "--name", "ddp", "--output_dir", str(tmp_path)], tmp_path, launcher=TWO_PROCESSES)
    run = tmp_path / "ddp"
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2
    assert (run / "checkpoints" / "step_00000002" / "random_states_1.pkl").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if '"split": "train"' in line]) == 2  # written once, not per process
    # The test loss gathered from both shards equals the loss over the whole test set in one process.
    model = StreamLM.from_pretrained(str(run / "weights" / "lm.safetensors"))
    tok = ImageTokenizer.from_pretrained(tokenizer)
    images, labels = load_digits_tensors("test", 16)
    n = len(labels)
    batch = captioned_image_batch(StreamBuilder(model.vocab), tok.encode(images), labels, torch.zeros(n, dtype=torch.long),
                                  torch.ones(n, dtype=torch.bool))
    with torch.no_grad():
        ce, mask = token_losses(model(batch.tokens, batch.positions, batch.padding_mask), batch)
    assert results["loss"] == pytest.approx((ce.sum() / mask.sum()).item(), rel=1e-5)
