"""genlab.io: byte-reproducible weights, clear errors for foreign or altered files, the one loader,
and the layering (model packages never import the training harness)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from genlab.io import (PretrainedMixin, load_pretrained, load_weights, read_weights_metadata, resolve_pretrained,
                       save_weights, sha256_file)

ROOT = Path(__file__).resolve().parents[1]


class Toy(PretrainedMixin, nn.Module):
    weights_kind = "Toy"

    def __init__(self, width: int = 3):
        super().__init__()
        self.width = width
        self.a, self.b = nn.Linear(4, width), nn.Linear(width, 2)

    def pretrained_config(self):
        return {"width": self.width}

    @classmethod
    def from_config(cls, config):
        return cls(config["width"])


def test_the_same_module_saved_twice_gives_the_same_bytes(tmp_path):
    torch.manual_seed(0)
    model = Toy(5)
    config = {"zeta": 1, "alpha": [1, 2], "name": "é"}
    hashes = set()
    for i in range(12):  # safetensors orders its metadata differently from one call to the next
        save_weights(model, tmp_path / f"{i}.safetensors", "Toy", config)
        hashes.add(sha256_file(tmp_path / f"{i}.safetensors"))
    assert len(hashes) == 1
    for i in range(3):
        model.save_pretrained(tmp_path / f"dir{i}")
    assert len({sha256_file(tmp_path / f"dir{i}" / "model.safetensors") for i in range(3)}) == 1
    assert len({(tmp_path / f"dir{i}" / "config.json").read_text() for i in range(3)}) == 1
    assert read_weights_metadata(tmp_path / "0.safetensors") == {"kind": "Toy", "config": config}


def test_folder_and_file_both_load_and_the_kind_is_checked(tmp_path):
    torch.manual_seed(0)
    model = Toy(5)
    folder = model.save_pretrained(tmp_path / "toy")
    assert json.loads((folder / "config.json").read_text()) == {"_genlab_kind": "Toy", "width": 5}
    x = torch.randn(3, 4)
    for path in (folder, folder / "model.safetensors", str(folder)):
        loaded = Toy.from_pretrained(path)
        assert not loaded.training and torch.equal(loaded.b(loaded.a(x)), model.b(model.a(x)))
    save_weights(nn.Linear(2, 2), tmp_path / "other.safetensors", "Other")
    with pytest.raises(ValueError, match=r"other.safetensors' holds a 'Other', not a 'Toy'"):
        Toy.from_pretrained(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="holds a 'Toy', not an 'Other'"):
        load_pretrained(folder, "Other", Toy.from_config)


def test_broken_folders_and_files_name_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        Toy.from_pretrained(empty)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_weights(Toy(), empty, "Toy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Toy.from_pretrained(tmp_path / "missing")
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad), metadata={"genlab_kind": "Toy", "config": "not json"})
    with pytest.raises(ValueError, match=r"bad.safetensors' holds a 'Toy' whose stored config is not JSON"):
        Toy.from_pretrained(bad)
    folder = Toy().save_pretrained(tmp_path / "toy")
    (folder / "config.json").write_text("{")
    with pytest.raises(ValueError, match=r"config.json' is not JSON"):
        Toy.from_pretrained(folder)
    (folder / "config.json").write_text('{"width": 3}')
    with pytest.raises(ValueError, match="no '_genlab_kind' key"):
        resolve_pretrained(folder)


def test_a_hub_id_that_cannot_be_fetched_says_what_was_tried(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at call time; no network in tests
    with pytest.raises(FileNotFoundError, match="neither a local file or folder nor a Hub repository"):
        Toy.from_pretrained("nobody-here/no-such-model")


def test_model_packages_do_not_import_the_training_harness():
    packages = ["tokenizers", "flows", "gans", "lm", "metrics", "nn", "optim", "data"]
    offenders = [str(p.relative_to(ROOT)) for name in packages for p in (ROOT / "genlab" / name).rglob("*.py")
                 if "genlab.train" in p.read_text() or "from genlab import train" in p.read_text()]
    assert offenders == []
    code = ("import sys; import " + ", ".join(f"genlab.{name}" for name in packages) +
            "; print(sorted(m for m in ('accelerate', 'genlab.train') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_relative_config_paths_fall_back_to_the_packaged_configs(tmp_path, monkeypatch):
    from genlab.resources import configs_dir, resolve_config_path
    from genlab.train.config import load_yaml

    monkeypatch.chdir(tmp_path)
    assert resolve_config_path("configs/fsq/photos.yaml") == configs_dir() / "fsq" / "photos.yaml"
    assert load_yaml("configs/fsq/photos.yaml") == load_yaml(configs_dir() / "fsq" / "photos.yaml")
    (tmp_path / "configs" / "fsq").mkdir(parents=True)
    (tmp_path / "configs" / "fsq" / "photos.yaml").write_text("max_steps: 3\n")
    assert load_yaml("configs/fsq/photos.yaml") == {"max_steps": 3}  # a file on disk wins
    with pytest.raises(FileNotFoundError, match="configs/fsq/none.yaml"):
        load_yaml("configs/fsq/none.yaml")
