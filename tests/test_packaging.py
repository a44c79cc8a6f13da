"""The project's set-up files agree with each other."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# conda-forge names for the PyPI packages whose names differ
CONDA_NAME = {"cupy-cuda12x": "cupy", "nvidia-cuda-nvrtc-cu12": "cuda-nvrtc", "torch": "pytorch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_names() -> set:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {_name(r) for r in extra}
    return {CONDA_NAME.get(n, n) for n in names}


def _environment_names() -> set:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(d) for d in dep.get("pip", [])}
        else:
            names.add(_name(dep))
    return names - {"python", "pip"}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert _pyproject_names() == _environment_names()


def test_core_dependencies_are_only_the_allowed_ones():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_name(r) for r in project["dependencies"]} == {"numpy", "matplotlib", "imageio", "tqdm"}


def test_dev_extra_holds_the_exercises_extra():
    """The tests run the exercise checks, so ``dev`` (which ``make`` installs) holds
    ``exercises``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras["exercises"]) <= set(extras["dev"])
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r'pip install .*-e "\.\[[^\]]*\bdev\b', makefile)


def test_make_test_compiles_the_cuda_kernels_rather_than_skipping():
    """``make test`` (which CI runs) installs the ``cuda-check`` extra and sets
    MINIDIFF_CUDA_CHECK=1, under which a missing compiler fails tests/test_cuda_sources.py."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r'^\$\(CHECK\): .*\n\t.*pip install .*-e "\.\[cuda-check\]"', makefile, re.M)
    recipe = re.search(r"^test: \$\(CHECK\)\n\t(.*)$", makefile, re.M)
    assert recipe and "MINIDIFF_CUDA_CHECK=1" in recipe.group(1)


def test_library_imports_no_framework():
    pattern = re.compile(r"^\s*(import|from)\s+(torch|jax|autograd|einops)\b", re.M)
    offenders = [p for p in (ROOT / "minidiff").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_makefile_has_the_documented_targets():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "test-gpu", "book", "exercises", "lint", "bench", "demo"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_make_venv_installs_mpi_so_the_data_parallel_tests_run_rather_than_skip():
    """tests/app/test_distributed.py spawns ``mpiexec -n 2``: the ``dist`` extra (mpi4py and
    MPICH, whose mpiexec lands in the venv's bin) is installed by ``make venv``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_name(r) for r in project["optional-dependencies"]["dist"]} == {"mpi4py", "mpich"}
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(
        r'^\$\(STAMP\):.*\n(\t.*\n)*\t.*pip install .*-e "\.\[[^\]]*\bdist\b', makefile, re.M
    )
