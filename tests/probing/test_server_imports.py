"""The probe server's definitions on a busy machine: an import is not cut at one statement's limit, and a package whose
import was interrupted half-way can be imported again (scipy.ndimage's "name '_ndimage_api' is not defined", which
cost the reference solution its PCA points on a loaded machine)."""
import json
import subprocess
import sys
from pathlib import Path

PROBING = Path(__file__).resolve().parents[2] / "autograder" / "probing"

# A package like scipy.ndimage: its __init__ binds a submodule's name only a fresh import of the submodule sets.
HALFWAY = {"__init__.py": "import time\nfrom .part import *\ntime.sleep(2)\ndel part\n", "part.py": "X = 1\n"}

SCRIPT = """
import json, signal, sys
sys.path.insert(0, {probing!r})
sys.path.insert(0, {packages!r})
import server
server.STATEMENT_TIMEOUT_S = 0.5
signal.signal(signal.SIGALRM, server._alarm)
ns = {{}}
failed = server.run_statements([
    {{"cell": 1, "line": 1, "source": "halfway = __import__('halfway')"}},   # not an import statement: 0.5 s
    {{"cell": 2, "line": 1, "source": "import halfway"}},                    # an import: the rest of the budget
], ns)
imports = [server.is_import(source) for source in ("import torch\\nfrom sklearn.decomposition import PCA",
                                                   "import time\\ntime.sleep(60)", "x = __import__('os')", "def f(:")]
print(json.dumps({{"failed": failed, "imported": "halfway" in ns and hasattr(ns["halfway"], "X"),
                  "is_import": imports}}))
"""


def test_an_interrupted_import_is_forgotten_and_imports_get_the_budget(tmp_path):
    package = tmp_path / "halfway"
    package.mkdir()
    for name, text in HALFWAY.items():
        (package / name).write_text(text)
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(probing=str(PROBING), packages=str(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert [entry["cell"] for entry in result["failed"]] == [1] and "Timeout" in result["failed"][0]["error"]
    assert result["imported"], result
    assert result["is_import"] == [True, False, False, False]   # only import statements count as imports
