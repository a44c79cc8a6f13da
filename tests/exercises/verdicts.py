"""What every exercise check must say about a typical mistake."""


def assert_shrunk_failure(verdict, equation: str, says: str) -> None:
    """The verdict failed, shows the smallest failing case hypothesis found (one example with
    one entry), names the equation it breaks, and says ``says``."""
    assert verdict.status == "FAILED", verdict.message
    assert "the smallest failing case found" in verdict.message
    assert f"it must satisfy ({equation})" in verdict.message
    assert says in verdict.message
    assert "shape (1,)" in verdict.message or "shape ()" in verdict.message, verdict.message
