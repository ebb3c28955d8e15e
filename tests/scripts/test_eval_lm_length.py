"""Length evaluation of a text StreamLM: every method runs, and at 1x the training length the
fixed and dynamic RoPE scalings and the post-hoc log-n leave the loss exactly as plain RoPE."""

import torch

from genlab.lm.model import LMConfig, StreamLM
from scripts.eval_lm_length import evaluate


def test_methods_at_one_and_two_times_the_training_length():
    torch.manual_seed(0)
    model = StreamLM(LMConfig(dim=32, depth=1, heads=2, context=16)).eval()
    methods = ["none", "pi", "ntk", "ntk_dynamic", "ntk_mixed", "yarn", "yarn_dynamic", "rerope", "leaky_rerope"]
    rows, corpus = evaluate(model, methods, [False, True], [1, 2], windows=2, batch_size=2, overrides={})
    assert len(corpus["sha256"]) == 64 and len(rows) == 2 * 2 * len(methods)
    at1 = {(r["method"], r["log_n_post_hoc"]): r["loss"] for r in rows if r["multiple"] == 1}
    plain = at1[("none", False)]
    assert all(abs(v - plain) < 1e-5 for (m, _), v in at1.items() if "rerope" not in m)
    at2 = {(r["method"], r["log_n_post_hoc"]): r["loss"] for r in rows if r["multiple"] == 2}
    assert at2[("ntk", False)] != at2[("none", False)] and at2[("none", True)] != at2[("none", False)]
