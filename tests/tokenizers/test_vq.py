"""VectorQuantizer: equivalence with vector-quantize-pytorch, hand-computed test vectors, every option
(EMA / gradient codebook, k-means init, dead-code reset, projections, cosine codes, rotation trick,
chunked distances), autocast, and bad input."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from vector_quantize_pytorch import VectorQuantize
from vector_quantize_pytorch.vector_quantize_pytorch import rotate_to as peer_rotate_to

from genlab.tokenizers import VectorQuantizer
from genlab.tokenizers.vq import rotate_to


def _peer_with_our_state(ours: VectorQuantizer, **kwargs) -> VectorQuantize:
    peer = VectorQuantize(ours.dim, ours.codebook_size, decay=ours.decay, commitment_weight=ours.commitment_weight,
                          rotation_trick=False, kmeans_init=False, sync_codebook=False,
                          use_cosine_sim=ours.distance == "cosine", **kwargs)
    with torch.no_grad():
        peer._codebook.embed.copy_(ours.codebook[None])
        peer._codebook.embed_avg.copy_(ours.embed_avg[None])
        peer._codebook.cluster_size.copy_(ours.cluster_size[None])
    return peer


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_assignment_and_one_ema_update_equal_peer(distance):
    torch.manual_seed(0)
    ours = VectorQuantizer(16, 512, distance=distance)
    with torch.no_grad():  # a codebook with non-trivial EMA state
        codes = torch.randn(512, 16)
        ours.codebook.copy_(F.normalize(codes, dim=-1) if distance == "cosine" else codes)
        ours.cluster_size.uniform_(0.5, 3.0)
        ours.embed_avg.copy_(ours.codebook * ours.cluster_size[:, None])
    peer = _peer_with_our_state(ours)
    x = torch.randn(4, 300, 16, requires_grad=True)

    q, idx, loss = ours(x)
    q_peer, idx_peer, loss_peer = peer(x)
    assert idx.dtype == torch.long and torch.equal(idx, idx_peer)
    assert torch.equal(q, q_peer)  # same codes, same straight-through op order
    torch.testing.assert_close(loss, loss_peer, rtol=1e-6, atol=0)
    # One EMA step: counts are exact, sums differ only in summation order.
    assert torch.equal(ours.cluster_size, peer._codebook.cluster_size[0])
    torch.testing.assert_close(ours.embed_avg, peer._codebook.embed_avg[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.codebook, peer._codebook.embed[0], rtol=1e-5, atol=1e-6)

    (g,) = torch.autograd.grad((q * torch.arange(16.0)).sum() + loss, x)
    (g_peer,) = torch.autograd.grad((q_peer * torch.arange(16.0)).sum() + loss_peer, x)
    torch.testing.assert_close(g, g_peer)

    ours.eval(), peer.eval()  # after the update the codebooks agree to float32 rounding
    x2 = torch.randn(2, 50, 16)
    q, idx, _ = ours(x2)
    q_peer, idx_peer, _ = peer(x2)
    assert torch.equal(idx, idx_peer)
    torch.testing.assert_close(q, q_peer, rtol=1e-5, atol=1e-6)


def test_spec_nearest_code_and_losses():
    z = torch.tensor([[0.9, 0.2]], requires_grad=True)
    codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ema = VectorQuantizer(2, 3).eval()
    grad = VectorQuantizer(2, 3, codebook_update="gradient").eval()
    with torch.no_grad():
        ema.codebook.copy_(codebook), grad.codebook.copy_(codebook)
    q, idx, loss = grad(z)
    assert idx.tolist() == [1] and q.tolist() == [[1.0, 0.0]]
    # mean over the 2 code channels: codebook term 0.025, commitment term 0.25 * 0.025
    torch.testing.assert_close(loss, torch.tensor(0.025 + 0.00625))
    torch.testing.assert_close(ema(z).loss, torch.tensor(0.00625))  # EMA: commitment term only

    loss.backward()
    # codebook term: d/de_1 mean((e_1 - sg z)^2) = (e_1 - z) over 2 channels; other codes get nothing
    torch.testing.assert_close(grad.codebook.grad, torch.tensor([[0.0, 0.0], [0.1 / 2 * 2, -0.2 / 2 * 2], [0.0, 0.0]]))


def test_straight_through_gradient_is_identity():
    vq = VectorQuantizer(8, 64)
    z = torch.randn(5, 7, 8, requires_grad=True)
    vq.commitment_weight = 0.0
    (g,) = torch.autograd.grad(vq(z).quantized.sum(), z)
    assert torch.equal(g, torch.ones_like(z))


def test_spec_ema_step():
    vq = VectorQuantizer(2, 3, decay=0.99)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        vq.embed_avg.copy_(vq.codebook)  # N = 1, m = e N
    _, idx, _ = vq(torch.tensor([[0.9, 0.2], [1.1, -0.1], [0.1, 0.95]]))
    assert idx.tolist() == [1, 1, 2]
    torch.testing.assert_close(vq.cluster_size, torch.tensor([0.99, 1.01, 1.00]))
    torch.testing.assert_close(vq.codebook, torch.tensor([[0.0, 0.0], [1.0, 0.00099], [0.001, 0.9995]]), atol=2e-6, rtol=0)


def test_buffers_update_only_in_training_mode():
    vq = VectorQuantizer(4, 16)
    state = {k: v.clone() for k, v in vq.state_dict().items()}
    vq.eval()(torch.randn(32, 4))
    assert all(torch.equal(v, vq.state_dict()[k]) for k, v in state.items())
    vq.train()(torch.randn(32, 4))
    assert not torch.equal(state["cluster_size"], vq.cluster_size)


def test_gradient_codebook_learns_by_the_codebook_term():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8, codebook_update="gradient", kmeans_init=True)
    assert isinstance(vq.codebook, torch.nn.Parameter) and "embed_avg" not in vq.state_dict()
    data = torch.randn(256, 4)
    vq(data)  # k-means init
    opt = torch.optim.SGD(vq.parameters(), lr=4.0)
    before = vq.codebook.detach().clone()
    for _ in range(5):
        out = vq(data + 0.5)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    moved = (vq.codebook.detach() - before).mean(0)
    assert (moved > 0.1).all()  # codes follow the shifted data


def test_kmeans_init_finds_the_clusters_once():
    torch.manual_seed(0)
    centres = torch.randn(8, 6) * 10
    data = (centres[:, None] + 0.01 * torch.randn(8, 64, 6)).reshape(-1, 6)
    vq = VectorQuantizer(6, 32, kmeans_init=True, kmeans_iters=10)
    assert not vq.initted
    vq.eval()(data)
    assert not vq.initted  # never initialised outside training
    vq.train()(data)
    assert vq.initted
    assert (torch.cdist(centres, vq.codebook).min(1).values < 0.05).all()  # every cluster has a code
    assert (torch.cdist(vq.codebook, centres).min(1).values < 0.05).all()  # and no code lies between clusters
    assert vq.cluster_size.sum() == len(data)
    codebook = vq.codebook.clone()
    vq(data)
    assert (vq.codebook - codebook).abs().max() < 1e-3  # a Lloyd fixed point, not initialised again
    codebook = vq.codebook.clone()
    fresh = VectorQuantizer(6, 32, kmeans_init=True)
    fresh.load_state_dict(vq.state_dict())
    fresh.eval()
    assert fresh.initted and torch.equal(fresh.codebook, codebook)


def test_dead_codes_are_reset_with_their_ema_state():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 4, decay=0.5, dead_code_threshold=0.5, reset_size=2.0)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0], [-50.0, 50.0]]))
        vq.embed_avg.copy_(vq.codebook)
    batch = torch.randn(64, 2) * 0.3
    vq(batch)  # codes 2 and 3 get nothing: N = 0.5 * 1 + 0 = 0.5, not below the threshold
    assert vq.dead_codes == 0 and vq.codebook[2:].abs().min() > 49
    vq(batch)  # N = 0.25 < 0.5: dead, and replaced by encoder outputs of this batch
    assert vq.dead_codes == 2
    new = vq.codebook[2:]
    assert all((batch == row).all(1).any() for row in new) and not torch.equal(new[0], new[1])
    assert vq.cluster_size[2:].tolist() == [2.0, 2.0]  # N = reset_size
    assert torch.equal(vq.embed_avg[2:], new * 2.0)  # m = e * reset_size

    # Check: one more step with no vectors for a reset code keeps it at its new value
    # (a stale m / N would drag it back to where it died).
    vq2 = VectorQuantizer(2, 3, decay=0.99, dead_code_threshold=0.5)
    with torch.no_grad():
        vq2.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [40.0, 40.0]]))
        vq2.embed_avg.copy_(vq2.codebook * 0.6)
        vq2.cluster_size.fill_(0.6)
    batch = torch.tensor([[0.0, 0.0], [0.9, 0.1], [1.0, 0.1]])
    for _ in range(30):  # code 2 gets nothing: N decays from 0.6 below 0.5
        vq2(batch)
        if vq2.dead_codes:
            break
    assert vq2.dead_codes == 1
    reset = vq2.codebook[2].clone()
    assert (batch == reset).all(1).any()
    vq2.dead_code_threshold = 0.0  # no further resets
    # (-10, 0) goes to code 0 at exactly (0, 0) (ties go to the lower index): the reset code gets nothing.
    assert vq2(torch.tensor([[-10.0, 0.0]])).indices.tolist() == [0]
    torch.testing.assert_close(vq2.codebook[2], reset, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("codebook_update", ["ema", "gradient"])
def test_dead_code_reset_revives_a_collapsed_codebook(codebook_update):
    torch.manual_seed(0)
    centres = torch.randn(64, 4) * 3

    def usage(threshold: float) -> float:
        torch.manual_seed(1)
        vq = VectorQuantizer(4, 64, codebook_update=codebook_update, dead_code_threshold=threshold)
        with torch.no_grad():
            vq.codebook.copy_(torch.randn(64, 4) * 0.01 + 10)  # all codes far from the data: collapse
        sample = lambda n: centres[torch.randint(64, (n,))] + 0.05 * torch.randn(n, 4)  # noqa: E731
        for _ in range(30):
            vq(sample(512))
        return vq.eval()(sample(4096)).indices.unique().numel() / 64

    assert usage(0.0) < 0.25
    assert usage(1.0) > 0.9


def test_low_dimensional_codes_project_in_and_out():
    vq = VectorQuantizer(32, 128, codebook_dim=4)
    assert vq.codebook.shape == (128, 4)
    assert isinstance(vq.project_in, torch.nn.Linear) and vq.project_in.out_features == 4
    x = torch.randn(2, 9, 32, requires_grad=True)
    q, idx, loss = vq(x)
    assert q.shape == x.shape and idx.shape == (2, 9)
    (q.sum() + loss).backward()
    assert vq.project_in.weight.grad.abs().sum() > 0 and vq.project_out.weight.grad.abs().sum() > 0
    vq.eval()
    q, idx, _ = vq(x)
    torch.testing.assert_close(vq.indices_to_codes(idx), q)


def test_cosine_codes_stay_on_the_sphere():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 32, distance="cosine", kmeans_init=True, dead_code_threshold=0.5)
    for _ in range(3):
        vq(torch.randn(64, 8) * 5)
    torch.testing.assert_close(vq.codebook.norm(dim=1), torch.ones(32))
    vq.eval()
    x = torch.randn(10, 8) * 5
    q, idx, _ = vq(x)
    torch.testing.assert_close(q.norm(dim=1), torch.ones(10))
    assert torch.equal(idx, (F.normalize(x, dim=1) @ vq.codebook.t()).argmax(1))


def test_rotation_trick_spec_vectors():
    z = torch.tensor([[1.0, 0.0]], requires_grad=True)
    out = rotate_to(z, torch.tensor([[0.0, 2.0]]))
    assert out.tolist() == [[0.0, 2.0]]  # forward value is the code itself
    (g,) = torch.autograd.grad((out * torch.tensor([1.0, 0.0])).sum(), z)
    torch.testing.assert_close(g, torch.tensor([[0.0, -2.0]]))

    # z = [3, 4], q = [1, 1]: G = [[0.28, 0.04], [-0.04, 0.28]]; the gradient is G^T g.
    z = torch.tensor([[3.0, 4.0]], requires_grad=True)
    G = torch.tensor([[0.28, 0.04], [-0.04, 0.28]])
    torch.testing.assert_close(G @ z.detach()[0], torch.tensor([1.0, 1.0]))
    rows = [torch.autograd.grad(rotate_to(z, torch.tensor([[1.0, 1.0]]))[0, i], z)[0][0] for i in range(2)]
    torch.testing.assert_close(torch.stack(rows), G)  # Jacobian of the estimator is G
    scaled = G / (2**0.5 / 5)
    torch.testing.assert_close(scaled @ scaled.t(), torch.eye(2))  # G / (|q|/|z|) is orthogonal


def test_rotation_trick_gradient_equals_peer():
    torch.manual_seed(0)
    z = torch.randn(64, 16, requires_grad=True)
    q = torch.randn(64, 16)
    g_out = torch.randn(64, 16)
    (g,) = torch.autograd.grad((rotate_to(z, q) * g_out).sum(), z)
    (g_peer,) = torch.autograd.grad((peer_rotate_to(z, q) * g_out).sum(), z)
    torch.testing.assert_close(g, g_peer, rtol=1e-5, atol=1e-6)

    vq = VectorQuantizer(16, 64, rotation_trick=True).eval()  # eval: no EMA update between the two
    vq.commitment_weight = 0.0
    x = torch.randn(8, 16, requires_grad=True)
    out = vq(x)
    (g,) = torch.autograd.grad((out.quantized * g_out[:8]).sum(), x)
    codes = vq.indices_to_codes(out.indices)
    (g_peer,) = torch.autograd.grad((peer_rotate_to(x, codes) * g_out[:8]).sum(), x)
    torch.testing.assert_close(g, g_peer, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(g, g_out[:8])  # not the straight-through gradient


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces (inputs created outside are not seen)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_large_codebooks_never_hold_the_full_distance_matrix():
    torch.manual_seed(0)
    k, n, d = 16384, 1024, 8
    vq = VectorQuantizer(d, k, distance_chunk=2**20)
    x = torch.randn(n, d, requires_grad=True)
    with _LargestTensor() as mode:
        out = vq(x)
        (out.quantized.sum() + out.loss).backward()
    assert mode.largest <= 2**20 < n * k  # the full matrix would hold 2**24 distances

    small = VectorQuantizer(d, k, distance_chunk=2**30)  # one block
    small.load_state_dict(vq.state_dict())
    assert torch.equal(vq.nearest(x.detach()), small.nearest(x.detach()))
    assert torch.equal(vq.nearest(x.detach()[:300]), torch.cdist(x.detach()[:300], vq.codebook).argmin(1))


def test_bf16_autocast_quantizes_in_float32():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 256).eval()
    with torch.no_grad():
        vq.codebook.normal_()
    x = torch.randn(4, 32, 8).to(torch.bfloat16)
    ref = vq(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(x)
    assert out.quantized.dtype == torch.bfloat16 and out.indices.dtype == torch.long
    assert torch.equal(out.indices, ref.indices) and out.loss.dtype == torch.float32

    half = VectorQuantizer(32, 64, codebook_dim=8).to(torch.bfloat16)
    assert half.project_in.weight.dtype == torch.bfloat16
    assert half.codebook.dtype == half.embed_avg.dtype == half.cluster_size.dtype == torch.float32
    out = half(torch.randn(2, 5, 32, dtype=torch.bfloat16))
    assert out.quantized.dtype == torch.bfloat16 and half.codebook.dtype == torch.float32


def test_channel_first_equals_channel_last():
    torch.manual_seed(0)
    cf = VectorQuantizer(6, 32, channel_first=True).eval()
    cl = VectorQuantizer(6, 32).eval()
    cl.load_state_dict(cf.state_dict())
    x = torch.randn(2, 6, 5, 4)
    q_cf, idx_cf, _ = cf(x)
    q_cl, idx_cl, _ = cl(x.permute(0, 2, 3, 1))
    assert torch.equal(q_cf, q_cl.permute(0, 3, 1, 2)) and torch.equal(idx_cf, idx_cl) and idx_cf.shape == (2, 5, 4)
    assert torch.equal(cf.indices_to_codes(idx_cf), q_cf)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"codebook_size": 0}, ValueError, "codebook_size=0 must be an integer >= 1"),
    ({"codebook_size": 2.5}, ValueError, "codebook_size=2.5"),
    ({"dim": 0}, ValueError, "dim=0"),
    ({"codebook_dim": -1}, ValueError, "codebook_dim=-1"),
    ({"codebook_update": "adam"}, ValueError, "codebook_update='adam' is not supported"),
    ({"distance": "dot"}, ValueError, "distance='dot'"),
    ({"decay": 1.0}, ValueError, "decay=1.0 must lie in \\[0.0, 1.0\\)"),
    ({"eps": 0.0}, ValueError, "eps=0.0"),
    ({"dead_code_threshold": -1}, ValueError, "dead_code_threshold=-1"),
    ({"dead_code_threshold": float("nan")}, ValueError, "must be a finite number"),
    ({"reset_size": 2.0}, ValueError, "reset_size=2.0 needs dead_code_threshold > 0"),
    ({"codebook_weight": 1.0}, ValueError, "no effect with codebook_update='ema'"),
    ({"kmeans_iters": 0}, ValueError, "kmeans_iters=0"),
    ({"distance_chunk": 0}, ValueError, "distance_chunk=0"),
])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        VectorQuantizer(**{"dim": 4, "codebook_size": 16, **kwargs})


def test_bad_inputs():
    vq = VectorQuantizer(4, 16)
    with pytest.raises(ValueError, match="has 5 channels in layout \\(..., C\\); expected dim=4"):
        vq(torch.randn(2, 5))
    with pytest.raises(ValueError, match="has 3 channels in layout \\(B, C, ...\\) with channel_first=True"):
        VectorQuantizer(4, 16, channel_first=True)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="NaN or Inf"):
        vq(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(TypeError, match="floating-point"):
        vq(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range: min 16, max 16; expected 0 <= index < codebook_size=16"):
        vq.indices_to_codes(torch.tensor([16]))
    with pytest.raises(ValueError, match="out of range"):
        vq.indices_to_codes(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer tensor"):
        vq.indices_to_codes(torch.tensor([1.0]))


def test_readme_snippet_runs():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("VQ-VAE that does not collapse\n"):]
    code = section[section.index("```python") + len("```python"):section.index("```\n", section.index("```python") + 9)]
    scope = {"torch": torch}
    exec(code, scope)
    assert scope["quantized"].shape == (32, 64, 8) and scope["indices"].dtype == torch.long and scope["vq"].initted


def _draws_run(vq: VectorQuantizer, batches, spoil_global_rng: bool) -> None:
    for batch in batches:
        if spoil_global_rng:  # e.g. a DataLoader iterator built on resume draws from the global RNG
            torch.rand(7)
        vq(batch)


def test_random_draws_come_from_the_seed_and_step_never_the_global_rng():
    """k-means rows and dead-code replacements depend on (seed, training_steps) only: a run resumed
    from its state dict, with the global RNG elsewhere, ends bitwise where the uninterrupted run ends."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(16, 4, generator=g) * 3
    batches = [centres[torch.randint(16, (32,), generator=g)] + 0.1 * torch.randn(32, 4, generator=g) for _ in range(12)]
    kw = dict(dim=4, codebook_size=32, kmeans_init=True, dead_code_threshold=1.5, decay=0.8, seed=3)

    torch.manual_seed(0)
    ref = VectorQuantizer(**kw)
    _draws_run(ref, batches, spoil_global_rng=False)
    assert int(ref.training_steps) == 12

    torch.manual_seed(0)
    first = VectorQuantizer(**kw)
    _draws_run(first, batches[:5], spoil_global_rng=True)
    state = {k: v.clone() for k, v in first.state_dict().items()}
    torch.manual_seed(123)
    resumed = VectorQuantizer(**kw)
    resumed.load_state_dict(state)
    _draws_run(resumed, batches[5:], spoil_global_rng=True)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k

    other_seed = VectorQuantizer(**{**kw, "seed": 4})
    other_seed.load_state_dict({k: v for k, v in VectorQuantizer(**kw).state_dict().items()})
    _draws_run(other_seed, batches, spoil_global_rng=False)
    assert not torch.equal(other_seed.codebook, ref.codebook)

    fresh = VectorQuantizer(**kw)
    before = torch.random.get_rng_state()
    fresh(batches[0])
    assert fresh.dead_codes > 0 and torch.equal(torch.random.get_rng_state(), before)


def test_resets_after_the_resume_point_draw_what_the_uninterrupted_run_draws():
    torch.manual_seed(0)
    batches = [torch.randn(24, 2) * 0.3 for _ in range(8)]

    def run(split: int | None):
        torch.manual_seed(5)
        vq = VectorQuantizer(2, 6, decay=0.5, dead_code_threshold=5.0, seed=1)  # 24 vectors, 6 codes: always some dead
        resets = 0
        for i, batch in enumerate(batches):
            if i == split:
                state, vq = vq.state_dict(), VectorQuantizer(2, 6, decay=0.5, dead_code_threshold=5.0, seed=1)
                vq.load_state_dict(state)
                torch.manual_seed(99)
            vq(batch)
            resets += vq.dead_codes if i >= (split or 0) else 0
        return vq, resets

    ref, _ = run(None)
    resumed, resets_after = run(3)
    assert resets_after > 0
    assert torch.equal(ref.codebook, resumed.codebook) and torch.equal(ref.cluster_size, resumed.cluster_size)


def test_weights_saved_without_the_draw_counter_still_load():
    vq = VectorQuantizer(4, 8)
    state = vq.state_dict()
    del state["training_steps"]
    fresh = VectorQuantizer(4, 8)
    fresh.load_state_dict(state)
    assert int(fresh.training_steps) == 0


@pytest.mark.parametrize("kw", [{}, {"kmeans_init": True}, {"dead_code_threshold": 0.5}])
def test_an_empty_batch_is_rejected_and_changes_nothing(kw):
    vq = VectorQuantizer(4, 8, **kw)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    for mode in (vq.train, vq.eval):
        mode()
        with pytest.raises(ValueError, match="holds no vectors"):
            vq(torch.zeros(0, 4))
    assert all(torch.equal(v, vq.state_dict()[k]) for k, v in before.items())


def test_scalar_and_huge_inputs_get_honest_errors():
    vq = VectorQuantizer(4, 8)
    with pytest.raises(ValueError, match="0-dim tensor"):
        vq(torch.tensor(1.0))
    with pytest.raises(ValueError, match="too large for float32 distances.*1e\\+38"):
        vq(torch.full((1, 4), 1e38))
    assert vq(torch.full((2, 4), 1e15)).indices.shape == (2,)  # large but finite squares are fine
