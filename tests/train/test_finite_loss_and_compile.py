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
