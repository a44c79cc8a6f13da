"""Attention: scaled dot products, multi-head attention (joint, or factorized over a grid of
space-time tokens), and the pre-LN transformer block.

For queries Q (N_q x d), keys K (N_k x d) and values V (N_k x d_v), (eq-attention):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + M) V,

row-wise softmax over keys. The 1/sqrt(d) keeps the logits' variance at 1 when the entries of Q
and K have unit variance, so the softmax does not saturate as d grows. ``mask`` is either
boolean, True where a query *may* attend to a key (PyTorch's convention; False becomes -inf), or
a float array added to the logits. Every query must be allowed at least one key.

Built from differentiable ops (matmul, and a softmax that applies the scale and the mask in the
same fused op), so its backward is the composition of theirs (book eq. ``eq-attention-vjp``)
and is gradient-checked like any op.
"""

from __future__ import annotations

import contextlib
import math

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor, as_tensor, unwrap
from ..errors import ShapeError
from . import init
from .encodings import apply_rope
from .layers import MLP, LayerNorm, Linear
from .module import Module


def attention_weights(q, k, mask=None, scale: float | None = None) -> Tensor:
    """P = softmax(q k^T * scale + mask) over the last axis (eq-attention): (..., N_q, N_k), each
    row the weights one query gives the keys, summing to 1; leading axes broadcast."""
    q, k = as_tensor(q), as_tensor(k)
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"attention: q {q.shape} and k {k.shape} need to share the last axis")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if mask is not None:
        mask = backend.xp_of(q.data).asarray(unwrap(mask))
    return ops.softmax(q @ k.swapaxes(-1, -2), axis=-1, scale=scale, mask=mask)


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two axes; leading axes broadcast."""
    v = as_tensor(v)
    if as_tensor(k).shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"attention: q {as_tensor(q).shape}, k {as_tensor(k).shape}, v {v.shape} need q and "
            "k to share the last axis and k and v the second-to-last"
        )
    return attention_weights(q, k, mask, scale) @ v


@contextlib.contextmanager
def recording_attention(model: Module):
    """Within the ``with`` block, every joint :class:`MultiHeadAttention` of ``model`` appends
    its attention weights P (B, heads, N, N), as a host NumPy array, to the list this yields, in
    the order the forward pass calls them (for a U-ViT: the in-blocks, the middle block, the
    out-blocks). What the model computes is unchanged. Factorized attention records nothing:
    its weights are not one N x N matrix per head."""
    layers = [m for m in model.modules() if type(m) is MultiHeadAttention]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no joint MultiHeadAttention to record (factorized "
            "attention's weights are per group, not one matrix per head)"
        )
    records: list = []
    for layer in layers:
        layer.record = records
    try:
        yield records
    finally:
        for layer in layers:
            layer.record = None


class MultiHeadAttention(Module):
    """Self-attention with ``heads`` heads: one fused Linear makes Q, K and V, each head attends
    in its own d / heads dimensions, and a Linear mixes the heads' outputs,

        head_h = Attention(X W_Q^(h), X W_K^(h), X W_V^(h)),  MHA(X) = [head_1 .. head_H] W_O + b_O.

    ``rope``, if given to ``forward``, is a (cos, sin) pair of arrays (N, d_head / 2) applied to
    queries and keys (rotary position encoding eq-rope, see ``encodings.apply_rope``).
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, dtype=None, device=None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"MultiHeadAttention: dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias, dtype=dtype, device=device)
        self.proj = Linear(dim, dim, dtype=dtype, device=device)
        self.record = None  # a list while recording_attention runs

    def split_heads(self, x: Tensor, rope=None) -> tuple[Tensor, Tensor, Tensor]:
        """Q, K and V of x (*lead, N, dim), each (*lead, heads, N, dim / heads): the heads
        become a batch axis, so one attention call runs them all. Queries and keys are rotated
        by ``rope``."""
        *lead, n, d = x.shape
        if d != self.dim:
            raise ShapeError(f"{type(self).__name__}({self.dim}): input of shape {x.shape}")
        qkv = self.qkv(x).reshape(*lead, n, 3, self.heads, d // self.heads)
        order = (len(lead) + 1, *range(len(lead)), len(lead) + 2, len(lead), len(lead) + 3)
        q, k, v = (t.squeeze(0) for t in ops.split(qkv.transpose(order), 3, axis=0))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v

    def merge_heads(self, out: Tensor) -> Tensor:
        """The heads' outputs (*lead, heads, N, dim / heads) side by side, mixed by W_O:
        (*lead, N, dim)."""
        *lead, _, n, _ = out.shape
        return self.proj(out.swapaxes(-3, -2).reshape(*lead, n, self.dim))

    def forward(self, x: Tensor, mask=None, rope=None) -> Tensor:
        q, k, v = self.split_heads(x, rope)
        weights = attention_weights(q, k, mask)
        if self.record is not None:  # inside recording_attention
            self.record.append(backend.to_numpy(weights.data))
        return self.merge_heads(weights @ v)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}"


class FactorizedAttention(MultiHeadAttention):
    """Multi-head self-attention within groups of a (frames, rows, columns) grid of tokens, with
    the weights of a :class:`MultiHeadAttention` (book chapter 9, eq-attention-cost).

    The input (B, E + N, dim) holds E extra tokens followed by the N = frames rows columns grid
    tokens in (t, i, j) order. A ``"spatial"`` layer groups the grid tokens by frame (groups of
    L = rows columns), a ``"temporal"`` one by position (i, j) (groups of L = frames). A grid
    token attends to the extra tokens and the members of its group; the extra tokens attend to
    every token, as in joint attention. Q, K and V are computed once per token, so the saving
    is the score matrix: E (E + N) + N (E + L) pairs instead of (E + N)^2.

    ``mask`` is a boolean key mask (B, 1, 1, E + N), True on the keys that may be attended to;
    each group sees its part of it. ``rope`` covers all E + N tokens: rotations see only
    differences of positions, so the one table serves every group.
    """

    KINDS = ("spatial", "temporal")

    def __init__(
        self,
        dim: int,
        heads: int,
        grid: tuple[int, int, int],
        kind: str,
        qkv_bias: bool = True,
        dtype=None,
        device=None,
    ):
        super().__init__(dim, heads, qkv_bias, dtype=dtype, device=device)
        if kind not in self.KINDS:
            raise ValueError(f"FactorizedAttention: kind {kind!r} is not one of {self.KINDS}")
        self.grid, self.kind = tuple(grid), kind

    def forward(self, x: Tensor, mask=None, rope=None) -> Tensor:
        if x.ndim != 3 or x.shape[1] < math.prod(self.grid):
            raise ShapeError(
                f"FactorizedAttention: input of shape {x.shape}, expected (B, E + N, {self.dim}) "
                f"with N = {math.prod(self.grid)} grid tokens"
            )
        if mask is not None:  # an array or a tensor, as scaled_dot_product_attention takes it
            mask = backend.xp_of(x.data).asarray(unwrap(mask))
        q, k, v = self.split_heads(x, rope)  # (B, H, E + N, Dh)
        b, heads, n, head_dim = q.shape
        extra = n - math.prod(self.grid)
        extra_out = scaled_dot_product_attention(q[:, :, :extra], k, v, mask)
        grouped = scaled_dot_product_attention(
            self._group(q[:, :, extra:]),
            self._with_extra(k, extra),
            self._with_extra(v, extra),
            self._group_mask(mask, extra),
        )  # (B, H, groups, L, Dh)
        if self.kind == "temporal":
            grouped = grouped.swapaxes(2, 3)
        grid_out = grouped.reshape(b, heads, n - extra, head_dim)
        return self.merge_heads(ops.concatenate([extra_out, grid_out], axis=2))

    def _group(self, t):
        """(B, H, N, D) grid tokens, a tensor or an array -> (B, H, groups, L, D)."""
        frames, rows, columns = self.grid
        grouped = t.reshape(*t.shape[:2], frames, rows * columns, t.shape[-1])
        return grouped if self.kind == "spatial" else grouped.swapaxes(2, 3)

    def _with_extra(self, t: Tensor, extra: int) -> Tensor:
        """Keys or values (B, H, E + N, Dh) -> (B, H, groups, E + L, Dh): every group holds
        the extra tokens' first, then its members'."""
        b, heads, _, head_dim = t.shape
        groups = self.grid[0] if self.kind == "spatial" else self.grid[1] * self.grid[2]
        shared = t[:, :, :extra].unsqueeze(2).broadcast_to(b, heads, groups, extra, head_dim)
        return ops.concatenate([shared, self._group(t[:, :, extra:])], axis=3)

    def _group_mask(self, mask, extra: int):
        """The key mask (B, 1, 1, E + N) regrouped like the keys: (B, 1, groups, 1, E + L)."""
        if mask is None:
            return None
        xp = backend.xp_of(mask)
        keys = mask.reshape(mask.shape[0], 1, -1, 1)  # each key a row, grouped like k above
        if keys.shape[2] != extra + math.prod(self.grid):
            raise ShapeError(
                f"FactorizedAttention: mask of shape {mask.shape}, expected a key mask "
                f"(B, 1, 1, {extra + math.prod(self.grid)})"
            )
        members = self._group(keys[:, :, extra:])  # (B, 1, groups, L, 1)
        shared = xp.broadcast_to(keys[:, :, None, :extra], (*members.shape[:3], extra, 1))
        return xp.concatenate([shared, members], axis=3).swapaxes(3, 4)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, grid={self.grid}, kind={self.kind}"


class TransformerBlock(Module):
    """Pre-LN block (eq-pre-ln): x + Attn(LN(x)), then x + MLP(LN(x)). Normalizing the input of
    each branch leaves the residual path an identity, which keeps deep stacks trainable without
    learning-rate warm-up tricks (post-LN normalizes after the sum instead).

    With ``modulated`` the block takes a condition vector c per example and becomes adaLN-Zero
    (eq-adaln): (gamma, beta, alpha) for each branch come from Linear(SiLU(c)), and
    x + alpha * Attn(LN(x) (1 + gamma) + beta), likewise for the MLP. That Linear starts at zero,
    so every alpha is 0 and the block starts as the identity.

    ``attention(dim, heads, dtype=, device=)`` builds the attention branch: MultiHeadAttention,
    or e.g. a FactorizedAttention with its grid and kind bound by ``functools.partial``."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        zero_init: bool = False,
        modulated: bool = False,
        attention=MultiHeadAttention,
        dtype=None,
        device=None,
    ):
        super().__init__()
        self.modulation = None
        if modulated:
            self.modulation = Linear(dim, 6 * dim, init_weight="zeros", dtype=dtype, device=device)
            init.zeros_(self.modulation.bias)
        self.norm1 = LayerNorm(dim, dtype=dtype, device=device)
        self.attn = attention(dim, heads, dtype=dtype, device=device)
        self.norm2 = LayerNorm(dim, dtype=dtype, device=device)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dim, dtype=dtype, device=device)
        if zero_init:  # each residual branch starts as the zero function: the block is identity
            for layer in (self.attn.proj, self.mlp.fc2):
                init.zeros_(layer.weight)
                init.zeros_(layer.bias)

    def forward(self, x: Tensor, mask=None, rope=None, condition=None) -> Tensor:
        """``mask`` and ``rope`` go to the attention; ``condition`` (B, dim) is the c of a
        modulated block (eq-adaln)."""
        if self.modulation is None:
            if condition is not None:
                raise ValueError("this TransformerBlock is not modulated: it takes no condition")
            x = x + self.attn(self.norm1(x), mask=mask, rope=rope)
            return x + self.mlp(self.norm2(x))
        if condition is None:
            raise ValueError("a modulated TransformerBlock needs condition (B, dim)")
        b, d = condition.shape
        parts = self.modulation(ops.silu(condition)).reshape(b, 6, 1, d)
        shift1, scale1, gate1, shift2, scale2, gate2 = (parts[:, k] for k in range(6))
        h = self.norm1(x) * (scale1 + 1.0) + shift1
        x = x + gate1 * self.attn(h, mask=mask, rope=rope)
        h = self.norm2(x) * (scale2 + 1.0) + shift2
        return x + gate2 * self.mlp(h)
