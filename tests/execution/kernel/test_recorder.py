"""kernel_side's helpers that need no kernel (the rest runs in kernels: test_harvest, test_integrity)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# A fresh interpreter: colorsys stands for torch, a module the notebook imports later (or never).
ON_IMPORT = """
import sys
from autograder.execution.kernel import recorder as kernel_side
assert "colorsys" not in sys.modules
calls = []
kernel_side.call_when_imported("colorsys", lambda module: calls.append(("seed", module.__name__)))
kernel_side.call_when_imported("colorsys", lambda module: calls.append(("watch", module.__name__)))
assert calls == []
import colorsys
import colorsys
kernel_side.call_when_imported("colorsys", lambda module: calls.append(("now", module.__name__)))
print(calls, colorsys.rgb_to_hsv(1, 0, 0))
"""


def test_callbacks_run_once_after_the_import_in_registration_order_or_at_once():
    out = subprocess.run([sys.executable, "-c", ON_IMPORT], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("[('seed', 'colorsys'), ('watch', 'colorsys'), ('now', 'colorsys')] "
                                  "(0.0, 1.0, 1)")
