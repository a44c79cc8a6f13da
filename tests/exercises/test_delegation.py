"""A solution that calls the library function its exercise rebuilds is refused, by every check
of the notebooks, and grading leaves the library as it found it."""

import importlib
import inspect
import re
from functools import partial
from pathlib import Path

import pytest

import minidiff as md
import minidiff.metrics.continuation
import minidiff.metrics.intervals
import minidiff.metrics.tracking
import minidiff.metrics.video
from minidiff.checks import (
    delegation,
    ex05_rope,
    ex07_bound,
    ex08_flow,
    ex08_targets,
    ex12_training,
    ex16_detect,
    ex17_allreduce,
    grading,
)
from minidiff.checks import ex01_arrays as E1
from minidiff.checks import ex02_backward as E2
from minidiff.checks import ex03_layers as E3
from minidiff.checks import ex04_attention as E4
from minidiff.checks import ex05_encodings as E5
from minidiff.checks import ex06_forward as E6
from minidiff.checks import ex07_reverse as E7
from minidiff.checks import ex08_ddim as E8
from minidiff.checks import ex09_patches as E9
from minidiff.checks import ex10_guidance as E10
from minidiff.checks import ex11_metrics as E11
from minidiff.checks import ex13_intervals as E13
from minidiff.checks import ex14_continuation as E14
from minidiff.checks import ex15_fusion as E15

from .verdicts import assert_refused

SOURCES = Path(__file__).resolve().parents[2] / "exercises" / "src"
process, samplers = md.diffusion.process, md.diffusion.samplers
metrics = minidiff.metrics

# Checks that have no library counterpart to delegate to (15.2 times a function with the clock it
# is given; nothing in minidiff does that).
# 17.1 asks for one rank's share of a loss, which no library function computes alone.
NOTHING_TO_DELEGATE = {"check_time_it", "check_shard_loss"}

# (check, a solution that delegates, the library function it calls). The tripwire raises at the
# call, so the arguments need not be right.
DELEGATING = [
    (
        E1.check_standardize,
        lambda x, axis=-1, eps=1e-5: md.var(x, axis=axis),
        "minidiff.autograd.ops.var",
    ),
    (
        E1.check_pairwise_sq_dists,
        lambda x, y: E1._pairwise_reference(x, y),
        "minidiff.checks.ex01_arrays._pairwise_reference",
    ),
    (
        E1.check_softmax,
        lambda x, axis=-1: md.softmax(x, axis=axis).data,
        "minidiff.autograd.ops.softmax",
    ),
    (E1.check_sum_to, lambda grad, shape: md.sum_to(grad, shape), "minidiff.autograd.ops.sum_to"),
    (
        partial(E2.check_vjp, "2.1", op="mul"),
        lambda g, a, b: md.mul(a, b),
        "minidiff.autograd.ops.mul",
    ),
    (
        partial(E2.check_vjp, "2.2", op="div"),
        lambda g, a, b: md.tensor(a) / b,
        "minidiff.autograd.ops.div",
    ),
    (
        partial(E2.check_vjp, "2.3", op="matmul"),
        lambda g, a, b: md.tensor(a).backward(),
        "minidiff.autograd.tensor.Tensor.backward",
    ),
    (
        partial(E2.check_vjp, "2.4", op="sum"),
        lambda g, shape, axis, keep: md.sum(g),
        "minidiff.autograd.ops.sum",
    ),
    (
        partial(E2.check_vjp, "2.5", op="softmax"),
        lambda g, s, axis: md.softmax(s, axis),
        "minidiff.autograd.ops.softmax",
    ),
    (
        partial(E2.check_vjp, "2.6", op="logsumexp"),
        lambda g, x, axis, keep: md.logsumexp(x, axis),
        "minidiff.autograd.ops.logsumexp",
    ),
    (
        E3.check_layernorm_backward,
        lambda x, w, g, eps: md.nn.functional.layer_norm(x, w, None),
        "minidiff.nn.functional.layer_norm",
    ),
    (
        E3.check_adamw_step,
        lambda p, *rest, **hyper: md.optim.AdamW.step(None),
        "minidiff.optim.AdamW.step",
    ),
    (
        E4.check_attention_backward,
        lambda q, k, v, g, mask=None: md.nn.scaled_dot_product_attention(q, k, v),
        "minidiff.nn.attention.scaled_dot_product_attention",
    ),
    (
        E4.check_attention_backward,
        lambda q, k, v, g, mask=None: md.nn.attention_weights(q, k),
        "minidiff.nn.attention.attention_weights",
    ),
    (
        E4.check_frame_causal_mask,
        lambda f, h, w: E4.frame_causal_reference(f, h, w),
        "minidiff.checks.ex04_attention.frame_causal_reference",
    ),
    (
        E5.check_sincos_1d,
        lambda pos, dim, max_period=1e4: md.nn.encodings.sincos_1d(pos, dim),
        "minidiff.nn.encodings.sincos_1d",
    ),
    (
        E5.check_sincos_3d,
        lambda f, h, w, dim, time_fraction=0.25: md.nn.encodings.sincos_3d(f, h, w, dim),
        "minidiff.nn.encodings.sincos_3d",
    ),
    (
        E6.check_q_sample,
        lambda ab, x0, t, noise: process.q_sample(None, x0, t, noise),
        "minidiff.diffusion.process.q_sample",
    ),
    (
        E6.check_q_step,
        lambda b, x, t, noise: process.q_step(None, x, t, noise),
        "minidiff.diffusion.process.q_step",
    ),
    (
        E7.check_q_posterior,
        lambda b, x0, x_t, t: process.q_posterior(None, x0, x_t, t),
        "minidiff.diffusion.process.q_posterior",
    ),
    (
        E7.check_posterior_mean_from_eps,
        lambda b, x_t, t, eps: process.x0_from_eps(None, x_t, t, eps),
        "minidiff.diffusion.process.x0_from_eps",
    ),
    (
        E8.check_ddim_sigma,
        lambda ab, t, s, eta: samplers.ddim_sigma(None, t, s, eta),
        "minidiff.diffusion.samplers.ddim_sigma",
    ),
    (
        E8.check_ddim_step,
        lambda ab, x0, eps, t, s, eta, noise: samplers.ddim_step(None, x0, eps, t, s, eta),
        "minidiff.diffusion.samplers.ddim_step",
    ),
    (
        E9.check_patchify,
        lambda x, patch, tubelet=1: md.models.patchify(x, patch, tubelet),
        "minidiff.models.uvit.patchify",
    ),
    (
        E9.check_unpatchify,
        lambda tokens, *shape: md.models.unpatchify(tokens, *shape),
        "minidiff.models.uvit.unpatchify",
    ),
    (
        E10.check_guidance,
        lambda u, c, w: samplers.classifier_free_guidance(u, c, w),
        "minidiff.diffusion.samplers.classifier_free_guidance",
    ),
    (
        E10.check_batched_guidance,
        lambda model, c, n, w: samplers.guided(model, c, n, w),
        "minidiff.diffusion.samplers.guided",
    ),
    (
        E11.check_blob_measure,
        lambda alpha: metrics.tracking.detect(alpha),
        "minidiff.metrics.tracking.detect",
    ),
    (
        E11.check_velocity_fit,
        lambda t, p: metrics.video._fit_line(t, p)[0],
        "minidiff.metrics.video._fit_line",
    ),
    (
        E11.check_gravity_fit,
        lambda t, y: 2 * metrics.video._fit_flight(t, y, [])[0],
        "minidiff.metrics.video._fit_flight",
    ),
    (
        E13.check_bootstrap_interval,
        lambda v, lv, b, s: metrics.intervals.bootstrap_interval(v, lv, b, s),
        "minidiff.metrics.intervals.bootstrap_interval",
    ),
    (
        E13.check_clips_needed,
        lambda p, h, lv: metrics.intervals.summarize([p]),
        "minidiff.metrics.intervals.summarize",
    ),
    (
        E14.check_seam_frames,
        lambda n, w, c: metrics.continuation.seam_frames(n, w, c),
        "minidiff.metrics.continuation.seam_frames",
    ),
    (
        E14.check_replacement,
        lambda x, k, m, ab, noise: samplers._noised(None, k, 0, None),
        "minidiff.diffusion.samplers._noised",
    ),
    (
        E14.check_acceleration_errors,
        lambda p, g: metrics.continuation.acceleration_errors(p, g),
        "minidiff.metrics.continuation.acceleration_errors",
    ),
    (E15.check_silu_fused, lambda x: md.silu(x), "minidiff.autograd.ops.silu"),
]


def _calling(qualified: str):
    """A solution calling ``qualified`` as it is at call time (the tripwire, while graded)."""
    module, _, attribute = qualified.rpartition(".")

    def solution(*args, **kwargs):
        return getattr(importlib.import_module(module), attribute)(*args, **kwargs)

    return solution


def _graded(check, functions: int, qualified: str):
    """``check`` graded with every one of its ``functions`` calling ``qualified``."""

    def run(_solution, max_examples=5):
        return check(*[_calling(qualified)] * functions, max_examples=max_examples)

    run.__name__ = check.__name__
    return run


# The checks of the newer notebooks name what each exercise rebuilds in their module's LIBRARY;
# a solution (every function the check takes) calling the first of those names is refused.
for _module in (
    ex05_rope,
    ex07_bound,
    ex08_targets,
    ex08_flow,
    ex12_training,
    ex16_detect,
    ex17_allreduce,
):
    for _check in vars(_module).values():
        if not (inspect.isfunction(_check) and _check.__name__.startswith("check_")):
            continue
        _parameters = inspect.signature(_check).parameters
        _library = _module.LIBRARY.get(_parameters["exercise"].default)
        if _library:
            DELEGATING.append(
                (
                    _graded(_check, list(_parameters).index("exercise"), _library[0]),
                    None,
                    _library[0],
                )
            )


def _name(check) -> str:
    return (
        check.func.__name__ + "-" + check.keywords["op"]
        if isinstance(check, partial)
        else check.__name__
    )


@pytest.mark.parametrize(
    "check, solution, library", DELEGATING, ids=[_name(c) for c, _, _ in DELEGATING]
)
def test_a_delegating_solution_is_refused(check, solution, library):
    before = delegation.resolve(library)[2]
    assert_refused(
        check(solution, max_examples=5) if _takes_examples(check) else check(solution), library
    )
    assert delegation.resolve(library)[2] is before
    assert not grading.summary(echo=False)


def _takes_examples(check) -> bool:
    return (
        "max_examples"
        in getattr(check, "__code__", getattr(check, "func", check).__code__).co_varnames
    )


def test_every_check_of_the_notebooks_has_a_delegating_solution():
    called = set()
    for source in SOURCES.glob("ex*.md"):
        called |= set(re.findall(r"^(check_\w+)\(", source.read_text(), re.MULTILINE))
    covered = {_name(c).split("-")[0] for c, _, _ in DELEGATING}
    assert called - NOTHING_TO_DELEGATE <= covered, sorted(called - NOTHING_TO_DELEGATE - covered)


def test_the_library_is_restored_also_when_the_block_raises():
    names = ("minidiff.diffusion.process.q_posterior", "minidiff.autograd.tensor.Tensor.backward")
    originals = [delegation.resolve(n)[2] for n in names]
    reexported = md.softmax
    with (
        pytest.raises(KeyError),
        delegation.forbidden("0.1", names + ("minidiff.autograd.ops.softmax",)),
    ):
        assert md.softmax is not reexported and process.q_posterior is not originals[0]
        raise KeyError("stop")
    assert [delegation.resolve(n)[2] for n in names] == originals
    assert md.softmax is reexported and md.autograd.ops.softmax is reexported


def test_an_unknown_name_says_how_to_write_one():
    with (
        pytest.raises(ValueError, match="full dotted path"),
        delegation.forbidden("0.1", ("minidiff.no_such",)),
    ):
        pass
