"""train_vqvae.py end to end on a tiny model: files written, a SIGKILLed run resumes bitwise, two
processes write once, a diverging loss stops cleanly, and bad configs or weights fail clearly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from genlab.data import PhotoPatches
from genlab.tokenizers import ImageTokenizer, TokenizerConfig, VectorQuantizer, build_tokenizer
from genlab.train import parse_config, verify_checkpoint
from genlab.io import load_weights, save_weights
from scripts.train_vqvae import VQ_DEFAULTS, VQVAETrainConfig
from tests.scripts.conftest import TWO_PROCESSES, assert_same_run, kill_after_checkpoint, metric_records, run_script

TINY = ["--image_size", "16", "--channels", "8", "--batch_size", "4", "--eval_batch_size", "512", "--log_every", "1",
        "--grid_images", "8", "--warmup_steps", "0", "--cpu_threads", "1",
        "--quantizer_options", "{codebook_size: 64, dim: 4, dead_code_threshold: 0.5}"]


# a fast codebook EMA: unused codes fall below the threshold and are reset from step 5 on
RESETS = ["--quantizer_options", "{codebook_size: 64, dim: 4, dead_code_threshold: 0.5, decay: 0.8}"]


def _state(run_dir, step):
    ckpt = run_dir / "checkpoints" / f"step_{step:08d}"
    model = load_file(str(ckpt / "model.safetensors"))
    optimizer = torch.load(ckpt / "optimizer.bin", weights_only=True)
    return model, optimizer


def _assert_bitwise_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_bitwise_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_bitwise_equal(x, y)
    else:
        assert a == b


def _kill_and_resume(tmp_path, common, launcher=None):
    """``straight``: the run uninterrupted; ``killed``: SIGKILLed once its step-4 checkpoint exists, then resumed."""
    run_script(common + ["--name", "straight"], tmp_path, launcher=launcher)
    first = tmp_path / "killed" / "checkpoints" / "step_00000004"
    kill_after_checkpoint(common + ["--name", "killed"], tmp_path, first, launcher=launcher)
    assert not (tmp_path / "killed" / "results.json").exists(), "the run finished before it could be killed"
    run_script(common + ["--name", "killed", "--resume"], tmp_path, launcher=launcher)
    assert_same_run(tmp_path / "straight", tmp_path / "killed", 12)
    # the dead-code resets, which draw random encoder outputs, went on after the resume point
    dead = {r["step"]: r["dead_codes"] for r in metric_records(tmp_path / "straight") if r["split"] == "train"}
    assert list(dead) == list(range(1, 13)) and any(dead[s] > 0 for s in range(5, 13)), dead


def test_killed_run_resumes_bitwise_and_writes_everything(tmp_path, script):
    """A run SIGKILLed after its step-4 checkpoint, resumed, equals an uninterrupted run: model
    (including the EMA codebook and its statistics), optimizer, scheduler and RNG states and
    metrics.jsonl, bit for bit, with dead-code resets after the resume point (in bf16 mixed
    precision, which the quantizer runs in float32)."""
    common = [script("train_vqvae.py"), *TINY, *RESETS, "--max_steps", "12", "--ckpt_every", "4", "--eval_every", "6",
              "--keep_checkpoints", "5", "--mixed_precision", "bf16", "--output_dir", str(tmp_path)]
    _kill_and_resume(tmp_path, common)
    assert_same_run(tmp_path / "straight", tmp_path / "killed", 8)
    model, _ = _state(tmp_path / "straight", 12)
    assert {"quantizer.codebook", "quantizer.embed_avg", "quantizer.cluster_size", "quantizer.initted"} <= set(model)

    run = tmp_path / "straight"
    assert "mixed_precision: bf16" in (run / "config.yaml").read_text()
    results = json.loads((run / "results.json").read_text())
    assert {"psnr", "ssim", "usage", "perplexity", "codes_used", "seconds_per_step"} <= set(results)
    assert 0 < results["usage"] <= 1 and results["codebook_size"] == 64
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 13))
    assert all("dead_codes" in r for r in records if r["split"] == "train")
    assert (run / "config.yaml").exists() and list((run / "samples").glob("reconstructions_*.png"))

    tok = ImageTokenizer.from_pretrained(str(run / "weights" / "tokenizer.safetensors"))
    assert isinstance(tok.quantizer, VectorQuantizer) and tok.codebook_size == 64 and tok.quantizer.initted
    ids = tok.encode(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert ids.shape == (2, 4, 4) and ids.dtype == torch.long
    assert tok.decode(ids).shape == (2, 3, 16, 16)


def test_weights_of_another_model_fail_clearly(tmp_path):
    vq_tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8, quantizer="vq",
                                             quantizer_options={"codebook_size": 64, "dim": 4}))
    fsq_tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8))
    save_weights(fsq_tok, tmp_path / "fsq.safetensors", "ImageTokenizer")
    with pytest.raises(ValueError, match="does not fit this ImageTokenizer.*missing \\['quantizer.cluster_size'"):
        load_weights(vq_tok, tmp_path / "fsq.safetensors", "ImageTokenizer")
    save_weights(vq_tok.quantizer, tmp_path / "vq.safetensors", "VectorQuantizer")
    with pytest.raises(ValueError, match="holds a 'VectorQuantizer', not an 'ImageTokenizer'"):
        ImageTokenizer.from_pretrained(str(tmp_path / "vq.safetensors"))


def test_diverging_loss_stops_with_step_and_keeps_the_last_checkpoint(tmp_path, script):
    proc = run_script([script("train_vqvae.py"), *TINY, "--max_steps", "5", "--ckpt_every", "1", "--eval_every", "0",
                       "--lr", "1e30", "--name", "nan", "--output_dir", str(tmp_path)], tmp_path, check=False)
    assert proc.returncode != 0 and "FloatingPointError: loss 'rec' became nan at step 2" in proc.stderr
    checkpoints = sorted(p.name for p in (tmp_path / "nan" / "checkpoints").iterdir())
    assert checkpoints == ["step_00000001"]
    assert verify_checkpoint(tmp_path / "nan" / "checkpoints" / "step_00000001")["step"] == 1


def test_bad_config_fails_before_a_run_folder_exists(tmp_path, script):
    proc = run_script([script("train_vqvae.py"), *TINY, "--max_steps", "1", "--output_dir", str(tmp_path),
                       "--quantizer_options", "{codebok_size: 64}"], tmp_path, check=False)
    assert proc.returncode != 0 and "unexpected keyword argument 'codebok_size'" in proc.stderr
    assert not (tmp_path / "vqvae").exists()


@pytest.mark.parametrize("argv, message", [
    (["--quantizer_options", "{codebook_size: 0}"], "codebook_size=0 must be an integer >= 1"),
    (["--quantizer_options", "{dead_code_threshold: -1}"], "dead_code_threshold=-1 must lie in [0.0, inf)"),
    (["--levels", "[8,5,5]"], "levels=[8, 5, 5] is an FSQ option; quantizer='vq' does not use it"),
    (["--quantizer_options", "[1024]"], "config key 'quantizer_options' expects a mapping"),
])
def test_bad_configs_fail_clearly(argv, message):
    with pytest.raises((ValueError, TypeError)) as err:
        parse_config(VQVAETrainConfig, argv)  # what the script runs first, before any file is written
    assert message in str(err.value)


def test_quantizer_options_override_the_defaults_one_key_at_a_time():
    cfg = parse_config(VQVAETrainConfig, ["--quantizer_options", "{codebook_size: 4096}"])
    assert cfg.quantizer_options == {**VQ_DEFAULTS, "codebook_size": 4096}
    assert parse_config(VQVAETrainConfig, []).quantizer_options == VQ_DEFAULTS
    # configs/vq/photos.yaml holds the script's defaults, as its header says
    assert parse_config(VQVAETrainConfig, ["--config", "configs/vq/photos.yaml"]) == VQVAETrainConfig()


@pytest.mark.slow
def test_two_processes_resume_bitwise_write_once_and_gather_metrics(tmp_path, script):
    """Two processes (gloo on CPU): the launcher and both workers SIGKILLed after the step-4 checkpoint,
    resumed, end bitwise equal to an uninterrupted run (both processes' RNG states, synced codebook)."""
    common = [script("train_vqvae.py"), *TINY, *RESETS, "--max_steps", "12", "--ckpt_every", "4", "--eval_every", "0",
              "--keep_checkpoints", "5", "--output_dir", str(tmp_path)]
    _kill_and_resume(tmp_path, common, launcher=TWO_PROCESSES)
    run = tmp_path / "straight"
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2
    assert results["images"] == len(PhotoPatches("test", 16))  # gathered from both processes, padding dropped
    assert (run / "checkpoints" / "step_00000012" / "random_states_1.pkl").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if '"split": "train"' in line]) == 12  # written once, not per process
    assert len([line for line in lines if '"split": "test"' in line]) == 1
    assert len(list((run / "samples").glob("*.png"))) == 1 and len(list((run / "weights").iterdir())) == 1
