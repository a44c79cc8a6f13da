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

CHAPTERS = toc_files(BOOK)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_executes(path):
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name}: a cell failed\n{error}", pytrace=False)
