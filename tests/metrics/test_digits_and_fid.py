"""The shipped digits network, FD-digits-cnn with its noise floor, and the Inception FID paths."""

import hashlib

import pytest
import torch

from genlab.data import load_digits_tensors
from genlab.metrics import digits_features, digits_scores, find_inception_weights, inception_scores
from genlab.utils import to_uint8
from genlab.metrics.features import DEFAULT_WEIGHTS
from genlab.io import read_weights_metadata


def test_shipped_classifier_is_accurate_on_held_out_digits():
    x, y = load_digits_tensors("test", 16)
    _, pred = digits_features(x)
    assert (pred == y).float().mean() >= 0.97
    assert DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    assert read_weights_metadata(DEFAULT_WEIGHTS)["config"]["test_accuracy"] >= 0.97


def test_other_sizes_are_resized():
    x, y = load_digits_tensors("test", 32)
    _, pred = digits_features(x)
    assert (pred == y).float().mean() >= 0.95


def test_real_digits_score_near_their_noise_floor_and_noise_far_above():
    x, y = load_digits_tensors("test", 16)
    real = digits_scores(x, y)
    assert real.metric == "FD-digits-cnn" and "FID" not in real.metric
    assert real.value < 2 * real.extra["noise_floor"] and real.extra["accuracy"] >= 0.97
    noise = digits_scores(torch.rand(359, 1, 16, 16) * 2 - 1)
    assert noise.value > 10 * real.value and noise.extra["recall"] < 0.05
    assert noise.protocol["samples"] == 359 and "noise_floor" in noise.protocol
    # Provenance: the hash of the feature network's weights file goes with every score.
    assert real.protocol["weights_sha256"] == hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()


def test_digits_scores_bad_input():
    with pytest.raises(ValueError, match="\\(N, 1, H, W\\)"):
        digits_scores(torch.zeros(20, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 10"):
        digits_scores(torch.zeros(5, 1, 16, 16))
    with pytest.raises(ValueError, match="NaN or Inf"):
        digits_scores(torch.full((20, 1, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="labels must be"):
        digits_scores(torch.zeros(20, 1, 16, 16), torch.zeros(3, dtype=torch.long))


def test_uint8_conversion_rounds():
    x = torch.tensor([-1.0, 1.0, 0.0, -0.996, 2 * (100.6 / 255) - 1])
    assert to_uint8(x).tolist() == [0, 255, 128, 1, 101]  # 127.5 rounds to 128 (half to even: 128)


def test_missing_inception_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="checkpoints/weights-inception-2015-12-05-6726825d.pth"):
        find_inception_weights()
    with pytest.raises(FileNotFoundError, match="do not exist"):
        find_inception_weights(tmp_path / "nope.pth")
    cached = tmp_path / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    assert find_inception_weights() == cached


def test_inception_scores_error_and_warning_paths(tmp_path):
    real = torch.zeros(4, 3, 32, 32)
    with pytest.raises(ValueError, match="at least 2 per set"):
        inception_scores(real, torch.zeros(1, 3, 32, 32), tmp_path / "w.pth")
    with pytest.raises(ValueError, match="\\(B, 1 or 3, H, W\\)"):
        inception_scores(real, torch.zeros(4, 2, 32, 32), tmp_path / "w.pth")
    corrupt = tmp_path / "w.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="biased upwards"), pytest.raises(ValueError, match="could not be loaded"):
        inception_scores(real, real, corrupt)


def test_inception_machinery_end_to_end_with_a_stand_in_weights_file(tmp_path):
    """With any weights file of the right architecture the whole path runs offline: the FID of a
    set with itself is ~0 and the protocol records the hash (random weights give meaningless
    features, so only the machinery is checked here)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    class Untrained(fe.FeatureExtractorInceptionV3):  # the architecture, randomly initialised
        def load_state_dict(self, state_dict, strict=True):
            return None if state_dict is None else super().load_state_dict(state_dict, strict)

    original = fe.load_state_dict_from_url
    fe.load_state_dict_from_url = lambda *args, **kwargs: None
    try:
        torch.manual_seed(0)
        state = Untrained("inception-v3-compat", ["2048"]).state_dict()
    finally:
        fe.load_state_dict_from_url = original
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    with pytest.warns(UserWarning, match="biased"):
        same = inception_scores(images, images, path, reference="self", kid_subset_size=4, kid_subsets=3)
    assert abs(same["fid"].value) < 1e-6 and same["kid"].protocol["kid_subset_size"] == 4
    assert same["fid"].protocol["weights_sha256"] and same["fid"].protocol["real_images"] == 6
