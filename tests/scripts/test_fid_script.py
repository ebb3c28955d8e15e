"""scripts/fid.py offline: a folder against the embedded digits, and its clear failures."""


from genlab.data import load_digits_tensors
from genlab.train import save_grid
from tests.scripts.conftest import run_script


def test_folder_of_labeled_digits_against_digits(tmp_path, script):
    x, y = load_digits_tensors("test", 16)
    folder = tmp_path / "images"
    for i in range(60):
        save_grid(x[i:i + 1], folder / f"{i:05d}_{int(y[i])}.png", nrow=1, padding=0)
    proc = run_script([script("fid.py"), "--a", str(folder), "--b", "digits:train", "--json", str(tmp_path / "s.json")], tmp_path)
    assert "FD-digits-cnn" in proc.stdout and "noise_floor" in proc.stdout and "accuracy = 1" in proc.stdout
    assert "FID" not in proc.stdout.replace("FD-digits-cnn", "")
    assert (tmp_path / "s.json").exists()


def test_clear_errors(tmp_path, script):
    proc = run_script([script("fid.py"), "--a", str(tmp_path / "nothing")], tmp_path, check=False)
    assert proc.returncode != 0 and "neither an embedded dataset" in proc.stderr and "Traceback" not in proc.stderr
    env_home = tmp_path / "hub"
    proc = run_script([script("fid.py"), "--a", "photos:test", "--b", "photos:train", "--inception_weights",
                       str(env_home / "missing.pth")], tmp_path, check=False)
    assert proc.returncode != 0 and "do not exist" in proc.stderr and "Traceback" not in proc.stderr
