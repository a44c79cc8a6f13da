"""Run every exercise notebook both ways and tabulate the checks' verdicts:
``python -m exercises.run`` (``make exercises`` runs it after the build).

An exercise is real when its two notebooks disagree: the solution source
``exercises/src/exNN_*.md`` passes every check it calls, and the student notebook
``exercises/exNN_*.ipynb``, where each solution is a stub, passes none of them. Each notebook is
executed in a fresh kernel with errors allowed (a stub must not stop Run All); its verdict lines,
``PASSED`` / ``FAILED`` / ``NOT DONE`` / ``REFUSED exercise N.M``, are counted against the number
of ``check_...(`` calls in its cells. The exit status is 1 if any notebook breaks the rule.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbclient
import nbformat
from tqdm.auto import tqdm

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

VERDICT = re.compile(r"^(PASSED|FAILED|NOT DONE|REFUSED)\s+exercise (\S+)", re.MULTILINE)
CHECK_CALL = re.compile(r"^check_\w+\(", re.MULTILINE)


@dataclass
class Run:
    """What executing a notebook printed: its errors, verdicts and how many checks it calls."""

    errors: list[str]
    verdicts: list[tuple[str, str]]
    checks: int
    text: str

    def all(self, *statuses: str) -> bool:
        """Every check ran, none raised, and every verdict is one of ``statuses``."""
        return (
            not self.errors
            and len(self.verdicts) == self.checks > 0
            and all(status in statuses for status, _ in self.verdicts)
        )


def execute(notebook: nbformat.NotebookNode, directory: Path, timeout: int = 600) -> Run:
    """Execute ``notebook`` in a fresh kernel started in ``directory``, errors allowed."""
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(directory)}},
    )
    client.execute()
    errors, text = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}\n{cell.source}")
            elif output.output_type == "stream" and output.name == "stdout":
                text.append(output.text)
            elif "data" in output:
                text.append(output.data.get("text/plain", ""))
    checks = sum(len(CHECK_CALL.findall(c.source)) for c in notebook.cells if c.cell_type == "code")
    printed = "".join(text)
    return Run(errors, VERDICT.findall(printed), checks, printed)


def run_solution(source: Path) -> Run:
    """The solution source ``exercises/src/exNN_*.md``, executed."""
    return execute(jupytext.read(source), source.parent)


def run_student(source: Path) -> Run:
    """The student notebook built from ``source``, executed."""
    path = HERE / f"{source.stem}.ipynb"
    return execute(nbformat.read(path, as_version=4), path.parent)


def _tally(run: Run) -> str:
    counts: dict[str, int] = {}
    for status, _ in run.verdicts:
        counts[status] = counts.get(status, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no verdict"
    return tally + (f", {len(run.errors)} error(s)" if run.errors else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exercises.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names", nargs="*", help="notebooks to run (e.g. ex02_backward); all if none"
    )
    args = parser.parse_args(argv)
    sources = sorted(SOURCES.glob("ex*.md"))
    if args.names:
        unknown = sorted(set(args.names) - {s.stem for s in sources})
        if unknown:
            known = ", ".join(s.stem for s in sources)
            parser.error(f"no exercise notebook named {', '.join(unknown)}; the notebooks: {known}")
        sources = [s for s in sources if s.stem in args.names]
    rows, broken = [], []
    for source in tqdm(sources, desc="exercise notebooks", unit="notebook"):
        student, solution = run_student(source), run_solution(source)
        fine_student = student.all("NOT DONE", "FAILED")
        fine_solution = solution.all("PASSED")
        if not (fine_student and fine_solution):
            broken.append(source.stem)
        rows.append(
            f"| {source.stem} | {solution.checks} | {_tally(student)} | {_tally(solution)} | "
            f"{'yes' if fine_student and fine_solution else '**no**'} |"
        )
    print("| notebook | checks | student notebook | solution | as it should be |")
    print("|---|---:|---|---|---|")
    print("\n".join(rows))
    if broken:
        print(
            f"\n{len(broken)} notebook(s) break the rule (student: none passes; solution: all "
            f"pass): {', '.join(broken)}; run `python -m exercises.run {broken[0]}` and open "
            "the notebook to see which check"
        )
        return 1
    print(f"\nall {len(rows)} notebooks: every student check fails, every solution check passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
