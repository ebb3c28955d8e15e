"""Every ```python block of README.md runs as pasted (each in its own namespace, in a scratch folder;
```bash blocks are commands and are not run here)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

RUNNER = """
import sys, traceback
source = open(sys.argv[1]).read()
import re
failed = 0
for m in re.finditer(r"^```python\\n(.*?)^```", source, re.S | re.M):
    line = source[:m.start()].count("\\n") + 1
    try:
        exec(compile(m.group(1), f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    except Exception:
        failed += 1
        print(f"README.md line {line}: this block fails as pasted", file=sys.stderr)
        traceback.print_exc()
print("blocks failed:", failed)
sys.exit(1 if failed else 0)
"""


def test_readme_has_python_blocks():
    assert len(BLOCK.findall((ROOT / "README.md").read_text())) >= 12


def test_every_python_block_runs_as_pasted(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT / "README.md")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
