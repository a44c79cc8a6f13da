"""minidiff imports without hypothesis, which only the exercise checks need.

``pip install minidiff`` brings the core dependencies alone; hypothesis comes with the
``exercises`` extra. A fresh interpreter with hypothesis made unimportable must import every
module outside ``minidiff.checks``, and importing a check must say which extra to install.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run first in the child: None in sys.modules makes `import hypothesis` raise ImportError.
WITHOUT_HYPOTHESIS = "import sys; sys.modules['hypothesis'] = None\n"

IMPORT_ALL_BUT_CHECKS = """
import importlib
import pkgutil

import minidiff

names = [
    info.name
    for info in pkgutil.walk_packages(minidiff.__path__, "minidiff.")
    # __main__ would run the command line
    if not info.name.startswith("minidiff.checks") and info.name != "minidiff.__main__"
]
for name in names:
    importlib.import_module(name)
print(len(names), "modules")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_HYPOTHESIS + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_minidiff_imports_without_hypothesis():
    result = _run(IMPORT_ALL_BUT_CHECKS)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[0]) > 30, result.stdout


def test_checks_without_hypothesis_name_the_extra():
    result = _run("import minidiff.checks.ex01_arrays")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr
    assert 'pip install "minidiff[exercises]"' in result.stderr, result.stderr
