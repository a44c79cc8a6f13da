"""The book's equation index: its checker works, and the real book passes it.

``book/equation_index.py`` reads the labelled equations of the chapters in ``_toc.yml`` and checks
that the tests and code they name exist. These tests run that check on the real book, and on
small synthetic books to show that the checker catches what it should.
"""

import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BOOK = REPO / "book"
sys.path.insert(0, str(BOOK))

import equation_index  # noqa: E402
from equation_index import collect, markdown_table, problems, toc_files  # noqa: E402

# Markdown files in book/ that are deliberately not chapters (none today).
NOT_CHAPTERS: set[str] = set()

HEADER = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---
    """
)


def make_book(tmp_path, chapter_body: str, tests: str = "") -> Path:
    """A repository with book/_toc.yml, one chapter, and optionally tests/test_demo.py."""
    book = tmp_path / "book"
    book.mkdir()
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: ch01\n")
    (book / "intro.md").write_text(HEADER + "# Intro\n")
    (book / "ch01.md").write_text(HEADER + textwrap.dedent(chapter_body))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_demo.py").write_text(textwrap.dedent(tests))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "def square(x):\n    return x * x\n\nclass Box:\n    def open(self):\n        pass\n"
    )
    return book


# --- the real book ---------------------------------------------------------------------------


def test_real_book_has_no_equation_problems():
    equations = collect(BOOK)
    assert equations, "no labelled equations found in the book"
    assert problems(equations, REPO) == []


def test_every_toc_file_exists():
    missing = [str(p.relative_to(BOOK)) for p in toc_files(BOOK) if not p.exists()]
    assert missing == []


def test_no_orphan_chapters():
    listed = {p.resolve() for p in toc_files(BOOK)}
    orphans = [
        p.name
        for p in sorted(BOOK.glob("*.md"))
        if p.resolve() not in listed and p.name not in NOT_CHAPTERS
    ]
    assert orphans == [], "add these to book/_toc.yml or to NOT_CHAPTERS in this test"


def test_toc_chapters_are_jupytext_notebooks_with_python3():
    for path in toc_files(BOOK):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("---\n"), f"{path.name}: no front matter"
        front = yaml.safe_load(text.split("---\n")[1])
        assert front["jupytext"]["text_representation"]["format_name"] == "myst", path.name
        assert front["kernelspec"]["name"] == "python3", path.name


@pytest.mark.parametrize(
    "label",
    [
        "eq-machine-epsilon",
        "eq-broadcast-shape",
        "eq-vjp",
        "eq-chain-rule-graph",
        "eq-broadcast-reduce",
        "eq-matmul-vjp",
        "eq-central-difference",
        "eq-softmax",
        "eq-softmax-vjp",
        "eq-logsumexp-stable",
    ],
)
def test_required_labels_are_in_the_book(label):
    """The labels that the library's docstrings and tests cite are defined in the book."""
    assert label in {eq.label for eq in collect(BOOK)}


def test_appendix_table_lists_every_equation():
    equations = collect(BOOK)
    table = markdown_table(equations, BOOK.parent)
    for eq in equations:
        assert f"{{eq}}`{eq.label}`" in table
        for ref in eq.test_refs:
            kind = equation_index.kind_of_test(ref, BOOK.parent)
            assert f"{ref.split('::')[-1]}` in `{ref.split('::')[0]}` ({kind})" in table


def test_kind_of_test_reads_the_decorators(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_m.py").write_text(
        textwrap.dedent(
            """\
            import pytest
            from hypothesis import given, settings
            from hypothesis import strategies as st


            @settings(max_examples=5)
            @given(st.integers())
            def test_drawn(n):
                pass


            @pytest.mark.parametrize("n", [1, 2])
            def test_listed(n):
                pass


            class TestGroup:
                @given(x=st.floats())
                def test_method(self, x):
                    pass


            def test_one():
                pass
            """
        )
    )
    kind = lambda name: equation_index.kind_of_test(f"tests/test_m.py::{name}", tmp_path)  # noqa: E731
    assert kind("test_drawn") == kind("TestGroup::test_method") == equation_index.PROPERTY
    assert kind("test_listed") == equation_index.CASES
    assert kind("test_one") == equation_index.EXAMPLE


# --- the checker on synthetic books ------------------------------------------------------------


def test_parses_label_code_and_test(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        $$
        y = x^2
        $$ (eq-square)

        Implemented by `pkg/mod.py::square`; tested by `tests/test_demo.py::test_square`.

        $$ z = 1 $$ (eq-one)

        Tested by `tests/test_demo.py::TestBox::test_opens`.
        """,
        tests=(
            "def test_square():\n    pass\n\n"
            "class TestBox:\n    def test_opens(self):\n        pass\n"
        ),
    )
    equations = collect(book)
    assert [eq.label for eq in equations] == ["eq-square", "eq-one"]
    square = equations[0]
    assert square.tex == "y = x^2"
    assert square.chapter_file == "ch01.md"
    assert square.chapter_title == "Chapter one"
    assert square.code_refs == ("pkg/mod.py::square",)
    assert square.test_refs == ("tests/test_demo.py::test_square",)
    assert equations[1].tex == "z = 1"
    assert problems(equations, tmp_path) == []


def test_missing_test_function_is_a_problem(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        $$
        y = x^2
        $$ (eq-square)

        Implemented by `pkg/mod.py::square`; tested by `tests/test_demo.py::test_square`.
        """,
        tests="def test_something_else():\n    pass\n",
    )
    found = problems(collect(book), tmp_path)
    assert len(found) == 1
    assert "eq-square" in found[0] and "test_square" in found[0]


def test_missing_test_file_is_a_problem(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        $$ y = x^2 $$ (eq-square)

        Tested by `tests/test_nowhere.py::test_square`.
        """,
    )
    found = problems(collect(book), tmp_path)
    assert len(found) == 1 and "does not exist" in found[0]


def test_equation_naming_no_test_is_a_problem(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        $$
        y = x^2
        $$ (eq-square)

        Implemented by `pkg/mod.py::square`.
        """,
    )
    found = problems(collect(book), tmp_path)
    assert len(found) == 1 and "names no test" in found[0]


def test_missing_code_name_and_method_are_problems(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        $$ y = x^3 $$ (eq-cube)

        Implemented by `pkg/mod.py::cube`; tested by `tests/test_demo.py::test_square`.

        $$ y = 0 $$ (eq-closed)

        Implemented by `pkg/mod.py::Box.close`; tested by
        `tests/test_demo.py::test_square`.

        $$ z = 1 $$ (eq-open)

        Implemented by `pkg/mod.py::Box.open`; tested by `tests/test_demo.py::test_square`.
        """,
        tests="def test_square():\n    pass\n",
    )
    equations = collect(book)
    assert equations[1].test_refs == ("tests/test_demo.py::test_square",), "wrapped paragraph"
    found = problems(equations, tmp_path)
    assert len(found) == 2
    assert "cube" in found[0] and "Box.close" in found[1]


def test_references_must_follow_the_equation(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        $$ y = x^2 $$ (eq-square)

        Some prose first, which is tested by `tests/test_demo.py::test_square` in passing.
        """,
        tests="def test_square():\n    pass\n",
    )
    found = problems(collect(book), tmp_path)
    assert len(found) == 1 and "names no test" in found[0]


def test_duplicate_labels_and_code_cells_are_handled(tmp_path):
    book = make_book(
        tmp_path,
        """\
        # Chapter one

        ```{code-cell} ipython3
        # $$ not an equation $$ (eq-fake)
        ```

        $$ a = 1 $$ (eq-a)

        Tested by `tests/test_demo.py::test_a`.

        $$ a = 2 $$ (eq-a)

        Tested by `tests/test_demo.py::test_a`.

        $$ unlabelled = 3 $$
        """,
        tests="def test_a():\n    pass\n",
    )
    equations = collect(book)
    assert [eq.label for eq in equations] == ["eq-a", "eq-a"]
    found = problems(equations, tmp_path)
    assert len(found) == 1 and "also used" in found[0]


def test_chapters_outside_the_toc_are_not_read(tmp_path):
    book = make_book(tmp_path, "# Chapter one\n")
    (book / "draft.md").write_text(HEADER + "# Draft\n\n$$ q = 1 $$ (eq-draft)\n")
    assert collect(book) == []
