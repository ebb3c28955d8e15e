"""The CUDA path: FSQ, VQ, the stream LM and a training step on a GPU, in float32 and bf16.

Skipped without CUDA; ``scripts/gpu_check.sh`` runs them (with the bf16 tests) on a GPU machine.
"""

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_fsq_on_cuda_equals_cpu_and_peer():
    from vector_quantize_pytorch import FSQ as PeerFSQ

    from genlab.tokenizers import FSQ

    z = torch.randn(4, 1024, 5) * 2
    q_cpu, idx_cpu, _ = FSQ([8, 8, 8, 6, 5])(z)
    q, idx, _ = FSQ([8, 8, 8, 6, 5]).cuda()(z.cuda())
    q_peer, idx_peer = PeerFSQ([8, 8, 8, 6, 5]).cuda()(z.cuda())
    assert torch.equal(idx.cpu(), idx_cpu) and torch.equal(idx, idx_peer.long())
    torch.testing.assert_close(q.cpu(), q_cpu, rtol=0, atol=1e-6)  # tanh may differ by an ulp across devices
    assert torch.equal(q, q_peer)


def test_fsq_nonfinite_input_fails_on_cuda_without_a_host_sync_in_forward():
    from genlab.tokenizers import FSQ

    z = torch.zeros(2, 16, 4, device="cuda")
    z[0, 3, 1] = float("nan")
    with pytest.raises(RuntimeError):
        FSQ([8, 5, 5, 5]).cuda()(z)
        torch.cuda.synchronize()


def test_fsq_bf16_autocast_on_cuda():
    from genlab.tokenizers import FSQ

    z = torch.randn(2, 64, 4, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        q, idx, _ = FSQ([8, 5, 5, 5]).cuda()(z.bfloat16())
    q.float().sum().backward()
    assert q.dtype == torch.bfloat16 and idx.dtype == torch.long and torch.isfinite(z.grad).all()


def test_vq_training_step_on_cuda():
    from genlab.tokenizers import VectorQuantizer

    vq = VectorQuantizer(32, 256).cuda().train()
    z = torch.randn(4, 128, 32, device="cuda", requires_grad=True)
    quantized, indices, loss = vq(z)
    (quantized.square().mean() + loss).backward()
    assert indices.device.type == "cuda" and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stream_lm_decodes_the_same_with_and_without_cache_on_cuda(dtype):
    from genlab.lm import LMConfig, Sampling, StreamLM, text_to_image
    from scripts.benchmarks.lm import decode_without_cache

    torch.manual_seed(0)
    model = StreamLM(LMConfig(image_codebook_size=16, dim=32, depth=2, heads=2)).cuda().eval()
    prompts = ["a handwritten seven", "a handwritten one"]
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        cached = text_to_image(model, prompts, Sampling(temperature=0))
        full = decode_without_cache(model, prompts)
    assert cached.device.type == "cuda" and cached.shape == (2, 4, 4)
    if dtype == torch.float32:
        assert torch.equal(cached, full)


def test_train_fsq_bf16_on_cuda(tmp_path):
    from scripts.train_fsq import main

    metrics = main(["--dataset", "digits", "--image_size", "8", "--image_channels", "1", "--channels", "8",
                    "--batch_size", "8", "--max_steps", "3", "--eval_every", "0", "--ckpt_every", "0",
                    "--grid_images", "8", "--mixed_precision", "bf16", "--output_dir", str(tmp_path), "--name", "cuda"])
    assert (tmp_path / "cuda" / "weights" / "tokenizer.safetensors").exists() and metrics
