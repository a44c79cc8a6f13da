"""The exercise notebooks and the grading behind them.

Both directions prove an exercise is real: the solution notebook passes every check, and the
student notebook, where each solution is a stub, passes none. The grading itself must fail a
wrong answer (a forgotten broadcast reduction, a gradient off by 1%, a NumPy call) with the
shrunk counterexample, and pass a right one.
"""

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbclient
import nbformat
import numpy as np
import pytest
from hypothesis import strategies as st

import minidiff as md
from minidiff.checks import exercises as E
from minidiff.checks import grading
from minidiff.checks.grading import Mismatch, grade, summary

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "exercises" / "src").glob("ex*.md"))
VERDICT = re.compile(r"^(PASSED|FAILED|NOT DONE)\s+exercise (\S+)", re.MULTILINE)
CHECK_CALL = re.compile(r"^check_\w+\(", re.MULTILINE)


def _build_module():
    path = ROOT / "exercises" / "build.py"
    spec = importlib.util.spec_from_file_location("exercises_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# --- (a) the committed student notebooks are what the builder makes --------------------------


def test_sources_exist():
    assert {
        "ex01_arrays.md",
        "ex02_backward.md",
        "ex03_layers.md",
        "ex04_attention.md",
        "ex05_encodings.md",
        "ex06_forward.md",
        "ex07_reverse.md",
        "ex08_ddim.md",
        "ex09_patches.md",
        "ex10_guidance.md",
        "ex11_metrics.md",
        "ex13_intervals.md",
        "ex14_continuation.md",
        "ex15_fusion.md",
    } <= {p.name for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_in_sync(source):
    student = ROOT / "exercises" / f"{source.stem}.ipynb"
    assert student.read_text(encoding="utf-8") == build.student_notebook(source), (
        f"{student.name} is out of date: run `make exercises`"
    )


def test_build_check_cli():
    result = subprocess.run(
        [sys.executable, "-m", "exercises.build", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_student_notebook_has_no_solutions():
    for source in SOURCES:
        text = build.student_notebook(source)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        notebook = nbformat.reads(text, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
        assert all(c.id == f"{source.stem}-{i:02d}" for i, c in enumerate(notebook.cells))


def test_stub_keeps_indentation_and_names_the_exercise():
    source = (
        "def f(x):\n"
        "    y = 1\n"
        "    # BEGIN SOLUTION Exercise 2.3: write the backward of matmul (eq-matmul-vjp)\n"
        "    return x @ y\n"
        "    # END SOLUTION\n"
        "z = 2"
    )
    stripped, blocks = build.strip_solutions(source)
    assert blocks == 1
    assert stripped == (
        "def f(x):\n"
        "    y = 1\n"
        "    raise NotImplementedError("
        '"Exercise 2.3: write the backward of matmul (eq-matmul-vjp)")\n'
        "z = 2"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "def f():\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION",
        "def f():\n    # BEGIN SOLUTION Exercise 1.1: x\n    pass",
        "def f():\n    pass\n    # END SOLUTION",
        "# BEGIN SOLUTION Exercise 1.1: x\nx = 1\n# END SOLUTION",
    ],
)
def test_bad_markers_are_rejected(bad):
    with pytest.raises(build.MarkerError):
        build.strip_solutions(bad)


# --- (b), (c) running the notebooks -------------------------------------------------------------


def _execute(notebook, directory: Path):
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
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
    return errors, "".join(text)


def _check_calls(notebook) -> int:
    return sum(len(CHECK_CALL.findall(c.source)) for c in notebook.cells if c.cell_type == "code")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_notebook_passes_every_check(source):
    notebook = jupytext.read(source)
    errors, text = _execute(notebook, source.parent)
    assert not errors, errors
    verdicts = VERDICT.findall(text)
    assert len(verdicts) == _check_calls(notebook) > 0, text
    assert all(status == "PASSED" for status, _ in verdicts), text
    assert text.rstrip().endswith("True"), "summary() should report that everything passed"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_passes_no_check(source):
    path = ROOT / "exercises" / f"{source.stem}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    errors, text = _execute(notebook, path.parent)
    assert not errors, "a stub must not stop Run All: " + "; ".join(errors)
    verdicts = VERDICT.findall(text)
    assert len(verdicts) == _check_calls(notebook) > 0, text
    assert all(status in ("NOT DONE", "FAILED") for status, _ in verdicts), text
    assert "Exercise " in text  # the stubs' messages name their exercise
    assert text.rstrip().endswith("False")


def test_static_check_sees_numpy_in_a_notebook_cell():
    """In a kernel, the source of a function typed into a cell is readable: NumPy is caught."""
    cell = (
        "import numpy as np\n"
        "from minidiff.checks.exercises import check_standardize\n"
        "def standardize(x, axis=-1, eps=1e-5):\n"
        "    centered = x - x.mean(axis=axis, keepdims=True)\n"
        "    return centered / np.sqrt((centered**2).mean(axis=axis, keepdims=True) + eps)\n"
        "check_standardize(standardize)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    errors, text = _execute(notebook, ROOT)
    assert not errors, errors
    assert text.startswith("FAILED  exercise 1.1") and "np (line 5)" in text, text


# --- (d) the grading ------------------------------------------------------------------------


def test_grade_shows_the_shrunk_counterexample():
    def below_ten(n):
        if n >= 10:
            raise Mismatch(f"{n} is not below 10")

    verdict = grade(
        "0.1",
        "below ten",
        "eq-none",
        below_ten,
        st.integers(0, 10_000),
        statement="n < 10",
        describe=lambda n: f"n = {n}",
        echo=False,
    )
    assert not verdict.passed and verdict.status == "FAILED"
    assert verdict.message.splitlines()[:3] == [
        "FAILED  exercise 0.1 (below ten, eq-none)",
        "  the smallest failing case found:",
        "    n = 10",
    ]
    assert "10 is not below 10" in verdict.message
    assert "it must satisfy (eq-none): n < 10" in verdict.message


def test_grade_reports_an_exception_with_its_line():
    def crash(n):
        return [1, 2][n]

    verdict = grade("0.2", "index", "", crash, st.integers(0, 5), echo=False)
    assert verdict.status == "FAILED"
    assert verdict.message.splitlines()[:3] == [
        "FAILED  exercise 0.2 (index)",
        "  the smallest failing case found:",
        "    2",
    ]
    assert "your code raised IndexError" in verdict.message
    assert "return [1, 2][n]" in verdict.message


def test_grade_is_reproducible():
    def wrong(g, a, b):
        return g * b, g * a

    first = E.check_vjp("2.1", wrong, op="mul")
    second = E.check_vjp("2.1", wrong, op="mul")
    assert first.message == second.message


def test_summary(capsys):
    assert summary() is False
    grade("a", "passes", "", lambda n: None, st.integers(), echo=False)
    assert summary() is True
    grade("b", "fails", "", lambda n: 1 / 0, st.integers(), echo=False)
    grade("a", "passes", "", lambda n: None, st.integers(), echo=False)
    assert summary() is False
    assert [v.name for v in grading.VERDICTS] == ["a", "b"]
    table = capsys.readouterr().out
    assert "1 of 2 checks passed." in table


def _reference_sum_to(grad, shape):
    return md.sum_to(grad, shape)


def mul_correct(g, a, b):
    return _reference_sum_to(g * b, a.shape), _reference_sum_to(g * a, b.shape)


def mul_no_reduction(g, a, b):
    return g * b, g * a


def mul_one_percent_off(g, a, b):
    return _reference_sum_to(g * b, a.shape), _reference_sum_to(1.01 * g * a, b.shape)


def mul_stub(g, a, b):
    raise NotImplementedError("Exercise 2.1: write the backward of mul (eq-vjp)")


def test_check_vjp_passes_a_correct_backward():
    verdict = E.check_vjp("2.1", mul_correct, op="mul", max_examples=30)
    assert verdict.passed and verdict.message.startswith("PASSED  exercise 2.1 (")
    assert verdict.message.endswith("random cases") and "eq-broadcast-reduce" in verdict.message


def test_check_vjp_fails_a_forgotten_reduction():
    verdict = E.check_vjp("2.1", mul_no_reduction, op="mul")
    assert verdict.status == "FAILED"
    assert "the smallest failing case found" in verdict.message
    assert "but a has shape" in verdict.message or "but b has shape" in verdict.message
    assert "eq-broadcast-reduce" in verdict.message
    # Shrunk: the inputs shown are tiny.
    shapes = re.findall(r"shape (\([0-9, ]*\))", verdict.message)
    assert shapes and all(np.prod(eval(s)) <= 2 for s in shapes[:3]), verdict.message


def test_check_vjp_fails_a_gradient_one_percent_off():
    verdict = E.check_vjp("2.1", mul_one_percent_off, op="mul")
    assert verdict.status == "FAILED"
    assert "the gradient for b is wrong" in verdict.message
    assert "expected:" in verdict.message and "got:" in verdict.message


def test_check_vjp_not_done():
    verdict = E.check_vjp("2.1", mul_stub, op="mul")
    assert verdict.status == "NOT DONE" and not verdict.passed
    assert verdict.message.startswith("NOT DONE exercise 2.1 (")
    assert "Exercise 2.1: write the backward of mul" in verdict.message


def test_check_vjp_fails_a_float32_gradient():
    def matmul_float32(g, a, b):
        return (
            (g @ b.swapaxes(-1, -2)).astype("float32"),
            _reference_sum_to(a.swapaxes(-1, -2) @ g, b.shape),
        )

    verdict = E.check_vjp("2.3", matmul_float32, op="matmul")
    assert verdict.status == "FAILED" and "float64" in verdict.message


def test_check_vjp_fails_an_unstable_logsumexp():
    def naive(g, x, axis, keepdims):
        xp = md.backend.xp_of(x)
        total = xp.exp(x).sum(axis=axis, keepdims=True)
        return g.reshape(total.shape) * xp.exp(x) / total

    verdict = E.check_vjp("2.6", naive, op="logsumexp")
    assert verdict.status == "FAILED"
    assert "1000." in verdict.message and "nan instead of" in verdict.message
    if md.default_device() == "cpu":  # CuPy does not warn on overflow
        assert "RuntimeWarning: overflow encountered in exp" in verdict.message


def test_check_vjp_fails_a_wrong_softmax_backward():
    def diagonal_only(g, s, axis):
        return g * s * (1 - s)

    verdict = E.check_vjp("2.5", diagonal_only, op="softmax")
    assert verdict.status == "FAILED" and "eq-softmax-vjp" in verdict.message


def standardize_float64(x, axis=-1, eps=1e-5):
    xp = md.backend.xp_of(x)
    x = x.astype(xp.float64)
    centered = x - x.mean(axis=axis, keepdims=True)
    return centered / xp.sqrt((centered * centered).mean(axis=axis, keepdims=True) + eps)


def standardize_numpy(x, axis=-1, eps=1e-5):
    centered = x - x.mean(axis=axis, keepdims=True)
    return centered / np.sqrt((centered * centered).mean(axis=axis, keepdims=True) + eps)


def test_device_agnostic_fails_a_float64_upcast():
    verdict = E.check_standardize(standardize_float64)
    assert verdict.status == "FAILED" and "float32 must stay float32" in verdict.message


def test_device_agnostic_fails_a_numpy_call():
    verdict = E.check_standardize(standardize_numpy)
    assert verdict.status == "FAILED" and "names an array module directly: np" in verdict.message


def test_device_agnostic_fails_a_loop():
    def pairwise_loop(x, y):
        xp = md.backend.xp_of(x)
        rows = [((x[i] - y) ** 2).sum(axis=-1) for i in range(x.shape[0])]
        return xp.stack(rows) if rows else xp.zeros((0, len(y)), dtype=x.dtype)

    verdict = E.check_pairwise_sq_dists(pairwise_loop)
    assert verdict.status == "FAILED" and "loops in Python: for" in verdict.message


def test_device_agnostic_fails_a_scalar_result():
    def sum_to_scalar(grad, shape):
        lead = grad.ndim - len(shape)
        stretched = tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
        )
        return grad.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)

    verdict = E.check_sum_to(sum_to_scalar)
    assert verdict.status == "FAILED" and "not a numpy.ndarray" in verdict.message
    assert "shape (), float32" in verdict.message


def test_device_agnostic_fails_an_unstable_softmax():
    def softmax_naive(x, axis=-1):
        e = md.backend.xp_of(x).exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    verdict = E.check_softmax(softmax_naive)
    assert verdict.status == "FAILED" and "nan instead of" in verdict.message
    if md.default_device() == "cpu":
        assert "RuntimeWarning: overflow encountered in exp" in verdict.message


def test_device_agnostic_passes_a_correct_function():
    def softmax(x, axis=-1):
        xp = md.backend.xp_of(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    assert E.check_softmax(softmax).passed


def test_static_check_without_source():
    """A function with no readable source is judged by the names its compiled code uses."""
    namespace = {}
    exec("import numpy as np\ndef f(x):\n    return [np.sum(v) for v in x]", namespace)
    assert "names an array module directly: np" in E.static_problems(namespace["f"])
    exec("def g(x):\n    return x.sum()", namespace)
    assert E.static_problems(namespace["g"]) is None


# --- exercise 3: layer normalization's backward and one AdamW step ----------------------------


def layernorm_backward_correct(x, weight, g, eps):
    xp = md.backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    x_hat = centered * rstd
    g_hat = g * weight
    grad_x = rstd * (
        g_hat
        - g_hat.mean(axis=-1, keepdims=True)
        - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True)
    )
    rows = tuple(range(x.ndim - 1))
    return grad_x, (g * x_hat).sum(axis=rows), g.sum(axis=rows)


def layernorm_backward_no_projection(x, weight, g, eps):
    """Forgets the - x_hat mean(g_hat x_hat) term of eq-layernorm-vjp."""
    grad_x, grad_w, grad_b = layernorm_backward_correct(x, weight, g, eps)
    xp = md.backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    g_hat = g * weight
    return rstd * (g_hat - g_hat.mean(axis=-1, keepdims=True)), grad_w, grad_b


def layernorm_backward_unreduced(x, weight, g, eps):
    """Returns the weight and bias gradients per row, not summed over the rows."""
    grad_x, _, _ = layernorm_backward_correct(x, weight, g, eps)
    xp = md.backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    x_hat = centered / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    return grad_x, g * x_hat, g


def adamw_correct(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    xp = md.backend.xp_of(p)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    step = (m / (1 - beta1**t)) / (xp.sqrt(v / (1 - beta2**t)) + eps)
    return p * (1 - lr * weight_decay) - lr * step, m, v


def adamw_as_l2(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    """Adam with L2 regularization: the decay enters the gradient, and so m and v."""
    return adamw_correct(p, g + weight_decay * p, m, v, t, lr, beta1, beta2, eps, 0.0)


def adamw_no_bias_correction(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    xp = md.backend.xp_of(p)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    return p * (1 - lr * weight_decay) - lr * m / (xp.sqrt(v) + eps), m, v


def test_check_layernorm_backward_passes_a_correct_backward():
    verdict = E.check_layernorm_backward(layernorm_backward_correct)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith(
        "PASSED  exercise 3.1 (layer norm backward, eq-layernorm-vjp)"
    )


def test_check_layernorm_backward_fails_a_forgotten_projection():
    verdict = E.check_layernorm_backward(layernorm_backward_no_projection)
    assert verdict.status == "FAILED"
    assert "the smallest failing case found" in verdict.message
    assert "the gradient for x is wrong" in verdict.message
    assert "it must satisfy (eq-layernorm-vjp)" in verdict.message
    assert "x_hat mean(gh x_hat)" in verdict.message


def test_check_layernorm_backward_fails_unreduced_parameter_gradients():
    verdict = E.check_layernorm_backward(layernorm_backward_unreduced)
    assert verdict.status == "FAILED"
    assert "the gradient for weight has shape" in verdict.message


def test_check_layernorm_backward_not_done():
    def stub(x, weight, g, eps):
        raise NotImplementedError("Exercise 3.1: write the backward of layer normalization")

    verdict = E.check_layernorm_backward(stub)
    assert verdict.status == "NOT DONE" and "Exercise 3.1" in verdict.message


def test_check_adamw_step_passes_a_correct_step():
    verdict = E.check_adamw_step(adamw_correct)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 3.2 (one AdamW step, eq-adamw)")


def test_check_adamw_step_fails_l2_instead_of_decoupled_decay():
    verdict = E.check_adamw_step(adamw_as_l2)
    assert verdict.status == "FAILED"
    assert "the new p is wrong" in verdict.message
    assert "it must satisfy (eq-adamw)" in verdict.message
    # The shrunk case has decay switched on (without it the two updates agree).
    decay = re.search(r"weight_decay = ([0-9.e-]+)", verdict.message)
    assert decay and float(decay.group(1)) > 0, verdict.message


def test_check_adamw_step_fails_without_bias_correction():
    verdict = E.check_adamw_step(adamw_no_bias_correction)
    assert verdict.status == "FAILED" and "the new p is wrong" in verdict.message


def test_check_adamw_step_fails_a_float32_result():
    def float32_step(*args, **hyper):
        p, m, v = adamw_correct(*args, **hyper)
        return p.astype("float32"), m, v

    verdict = E.check_adamw_step(float32_step)
    assert verdict.status == "FAILED" and "must stay float64" in verdict.message


def test_adamw_closed_form_matches_the_library():
    """The check's two references agree: the closed form is one step of optim.AdamW."""
    rng = np.random.default_rng(0)
    p, g, m = rng.standard_normal((3, 4, 5))
    v = rng.random((4, 5))
    hyper = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1)
    param = md.nn.Parameter(p, dtype=np.float64, device="cpu")
    param.grad = g.copy()
    optimizer = md.optim.AdamW([param], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    optimizer.state[id(param)] = {"step": 6, "exp_avg": m.copy(), "exp_avg_sq": v.copy()}
    optimizer.step()
    want_p, want_m, want_v = E.adamw_closed_form(p, g, m, v, 7, **hyper)
    state = optimizer.state[id(param)]
    np.testing.assert_allclose(param.data, want_p, rtol=1e-12)
    np.testing.assert_allclose(state["exp_avg"], want_m, rtol=1e-12)
    np.testing.assert_allclose(state["exp_avg_sq"], want_v, rtol=1e-12)


# --- exercises 6 to 8: the forward chain, the posterior, the DDIM step -------------------------


def _per_example(values, like):
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def q_sample_correct(alpha_bars, x0, t, noise):
    xp = md.backend.xp_of(x0)
    alpha_bar = _per_example(alpha_bars[t], x0)
    return xp.sqrt(alpha_bar) * x0 + xp.sqrt(1.0 - alpha_bar) * noise


def q_sample_without_root(alpha_bars, x0, t, noise):
    """alpha_bar instead of sqrt(alpha_bar) as the signal's coefficient."""
    xp = md.backend.xp_of(x0)
    alpha_bar = _per_example(alpha_bars[t], x0)
    return alpha_bar * x0 + xp.sqrt(1.0 - alpha_bar) * noise


def q_sample_one_step_late(alpha_bars, x0, t, noise):
    """Reads the book's alpha_bar_t at code index t - 1 (alpha_bar_0 = 1): one step too few."""
    xp = md.backend.xp_of(x0)
    previous = xp.concatenate([xp.ones(1), alpha_bars[:-1]])
    alpha_bar = _per_example(previous[t], x0)
    return xp.sqrt(alpha_bar) * x0 + xp.sqrt(1.0 - alpha_bar) * noise


def q_step_correct(betas, x_prev, t, noise):
    xp = md.backend.xp_of(x_prev)
    beta = _per_example(betas[t], x_prev)
    return xp.sqrt(1.0 - beta) * x_prev + xp.sqrt(beta) * noise


def q_step_variance_beta_squared(betas, x_prev, t, noise):
    """Noise scaled by beta instead of sqrt(beta)."""
    xp = md.backend.xp_of(x_prev)
    beta = _per_example(betas[t], x_prev)
    return xp.sqrt(1.0 - beta) * x_prev + beta * noise


def q_step_without_shrinking(betas, x_prev, t, noise):
    """The variance-exploding step: no sqrt(1 - beta) factor."""
    xp = md.backend.xp_of(x_prev)
    return x_prev + xp.sqrt(_per_example(betas[t], x_prev)) * noise


def _coefficients(betas, t, like):
    xp = md.backend.xp_of(betas)
    alphas = 1.0 - betas
    alpha_bars = xp.cumprod(alphas)
    alpha_bars_prev = xp.concatenate([xp.ones(1), alpha_bars[:-1]])
    return tuple(_per_example(a[t], like) for a in (betas, alphas, alpha_bars, alpha_bars_prev))


def q_posterior_correct(betas, x0, x_t, t):
    xp = md.backend.xp_of(x0)
    beta, alpha, ab, ab_prev = _coefficients(betas, t, x0)
    mean = (xp.sqrt(ab_prev) * beta * x0 + xp.sqrt(alpha) * (1.0 - ab_prev) * x_t) / (1.0 - ab)
    return mean, (1.0 - ab_prev) / (1.0 - ab) * beta


def q_posterior_variance_beta(betas, x0, x_t, t):
    """The forward step's variance beta instead of beta tilde."""
    mean, _ = q_posterior_correct(betas, x0, x_t, t)
    return mean, _coefficients(betas, t, x0)[0]


def q_posterior_mean_with_alpha_bar(betas, x0, x_t, t):
    """sqrt(alpha_bar_t) instead of sqrt(alpha_bar_{t-1}) on x0."""
    xp = md.backend.xp_of(x0)
    beta, alpha, ab, ab_prev = _coefficients(betas, t, x0)
    mean = (xp.sqrt(ab) * beta * x0 + xp.sqrt(alpha) * (1.0 - ab_prev) * x_t) / (1.0 - ab)
    return mean, (1.0 - ab_prev) / (1.0 - ab) * beta


def mean_from_eps_correct(betas, x_t, t, eps):
    xp = md.backend.xp_of(x_t)
    beta, alpha, ab, _ = _coefficients(betas, t, x_t)
    return (x_t - beta / xp.sqrt(1.0 - ab) * eps) / xp.sqrt(alpha)


def mean_from_eps_sqrt_beta(betas, x_t, t, eps):
    """sqrt(beta) instead of beta / sqrt(1 - alpha_bar) on eps."""
    xp = md.backend.xp_of(x_t)
    beta, alpha, _, _ = _coefficients(betas, t, x_t)
    return (x_t - xp.sqrt(beta) * eps) / xp.sqrt(alpha)


def ddim_sigma_correct(alpha_bars, t, s, eta):
    a_t, a_s = alpha_bars[t], (alpha_bars[s] if s >= 0 else 1.0)
    return eta * math.sqrt((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s))


def ddim_sigma_missing_ratio(alpha_bars, t, s, eta):
    """Forgets the factor sqrt((1 - a_s) / (1 - a_t))."""
    a_t, a_s = alpha_bars[t], (alpha_bars[s] if s >= 0 else 1.0)
    return eta * math.sqrt(1.0 - a_t / a_s)


def _ddim_step(sigma_fn, eps_coefficient):
    def step(alpha_bars, x0, eps, t, s, eta, noise):
        a_s = alpha_bars[s] if s >= 0 else 1.0
        sigma = sigma_fn(alpha_bars, t, s, eta)
        return math.sqrt(a_s) * x0 + eps_coefficient(a_s, sigma) * eps + sigma * noise

    return step


ddim_step_correct = _ddim_step(
    ddim_sigma_correct, lambda a_s, sigma: math.sqrt(max(1.0 - a_s - sigma**2, 0.0))
)
# Keeps sqrt(1 - a_s) on eps whatever sigma: the noise is counted twice when eta > 0.
ddim_step_noise_counted_twice = _ddim_step(
    ddim_sigma_correct, lambda a_s, sigma: math.sqrt(1 - a_s)
)
# A correct step built on a wrong sigma.
ddim_step_wrong_sigma = _ddim_step(
    ddim_sigma_missing_ratio, lambda a_s, sigma: math.sqrt(max(1.0 - a_s - sigma**2, 0.0))
)


@pytest.mark.parametrize(
    "check, correct",
    [
        (E.check_q_sample, q_sample_correct),
        (E.check_q_step, q_step_correct),
        (E.check_q_posterior, q_posterior_correct),
        (E.check_posterior_mean_from_eps, mean_from_eps_correct),
        (E.check_ddim_sigma, ddim_sigma_correct),
        (E.check_ddim_step, ddim_step_correct),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_diffusion_checks_pass_a_correct_answer(check, correct):
    verdict = check(correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "check, wrong, equation, says",
    [
        (E.check_q_sample, q_sample_without_root, "eq-closed-form", "composed steps"),
        (E.check_q_sample, q_sample_one_step_late, "eq-closed-form", "x_t"),
        (E.check_q_step, q_step_variance_beta_squared, "eq-forward-step", "variance"),
        (E.check_q_step, q_step_without_shrinking, "eq-forward-step", "x_t"),
        (E.check_q_posterior, q_posterior_variance_beta, "eq-posterior", "the variance"),
        (E.check_q_posterior, q_posterior_mean_with_alpha_bar, "eq-posterior", "the mean"),
        (E.check_posterior_mean_from_eps, mean_from_eps_sqrt_beta, "eq-posterior-mean-eps", "mean"),
        (E.check_ddim_sigma, ddim_sigma_missing_ratio, "eq-ddim-sigma", "beta tilde"),
        (E.check_ddim_step, ddim_step_noise_counted_twice, "eq-ddim-step", "1 - a_s"),
        (E.check_ddim_step, ddim_step_wrong_sigma, "eq-ddim-step", "x_s"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_diffusion_checks_fail_a_typical_mistake(check, wrong, equation, says):
    verdict = check(wrong)
    assert verdict.status == "FAILED", verdict.message
    assert "the smallest failing case found" in verdict.message
    assert f"it must satisfy ({equation})" in verdict.message
    assert says in verdict.message
    # The counterexample is shrunk: a single example with a single entry.
    assert "shape (1,)" in verdict.message or "shape ()" in verdict.message, verdict.message


def test_diffusion_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 6.1: write the closed form q_sample (eq-closed-form)")

    for check in (E.check_q_sample, E.check_q_posterior, E.check_ddim_sigma, E.check_ddim_step):
        verdict = check(stub)
        assert verdict.status == "NOT DONE" and "Exercise 6.1" in verdict.message


def test_q_sample_check_shows_the_schedule_and_the_index_convention():
    verdict = E.check_q_sample(q_sample_without_root)
    assert "schedule = " in verdict.message and "t = 0 is the book's step 1" in verdict.message


def test_ddim_step_check_fails_a_float32_result():
    def float32_step(*args):
        return ddim_step_correct(*args).astype("float32")

    verdict = E.check_ddim_step(float32_step)
    assert verdict.status == "FAILED" and "must stay float64" in verdict.message
