"""What every exercise check must say about a typical mistake."""


def assert_shrunk_failure(verdict, equation: str, says: str) -> None:
    """The verdict failed, shows the smallest failing case hypothesis found (one example with
    one entry), names the equation it breaks, and says ``says``."""
    assert verdict.status == "FAILED", verdict.message
    assert "the smallest failing case found" in verdict.message
    assert f"it must satisfy ({equation})" in verdict.message
    assert says in verdict.message
    assert "shape (1,)" in verdict.message or "shape ()" in verdict.message, verdict.message


def assert_not_done(check, stub_message: str, exercise: str) -> None:
    """A check run on a stub that raises NotImplementedError(``stub_message``), as a student's
    untouched notebook does, says NOT DONE and names the ``exercise``."""

    def stub(*args):
        raise NotImplementedError(stub_message)

    verdict = check(stub)
    assert verdict.status == "NOT DONE" and exercise in verdict.message, verdict.message


def by_name(value) -> str:
    """Test ids from the functions in a parametrize table."""
    return getattr(value, "__name__", "")


def assert_refused(verdict, library: str) -> None:
    """The verdict refused a solution that called ``library``, naming it."""
    assert verdict.status == "REFUSED" and not verdict.passed, verdict.message
    assert f"without calling {library}" in verdict.message, verdict.message
