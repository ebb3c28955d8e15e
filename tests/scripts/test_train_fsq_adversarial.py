"""train_fsq.py with the adversarial loss: the two-optimizer run resumes bitwise after SIGKILL (tokenizer,
discriminator, both optimizers, LeCam anchors), and the 128 x 128 config runs end to end at tiny width."""

import json

import torch
from safetensors.torch import load_file

from tests.scripts.conftest import kill_after_checkpoint, run_script

TINY = ["--image_size", "16", "--channels", "8", "--batch_size", "4", "--eval_batch_size", "256", "--log_every", "1",
        "--eval_every", "0", "--grid_images", "8", "--warmup_steps", "0"]
GAN = ["--adversarial", "reflow", "--disc_channels", "4", "--disc_layers", "1", "--disc_start", "1", "--gan_start", "2",
       "--lecam_weight", "0.1", "--disc_lr", "1e-3"]


def _checkpoint(run_dir, step):
    ckpt = run_dir / "checkpoints" / f"step_{step:08d}"
    tensors = {f"{name}/{k}": v for name in ("model", "model_1") for k, v in load_file(str(ckpt / f"{name}.safetensors")).items()}
    for name in ("optimizer", "optimizer_1"):
        state = torch.load(ckpt / f"{name}.bin", weights_only=True)["state"]
        tensors.update({f"{name}/{i}/{k}": v for i in state for k, v in state[i].items()})
    state = torch.load(ckpt / "custom_checkpoint_0.pkl", weights_only=True)  # the loss's generator, LeCam anchors
    tensors.update({"generator": state["generator"], **{f"lecam/{k}": v for k, v in state["lecam"].items()}})
    return tensors


def test_killed_adversarial_run_resumes_bitwise(tmp_path, script):
    common = [script("train_fsq.py"), *TINY, *GAN, "--max_steps", "4", "--ckpt_every", "2", "--output_dir", str(tmp_path)]
    run_script(common + ["--name", "straight"], tmp_path)
    kill_after_checkpoint(common + ["--name", "split"], tmp_path, tmp_path / "split" / "checkpoints" / "step_00000002")
    proc = run_script(common + ["--name", "split", "--resume"], tmp_path)
    assert "resumed from" in proc.stdout
    a, b = _checkpoint(tmp_path / "straight", 4), _checkpoint(tmp_path / "split", 4)
    assert a.keys() == b.keys() and any(k.startswith("model_1/") for k in a) and "lecam/ema_real" in a
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    records = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 5))
    assert "disc_loss" not in train[0] and "gan" not in train[1] and {"disc_loss", "gan", "adaptive_weight"} <= set(train[2])


def test_128_pixel_config_runs_end_to_end_at_tiny_width(tmp_path, script):
    run_script([script("train_fsq.py"), "--config", "configs/fsq/photos128_gan.yaml",
                "--channels", "4", "--disc_channels", "4", "--batch_size", "2", "--max_steps", "2", "--disc_start", "0",
                "--gan_start", "1", "--ckpt_every", "0", "--eval_every", "0", "--log_every", "1", "--name", "p128",
                "--output_dir", str(tmp_path)], tmp_path)
    results = json.loads((tmp_path / "p128" / "results.json").read_text())
    assert results["codebook_size"] == 64000 and results["images"] == 148
    assert {"psnr", "ssim", "hf_ratio", "usage", "perplexity"} <= set(results)
    last = json.loads((tmp_path / "p128" / "metrics.jsonl").read_text().splitlines()[1])
    assert last["step"] == 2 and "gan" in last and "disc_loss" in last
