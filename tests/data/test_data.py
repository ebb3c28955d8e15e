"""Embedded datasets: shapes, ranges, fixed splits that never overlap, reproducible samples."""

import pytest
import torch

from genlab.data import (TOY2D, Digits, PhotoPatches, build_image_dataset, image_folder, load_digits_tensors, mixture,
                         sample_toy2d, torchvision_dataset)
from genlab.data.photos import _split_width


def test_digits_split_and_range():
    train_x, train_y = load_digits_tensors("train", 16)
    test_x, test_y = load_digits_tensors("test", 16)
    assert train_x.shape == (1438, 1, 16, 16) and test_x.shape == (359, 1, 16, 16)
    assert train_x.min() >= -1 and train_x.max() <= 1 and train_x.dtype == torch.float32
    assert set(test_y.tolist()) == set(range(10))
    all_x, _ = load_digits_tensors("all", 8)
    assert all_x.shape == (1797, 1, 8, 8)
    assert sorted(torch.unique(all_x).mul(8).add(8).round().tolist())[:3] == [0, 1, 2]  # 17 gray levels
    assert len(Digits("test", 32)) == 359 and Digits("test", 32)[0][0].shape == (1, 32, 32)


def test_photo_train_crops_never_touch_the_test_strip():
    ds = PhotoPatches("train", 32, length=2000)
    for i in range(0, 2000, 7):
        photo, y, x, _ = ds.crop_box(i)
        h, w = ds.photos[photo].shape[1:]
        assert x + 32 <= _split_width(w) and y + 32 <= h
    test = PhotoPatches("test", 32)
    assert len(test) > 400 and test[0][0].shape == (3, 32, 32)
    assert torch.equal(PhotoPatches("test", 32)[5][0], test[5][0])  # a fixed set


def test_photo_train_items_are_deterministic_and_varied():
    a, b = PhotoPatches("train", 16, seed=1), PhotoPatches("train", 16, seed=1)
    assert torch.equal(a[3][0], b[3][0])
    assert not torch.equal(a[3][0], a[4][0])
    assert a[3][0].min() >= -1 and a[3][0].max() <= 1
    with pytest.raises(IndexError):
        a[len(a)]


@pytest.mark.parametrize("name", list(TOY2D))
def test_toy2d_shapes_and_seeds(name):
    x = sample_toy2d(name, 500, seed=3)
    assert x.shape == (500, 2) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x, sample_toy2d(name, 500, seed=3))
    assert x.abs().max() < 6


def test_mixtures_match_their_definition():
    m = mixture("25gaussians")
    x = sample_toy2d("25gaussians", 20000, seed=0)
    nearest = torch.cdist(x, m.modes).min(1).values
    assert (nearest < 3 * m.std * 1.5).float().mean() > 0.99  # 2-D radius: chi with 2 dof
    assert len(mixture("8gaussians").modes) == 8
    with pytest.raises(ValueError, match="not a gaussian mixture"):
        mixture("moons")


def test_bad_names_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="dataset='nope'"):
        build_image_dataset("nope")
    with pytest.raises(ValueError, match="name='nope'"):
        sample_toy2d("nope", 3)
    with pytest.raises(ValueError, match="split='val'"):
        load_digits_tensors("val")
    with pytest.raises(FileNotFoundError, match="CIFAR10 files were not found"):
        torchvision_dataset("cifar10", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_folder(str(tmp_path / "missing"))


def test_image_folder_reads_local_images(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / cls / "x.png")
    ds = build_image_dataset("folder", root=str(tmp_path), image_size=16)
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and ds.num_classes == 2
    assert torch.allclose(x[0], torch.ones(16, 16)) and torch.allclose(x[1], -torch.ones(16, 16))


def test_flat_image_folder_and_its_held_out_split(tmp_path):
    from PIL import Image

    for i in range(20):
        Image.new("L", (12, 10), i * 10).save(tmp_path / f"{i:02d}.png")
    train = build_image_dataset("folder", "train", 8, root=str(tmp_path), channels=1, test_fraction=0.25)
    test = build_image_dataset("folder", "test", 8, root=str(tmp_path), channels=1, test_fraction=0.25)
    assert (len(train), len(test), train.num_classes, train.channels) == (15, 5, 0, 1)
    names = lambda ds: {p.name for p, _ in ds.items}  # noqa: E731
    assert not names(train) & names(test) and len(names(train) | names(test)) == 20
    again = build_image_dataset("folder", "test", 8, root=str(tmp_path), channels=1, test_fraction=0.25)
    assert names(again) == names(test)  # deterministic
    x, y = test[0]
    assert x.shape == (1, 8, 8) and y == 0
    other = tmp_path / "held_out"
    other.mkdir()
    Image.new("RGB", (8, 8)).save(other / "a.png")
    split = build_image_dataset("folder", "test", 8, root=str(tmp_path), test_root=str(other))
    assert len(split) == 1 and len(build_image_dataset("folder", "train", 8, root=str(tmp_path), test_root=str(other))) == 20
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        build_image_dataset("folder", "train", 8, root=str(tmp_path), test_fraction=1.5)
