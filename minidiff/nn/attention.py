"""Attention: scaled dot products, multi-head attention, and the pre-LN transformer block.

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

import math

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor
from ..errors import ShapeError
from . import init
from .encodings import apply_rope
from .layers import MLP, LayerNorm, Linear
from .module import Module


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two axes; leading axes broadcast."""
    q, k, v = (x if isinstance(x, Tensor) else Tensor(x) for x in (q, k, v))
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"attention: q {q.shape}, k {k.shape}, v {v.shape} need q and k to share "
            "the last axis and k and v the second-to-last"
        )
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if mask is not None:
        mask = backend.xp_of(q.data).asarray(mask.data if isinstance(mask, Tensor) else mask)
    return ops.softmax(q @ k.swapaxes(-1, -2), axis=-1, scale=scale, mask=mask) @ v


class MultiHeadAttention(Module):
    """Self-attention with ``heads`` heads: one fused Linear makes Q, K and V, each head attends
    in its own d / heads dimensions, and a Linear mixes the heads' outputs.

    ``rope``, if given to ``forward``, is a (cos, sin) pair of arrays (N, d_head / 2) applied to
    queries and keys (rotary position encoding, see ``encodings.apply_rope``).
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, dtype=None, device=None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"MultiHeadAttention: dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias, dtype=dtype, device=device)
        self.proj = Linear(dim, dim, dtype=dtype, device=device)

    def forward(self, x: Tensor, mask=None, rope=None) -> Tensor:
        *lead, n, d = x.shape
        if d != self.dim:
            raise ShapeError(f"MultiHeadAttention({self.dim}): input of shape {x.shape}")
        head_dim = d // self.heads
        qkv = self.qkv(x).reshape(*lead, n, 3, self.heads, head_dim)
        order = (len(lead) + 1, *range(len(lead)), len(lead) + 2, len(lead), len(lead) + 3)
        q, k, v = ops.split(qkv.transpose(order), 3, axis=0)  # each (1, *lead, H, N, Dh)
        q, k, v = (t.squeeze(0) for t in (q, k, v))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = scaled_dot_product_attention(q, k, v, mask)  # (*lead, H, N, Dh)
        out = out.swapaxes(-3, -2).reshape(*lead, n, d)
        return self.proj(out)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}"


class TransformerBlock(Module):
    """Pre-LN block (eq-pre-ln): x + Attn(LN(x)), then x + MLP(LN(x)). Normalizing the input of
    each branch leaves the residual path an identity, which keeps deep stacks trainable without
    learning-rate warm-up tricks (post-LN normalizes after the sum instead).

    With ``modulated`` the block takes a condition vector c per example and becomes adaLN-Zero
    (eq-adaln): (gamma, beta, alpha) for each branch come from Linear(SiLU(c)), and
    x + alpha * Attn(LN(x) (1 + gamma) + beta), likewise for the MLP. That Linear starts at zero,
    so every alpha is 0 and the block starts as the identity."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        zero_init: bool = False,
        modulated: bool = False,
        dtype=None,
        device=None,
    ):
        super().__init__()
        self.modulation = None
        if modulated:
            self.modulation = Linear(dim, 6 * dim, init_weight="zeros", dtype=dtype, device=device)
            init.zeros_(self.modulation.bias)
        self.norm1 = LayerNorm(dim, dtype=dtype, device=device)
        self.attn = MultiHeadAttention(dim, heads, dtype=dtype, device=device)
        self.norm2 = LayerNorm(dim, dtype=dtype, device=device)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dim, dtype=dtype, device=device)
        if zero_init:  # each residual branch starts as the zero function: the block is identity
            for layer in (self.attn.proj, self.mlp.fc2):
                init.zeros_(layer.weight)
                init.zeros_(layer.bias)

    def forward(self, x: Tensor, mask=None, rope=None, attention=None, condition=None) -> Tensor:
        """``attention(h, mask, rope)``, if given, replaces ``self.attn`` on the normalized input
        (e.g. a factorized pattern that uses the same weights). ``condition`` (B, dim) is the c
        of a modulated block (eq-adaln)."""
        attend = attention or self.attn
        if self.modulation is None:
            if condition is not None:
                raise ValueError("this TransformerBlock is not modulated: it takes no condition")
            x = x + attend(self.norm1(x), mask=mask, rope=rope)
            return x + self.mlp(self.norm2(x))
        if condition is None:
            raise ValueError("a modulated TransformerBlock needs condition (B, dim)")
        b, d = condition.shape
        parts = self.modulation(ops.silu(condition)).reshape(b, 6, 1, d)
        shift1, scale1, gate1, shift2, scale2, gate2 = (parts[:, k] for k in range(6))
        h = self.norm1(x) * (scale1 + 1.0) + shift1
        x = x + gate1 * attend(h, mask=mask, rope=rope)
        h = self.norm2(x) * (scale2 + 1.0) + shift2
        return x + gate2 * self.mlp(h)
