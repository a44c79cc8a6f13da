"""Generate the student notebooks from the solution sources: ``python -m exercises.build``.

Each source ``exercises/src/exNN_*.md`` is a MyST-markdown notebook holding the solutions. In a
code cell, the lines from ``# BEGIN SOLUTION <message>`` to ``# END SOLUTION`` become one line,

    raise NotImplementedError("<message>")

at the marker's indentation, where the message names the exercise and its equation
("Exercise 2.3: write the backward of matmul (eq-matmul-vjp)"). The result is written as
``exercises/exNN_*.ipynb`` with outputs cleared and stable cell ids, so building twice gives the
same bytes. ``--check`` writes nothing and exits with status 1 if a notebook is out of date.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?P<message>.*)$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")
MESSAGE = re.compile(r"^Exercise \d+\.\d+: \S")


class MarkerError(ValueError):
    """A solution marker is missing, unmatched, or has no message naming its exercise."""


def strip_solutions(source: str, where: str = "") -> tuple[str, int]:
    """``source`` with every solution block replaced by its stub, and the number of blocks."""
    out, blocks, inside = [], 0, False
    for number, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            message = begin["message"].strip()
            if inside:
                raise MarkerError(f"{where} line {number}: BEGIN SOLUTION inside another block")
            if not MESSAGE.match(message):
                raise MarkerError(
                    f"{where} line {number}: the marker needs a message naming "
                    f"its exercise, 'Exercise N.M: ...', got {message!r}"
                )
            if not begin["indent"]:
                # A stub at the top level of a cell would stop "Run All" at that cell.
                raise MarkerError(f"{where} line {number}: solutions go inside a function")
            stub = json.dumps(message, ensure_ascii=False)
            out.append(f"{begin['indent']}raise NotImplementedError({stub})")
            inside, blocks = True, blocks + 1
        elif end:
            if not inside:
                raise MarkerError(f"{where} line {number}: END SOLUTION without a BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: a BEGIN SOLUTION block is never closed")
    return "\n".join(out), blocks


def student_notebook(path: Path) -> str:
    """The student version of the source notebook at ``path``, as ipynb JSON text."""
    notebook = jupytext.read(path)
    cells, blocks = [], 0
    for index, cell in enumerate(notebook.cells):
        where = f"{path.name}, cell {index}"
        if cell.cell_type == "code":
            source, found = strip_solutions(cell.source, where)
            blocks += found
            new = nbformat.v4.new_code_cell(source)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        new.metadata.update(cell.metadata)
        new.id = f"{path.stem}-{index:02d}"
        cells.append(new)
    if not blocks:
        raise MarkerError(f"{path.name}: no solution markers, so nothing for the student to do")
    student = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": notebook.metadata["kernelspec"],
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(student)
    return nbformat.writes(student) + "\n"


def targets() -> dict[Path, Path]:
    """Source path -> student notebook path, for every exercise source."""
    return {src: HERE / f"{src.stem}.ipynb" for src in sorted(SOURCES.glob("ex*.md"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exercises.build",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a student notebook is out of date",
    )
    args = parser.parse_args(argv)
    stale = []
    for src, dst in targets().items():
        text = student_notebook(src)
        current = dst.read_text(encoding="utf-8") if dst.exists() else None
        if text == current:
            continue
        stale.append(dst)
        if not args.check:
            dst.write_text(text, encoding="utf-8")
            print(f"wrote {dst.relative_to(HERE.parent)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(HERE.parent)) for p in stale)
        print(f"out of date: {names}; run `make exercises` (python -m exercises.build)")
        return 1
    if not stale:
        print("student notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
