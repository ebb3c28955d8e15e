"""The command line of the training scripts as a user meets it: the launcher's precision applies, a
folder of one's own images trains and is scored on its held-out part, resume keeps the saved config
(refusing changes without touching config.yaml), and a failed start blocks nothing."""

import json
import sys

import pytest
import torch
from accelerate.state import AcceleratorState

from tests.scripts.conftest import run_script

TINY = ["--image_size", "16", "--channels", "8", "--batch_size", "4", "--eval_batch_size", "256", "--log_every", "1",
        "--eval_every", "0", "--grid_images", "8", "--warmup_steps", "0", "--ckpt_every", "2"]



def _write_pngs(folder, n=30):
    from PIL import Image

    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        array = (torch.rand(20, 24, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(array).save(folder / f"img_{i:03d}.png")


def test_launcher_precision_own_images_and_resume(tmp_path, script, fresh_accelerate):
    """accelerate launch --mixed_precision bf16 (nothing after the script name) trains in bf16 and records it;
    a flat folder of PNGs trains and its held-out tenth is what the test scores measure. Resuming that run
    refuses changed settings and a max_steps below its checkpoint, leaving config.yaml byte-identical."""
    from scripts.train_fsq import main

    images = tmp_path / "mine"
    _write_pngs(images)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
                "--mixed_precision", "bf16", "--dynamo_backend", "no"]
    where = ["--name", "own", "--output_dir", str(tmp_path)]
    proc = run_script([script("train_fsq.py"), *TINY, "--max_steps", "2", "--dataset", "folder", "--data_root", str(images),
                       *where], tmp_path, launcher=launcher)
    run = tmp_path / "own"
    saved = (run / "config.yaml").read_bytes()
    assert b"mixed_precision: bf16" in saved and b"levels:\n- 8\n- 5\n- 5\n- 5" in saved
    assert "mixed precision bf16" in proc.stdout
    results = json.loads((run / "results.json").read_text())
    assert results["train_images"] == 27 and results["test_images"] == 3 and results["images"] == 3

    with pytest.raises(ValueError, match=r"changes \['levels'\]"):
        main([*where, "--resume", "--levels", "[4,4]"])
    with pytest.raises(ValueError, match="is at step 2, past max_steps=1"):
        main(["--resume", str(run), "--max_steps", "1"])
    assert (run / "config.yaml").read_bytes() == saved
    assert json.loads((run / "results.json").read_text())["steps"] == 2


def test_a_failed_start_does_not_block_the_same_command(tmp_path, fresh_accelerate):
    from scripts.train_fsq import main

    argv = [*TINY, "--dataset", "folder", "--data_root", str(tmp_path / "missing"), "--name", "f", "--output_dir", str(tmp_path)]
    for _ in range(2):  # the second time fails the same way, not with "already holds a run"
        with pytest.raises(FileNotFoundError, match="does not exist"):
            main(argv)
        AcceleratorState._reset_state(True)
    assert not (tmp_path / "f" / "config.yaml").exists()
