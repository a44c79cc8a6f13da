"""Every chapter in the book's table of contents runs from top to bottom without an error.

The chapters are MyST-markdown notebooks; jupytext reads them and nbclient executes them in a
fresh python3 kernel, in the chapter's own folder (as the book build does). A failing cell fails
the test with that cell's source and traceback.
"""

import sys
from pathlib import Path

import jupytext
import nbclient
import pytest
from nbclient.exceptions import CellExecutionError

BOOK = Path(__file__).resolve().parents[2] / "book"
sys.path.insert(0, str(BOOK))

from equation_index import toc_files  # noqa: E402

# Chapters that train or sample the demo model take many minutes (chapter 12 trains it unless
# `make demo` already has); they run in `make book` and `make test-slow`, not in `make test`.
TRAINED_MODEL = {"ch12_training.md", "ch13_measuring.md", "ch14_longer.md"}
CHAPTERS = [
    pytest.param(path, marks=pytest.mark.slow, id=path.name)
    if path.name in TRAINED_MODEL
    else pytest.param(path, id=path.name)
    for path in toc_files(BOOK)
]


@pytest.mark.parametrize("path", CHAPTERS)
def test_chapter_executes(path):
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name}: a cell failed\n{error}", pytrace=False)
