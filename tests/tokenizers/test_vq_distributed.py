"""Two CPU processes (gloo) train VectorQuantizers on different data and must end with identical
codebooks: EMA statistics, k-means initialisation and dead-code resets are synchronised."""

from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from genlab.tokenizers import VectorQuantizer

WORLD = 2
STEPS = 6


def _build(**options) -> VectorQuantizer:
    torch.manual_seed(0)  # the same initial codebook on every process
    return VectorQuantizer(4, 64, kmeans_init=True, dead_code_threshold=2.0, **options)


def _train(vq: VectorQuantizer, rank: int, ddp: bool = False) -> int:
    torch.manual_seed(1000 + rank)  # each process draws its own random samples
    data = torch.Generator().manual_seed(100 + rank)
    model = DistributedDataParallel(vq, broadcast_buffers=False) if ddp else vq
    opt = torch.optim.SGD(vq.parameters(), lr=0.1) if ddp else None
    resets = 0
    for step in range(STEPS):
        # different data and a different number of vectors on each process
        x = torch.randn(150 + 40 * rank, 4, generator=data) * (1 + rank) + rank
        out = model(x)
        resets += vq.dead_codes
        if opt is not None:
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    return resets


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    # Built before the process group exists: whether to synchronise is decided when training runs.
    vqs = {"ema": _build(), "gradient": _build(codebook_update="gradient"), "no_sync": _build(sync=False)}
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            # a collective on one process only fails instead of hanging; late, for a loaded machine
                            timeout=timedelta(seconds=900))
    torch.set_num_threads(1)
    result = {}
    for name, vq in vqs.items():
        resets = _train(vq, rank, ddp=name == "gradient")
        if rank == 0:  # evaluation on one process only must not communicate
            vq.eval()(torch.randn(10, 4))
        result[name] = {"resets": resets, **{k: v.clone() for k, v in vq.state_dict().items()}}
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_hold_identical_codebooks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))
    for name in ("ema", "gradient"):
        assert r0[name]["initted"] and r0[name]["resets"] > 0  # k-means ran and codes were reset
        assert r0[name]["resets"] == r1[name]["resets"]
        for key in ("codebook", "cluster_size") + (("embed_avg",) if name == "ema" else ()):
            assert torch.equal(r0[name][key], r1[name][key]), f"{name}: {key} differs between processes"
    # Without synchronisation the same run diverges: the check above can fail.
    assert not torch.equal(r0["no_sync"]["codebook"], r1["no_sync"]["codebook"])
