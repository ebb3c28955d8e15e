"""check_finite_loss (one synchronisation, the bad loss named) and the `compile` config field."""

import pytest
import torch

from genlab.train import TrainConfig, check_finite_loss


def test_finite_losses_pass_and_the_bad_one_is_named():
    check_finite_loss(3, rec=torch.tensor(0.5), quantizer=torch.tensor(0.0))
    with pytest.raises(FloatingPointError, match="loss 'quantizer' became nan at step 7"):
        check_finite_loss(7, rec=torch.tensor(0.5), quantizer=torch.tensor(float("nan")))
    with pytest.raises(FloatingPointError, match="loss 'rec' became inf"):
        check_finite_loss(7, rec=torch.tensor(float("inf")))


def test_compile_field_is_off_by_default_and_must_be_a_bool():
    assert TrainConfig().compile is False
    TrainConfig(compile=True).validate()
    with pytest.raises(ValueError, match="'compile'='yes' must be true or false"):
        TrainConfig(compile="yes").validate()


@pytest.mark.parametrize("compile_", [False, True])
def test_run_hands_compile_to_accelerate(tmp_path, compile_):
    from accelerate.state import AcceleratorState

    from genlab.train import Run

    AcceleratorState._reset_state(reset_partial_state=True)  # the state is a per-process singleton
    run = Run(TrainConfig(output_dir=str(tmp_path), name="c", compile=compile_), tensorboard=False)
    assert str(run.accelerator.state.dynamo_plugin.backend).lower().endswith("inductor" if compile_ else "no")
