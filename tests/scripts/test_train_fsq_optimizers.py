"""Tiger from a training script's config (`--optimizer tiger`): bf16 autocast with Accelerate's
gradient accumulation, and a bitwise resume of model and Tiger state (its micro-step counter
included). Lion goes through the same `build_optimizer` path (tests/train/test_optim.py)."""

import torch
from safetensors.torch import load_file

from tests.scripts.conftest import run_script

TINY = ["--image_size", "16", "--channels", "8", "--batch_size", "4", "--eval_batch_size", "256", "--log_every", "1",
        "--eval_every", "0", "--grid_images", "8", "--warmup_steps", "0", "--grad_accum", "2", "--mixed_precision", "bf16"]


def _state(run_dir, step):
    ckpt = run_dir / "checkpoints" / f"step_{step:08d}"
    return load_file(str(ckpt / "model.safetensors")), torch.load(ckpt / "optimizer.bin", weights_only=False)


def test_tiger_resumes_bitwise_under_bf16_and_accumulation(tmp_path, script):
    common = [script("train_fsq.py"), *TINY, "--optimizer", "tiger", "--lr", "2e-3", "--weight_decay", "0.01",
              "--ckpt_every", "2", "--output_dir", str(tmp_path)]
    run_script(common + ["--max_steps", "4", "--name", "straight"], tmp_path)
    run_script(common + ["--max_steps", "2", "--name", "split"], tmp_path)
    run_script(common + ["--max_steps", "4", "--name", "split", "--resume"], tmp_path)
    (wa, oa), (wb, ob) = _state(tmp_path / "straight", 4), _state(tmp_path / "split", 4)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all(g["micro_step"] == 4 for g in oa["param_groups"])  # one optimizer step per 2 micro-batches
    assert [g["micro_step"] for g in oa["param_groups"]] == [g["micro_step"] for g in ob["param_groups"]]
    for i, s in oa["state"].items():
        assert list(s) == ["exp_avg"] and torch.equal(s["exp_avg"], ob["state"][i]["exp_avg"])

