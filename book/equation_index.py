"""The book's labelled equations, read from the chapters, and a check of their references.

A chapter writes an equation that the code implements as a labelled display,

    $$
    \\mathrm{softmax}(x)_i = ...
    $$ (eq-softmax)

followed by a paragraph that starts with "Implemented by" (optional) or "Tested by" and names the
code and the test in backticks, as ``path::name``:

    Implemented by `minidiff/autograd/ops.py::softmax`; tested by
    `tests/autograd/test_invariants.py::test_softmax_shift_invariant`.

:func:`collect` reads every chapter listed in ``_toc.yml``; :func:`problems` says which
references do not lead anywhere; :func:`markdown_table` renders the appendix. The appendix and
``tests/book/test_equations.py`` both use this module, so the book cannot name a test that does
not exist.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Equation", "collect", "markdown_table", "problems", "toc_files"]


@dataclass(frozen=True)
class Equation:
    """One labelled equation: where it is, what it says, and what implements and tests it."""

    label: str
    tex: str
    chapter_file: str
    chapter_title: str
    code_refs: tuple[str, ...]
    test_refs: tuple[str, ...]
    line: int  # 1-based line of the closing $$ in chapter_file


# --- which files are chapters ----------------------------------------------------------------


def _toc_entries(node) -> list[str]:
    """Every ``file:`` in a jb-book toc (root, chapters, parts, sections), in reading order."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                found.extend(_toc_entries(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_toc_entries(child))
    return found


def toc_files(book_dir) -> list[Path]:
    """The chapter files named by ``book_dir/_toc.yml``, in order (the suffix resolved)."""
    book_dir = Path(book_dir)
    toc = yaml.safe_load((book_dir / "_toc.yml").read_text(encoding="utf-8"))
    paths = []
    for entry in _toc_entries(toc):
        base = book_dir / entry
        candidates = [base] if base.suffix else [base.with_suffix(s) for s in (".md", ".ipynb")]
        existing = [c for c in candidates if c.exists()]
        paths.append(existing[0] if existing else candidates[0])
    return paths


# --- reading a chapter -------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_LABEL = re.compile(r"^\s*\((?P<label>[^()\s]+)\)\s*$")
_BACKTICKED = re.compile(r"`([^`]+)`")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def _prose_lines(text: str):
    """(line number, line) outside fenced blocks (code cells, directives) and front matter."""
    front = _FRONT_MATTER.match(text)
    skip_until = front.group(0).count("\n") if front else 0
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        if number <= skip_until:
            continue
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            closing = line.strip()
            if len(closing) >= len(fence) and closing == fence[0] * len(closing):
                fence = None
            continue
        yield number, line


def _title(lines) -> str:
    for _, line in lines:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def _references(paragraph: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(code refs, test refs) named by the paragraph that follows an equation."""
    lower = paragraph.lower()
    if not lower.startswith(("implemented by", "tested by")):
        return (), ()
    at = lower.find("tested by")
    before, after = (paragraph, "") if at < 0 else (paragraph[:at], paragraph[at:])
    return tuple(_BACKTICKED.findall(before)), tuple(_BACKTICKED.findall(after))


def _paragraph_after(lines, end: int) -> str:
    """The first paragraph after line index ``end``, its lines joined by spaces."""
    paragraph = []
    for _, text in lines[end + 1 :]:
        if text.strip():
            paragraph.append(text.strip())
        elif paragraph:
            break
    return " ".join(paragraph)


def _equations_in(path: Path, chapter_file: str) -> list[Equation]:
    lines = list(_prose_lines(path.read_text(encoding="utf-8")))
    title = _title(lines)
    found = []
    i = 0
    while i < len(lines):
        number, line = lines[i]
        stripped = line.strip()
        if not stripped.startswith("$$"):
            i += 1
            continue
        rest = stripped[2:]
        if "$$" in rest:  # one line: $$ tex $$ (label)
            tex, _, tail = rest.partition("$$")
            end = i
        else:  # several lines up to the closing $$
            body = [rest]
            end = i + 1
            while end < len(lines) and "$$" not in lines[end][1]:
                body.append(lines[end][1])
                end += 1
            if end == len(lines):
                break
            closing = lines[end][1]
            head, _, tail = closing.partition("$$")
            body.append(head)
            tex = "\n".join(body)
        label = _LABEL.match(tail)
        if label:
            code, tests = _references(_paragraph_after(lines, end))
            found.append(
                Equation(
                    label=label.group("label"),
                    tex=tex.strip(),
                    chapter_file=chapter_file,
                    chapter_title=title,
                    code_refs=code,
                    test_refs=tests,
                    line=lines[end][0],
                )
            )
        i = end + 1
    return found


def collect(book_dir) -> list[Equation]:
    """Every labelled equation in the chapters of ``book_dir/_toc.yml``, in reading order."""
    book_dir = Path(book_dir)
    equations = []
    for path in toc_files(book_dir):
        if path.suffix == ".md" and path.exists():
            equations.extend(_equations_in(path, path.relative_to(book_dir).as_posix()))
    return equations


# --- checking the references -------------------------------------------------------------------


def _parse(path: Path):
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        return error


def _defined_names(body) -> dict[str, ast.AST]:
    names = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


PROPERTY = "a property over drawn inputs"
CASES = "fixed cases"
EXAMPLE = "a fixed example"


def _test_node(tree: ast.Module, name: str):
    """The function node of test ``name`` ("test_x", "Class::test_x"), or None."""
    parts = re.split(r"::|\.", name)
    if len(parts) == 1:
        scopes = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    else:
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == parts[0]]
        scopes = [c.body for c in classes]
    for body in scopes:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == parts[-1]:
                return node
    return None


def kind_of_test(ref: str, repo_root) -> str:
    """What the test ``path::name`` is, read from its decorators: :data:`PROPERTY` when
    Hypothesis draws its inputs (``@given``), :data:`CASES` when pytest runs it on a listed set
    (``@pytest.mark.parametrize``), else :data:`EXAMPLE` (one input chosen by hand, or a seeded
    Monte Carlo run)."""
    path_text, _, name = ref.partition("::")
    tree = _parse(Path(repo_root) / path_text)
    node = None if isinstance(tree, SyntaxError) else _test_node(tree, name)
    decorators = [ast.unparse(d) for d in node.decorator_list] if node else []
    if any(re.match(r"(\w+\.)*given\(", d) for d in decorators):
        return PROPERTY
    if any("parametrize(" in d for d in decorators):
        return CASES
    return EXAMPLE


def _find_code(tree: ast.Module, name: str) -> bool:
    """A top-level name, or ``Class.method``, defined in the module."""
    parts = name.split(".")
    scope = _defined_names(tree.body)
    for depth, part in enumerate(parts):
        node = scope.get(part)
        if node is None:
            return False
        if depth < len(parts) - 1:
            if not isinstance(node, ast.ClassDef):
                return False
            scope = _defined_names(node.body)
    return True


def _check_reference(ref: str, kind: str, where: str, repo_root: Path) -> list[str]:
    path_text, sep, name = ref.partition("::")
    if not sep or not name:
        return [f"{where}: {kind} reference `{ref}` is not of the form path/to/file.py::name"]
    path = repo_root / path_text
    if not path.is_file():
        return [f"{where}: {kind} reference `{ref}`: file {path_text} does not exist"]
    tree = _parse(path)
    if isinstance(tree, SyntaxError):
        return [f"{where}: {kind} reference `{ref}`: {path_text} does not parse ({tree.msg})"]
    if kind == "test":
        short = re.split(r"::|\.", name)[-1]
        if not short.startswith("test"):
            return [f"{where}: test reference `{ref}`: pytest does not collect `{short}`"]
        if _test_node(tree, name) is None:
            return [f"{where}: test reference `{ref}`: no test function `{name}` in {path_text}"]
    elif not _find_code(tree, name):
        return [f"{where}: code reference `{ref}`: `{name}` is not defined in {path_text}"]
    return []


def problems(equations, repo_root) -> list[str]:
    """What is wrong with the equations' references: one readable line per problem.

    A labelled equation must name at least one test; every test must be a function (or a method)
    that exists in the file named; every code reference must name a file and a top-level name or
    ``Class.method`` in it. Labels must be unique across the book.
    """
    repo_root = Path(repo_root)
    found = []
    seen: dict[str, Equation] = {}
    for eq in equations:
        where = f"{eq.chapter_file}:{eq.line} ({eq.label})"
        if eq.label in seen:
            first = seen[eq.label]
            found.append(f"{where}: label also used at {first.chapter_file}:{first.line}")
        seen.setdefault(eq.label, eq)
        if not eq.test_refs:
            found.append(
                f"{where}: names no test; write 'tested by `tests/...py::test_name`' on the "
                "line after the equation"
            )
        for ref in eq.test_refs:
            found.extend(_check_reference(ref, "test", where, repo_root))
        for ref in eq.code_refs:
            found.extend(_check_reference(ref, "code", where, repo_root))
    return found


# --- the appendix ------------------------------------------------------------------------------


def _display_tex(tex: str) -> str:
    """The equation without the sentence punctuation that ends it in the chapter."""
    tex = re.sub(r"(\s|,|\.|;|\\,)*$", "", tex.strip())
    parts = [p.strip() for p in tex.split(r"\qquad")]
    if len(parts) > 1 and r"\begin" not in tex and r"\\" not in tex:
        # Side-by-side statements go one under the other, so the table stays narrow.
        parts = [re.sub(r"(\s|,|;)*$", "", p) for p in parts]
        tex = "\\begin{gathered}\n" + " \\\\\n".join(parts) + "\n\\end{gathered}"
    return tex


def _reference(ref: str) -> str:
    """`name` in `path`: two short code spans, so a narrow column can wrap between them."""
    path, sep, name = ref.partition("::")
    return f"`{name}` in `{path}`" if sep else f"`{ref}`"


def markdown_table(equations, repo_root=None) -> str:
    """A MyST list-table, one row per equation.

    First column: the equation's number, linking back to it. Second column: its label and
    chapter, the equation itself, the code implementing it and the test checking it (with what
    kind of test it is, :func:`kind_of_test`, when ``repo_root`` is given).
    """
    indent = " " * 4
    lines = [
        "```{list-table}",
        ":header-rows: 1",
        ":widths: 8 92",
        ":class: equation-index",
        "",
        "* - eq.",
        "  - label and chapter; the equation; the code implementing it; the test checking it",
    ]
    for eq in equations:
        doc = eq.chapter_file.rsplit(".", 1)[0]
        code = ", ".join(_reference(r) for r in eq.code_refs) or "mathematics only"
        tests = ", ".join(
            _reference(r) + (f" ({kind_of_test(r, repo_root)})" if repo_root else "")
            for r in eq.test_refs
        )
        tests = tests or "**none**"
        lines += [
            f"* - {{eq}}`{eq.label}`",
            f"  - `{eq.label}` in {{doc}}`{doc}`",
            "",
            f"{indent}$$",
            *(indent + line.strip() for line in _display_tex(eq.tex).splitlines()),
            f"{indent}$$",
            "",
            f"{indent}**code:** {code}",
            "",
            f"{indent}**test:** {tests}",
        ]
    lines.append("```")
    return "\n".join(lines)
