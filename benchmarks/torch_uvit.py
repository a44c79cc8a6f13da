"""The demo's text-to-video model and training step in plain eager PyTorch, for ``make bench``.

A re-implementation of ``minidiff.models.UViT`` (3-D rotary positions, factorized or joint
attention, a time token and text tokens in front of the patches, long skips),
``minidiff.models.TextEncoder`` (with its learned null condition for dropped captions) and
``minidiff.app.train.Trainer.train_step`` (v, eps or x0 target with min-SNR weights on the cosine
schedule, AdamW under warmup + cosine decay, gradient-norm clipping, an EMA of every parameter).
Same layers, same shapes, same parameter count and the same order of operations; the numbers
differ because the weights and the random draws come from PyTorch's generator.

Attention is written as matmul, mask, softmax, matmul, as minidiff computes it: no
``F.scaled_dot_product_attention`` and no ``torch.compile``, so both sides run the same
algorithm and the comparison measures the frameworks rather than a fused kernel.

Only this module and the PyTorch path of ``benchmarks.workloads`` import torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# --- positions and times ------------------------------------------------------------------------


def split_width(dim: int, time_fraction: float) -> tuple[int, int, int]:
    """Widths for (t, i, j): about ``time_fraction`` of ``dim`` for time (even, at least 2 when
    the fraction is positive), the rest shared by rows and columns in whole sine-cosine pairs,
    rows taking the smaller half (the rule of ``minidiff.nn.encodings.split_width``)."""
    time = 2 * max(1, round(dim * time_fraction / 2)) if time_fraction > 0 else 0
    rows = (dim - time) // 4 * 2
    return time, rows, dim - time - rows


def rope_tables(grid, head_dim: int, time_fraction: float, max_period: float, extra: int):
    """(cos, sin), each (extra + F*H*W, head_dim / 2) float32. The ``extra`` tokens in front get
    angle 0 (no rotation); patch token (t, i, j) gets pos_axis * max_period^(-2k / share) on each
    axis' share of the pairs. Tokens in (t, i, j) order, time slowest."""
    t, i, j = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    positions = torch.stack([t.reshape(-1), i.reshape(-1), j.reshape(-1)], 1).double()
    parts = [torch.zeros(extra, head_dim // 2, dtype=torch.float64)]
    columns = []
    for axis, share in enumerate(split_width(head_dim, time_fraction)):
        if share:
            k = torch.arange(share // 2, dtype=torch.float64)
            columns.append(positions[:, axis : axis + 1] * max_period ** (-2.0 * k / share))
    parts.append(torch.cat(columns, 1))
    angles = torch.cat(parts, 0)
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs (a, b) of the last axis to (a cos - b sin, a sin + b cos)."""
    *lead, n, d = x.shape
    pairs = x.reshape(*lead, n, d // 2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).reshape(*lead, n, d)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos(t w_k), sin(t w_k)], w_k = max_period^(-k / (dim/2)), cosines first: (B, dim)."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=t.device)
    frequencies = torch.exp(-math.log(max_period) * steps / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], -1)


# --- layers -------------------------------------------------------------------------------------


def attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d), keys where ``mask`` is False hidden) v, from plain ops."""
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf"))
    return torch.softmax(scores, -1) @ v


class MultiHeadAttention(nn.Module):
    """One Linear for Q, K and V, ``heads`` heads, a Linear mixing them."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, x):
        """(B, N, d) -> q, k, v, each (B, heads, N, d / heads)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return qkv.unbind(0)

    def forward(self, x, mask=None, rope=None):
        b, n, d = x.shape
        q, k, v = self.split_heads(x)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = attention(q, k, v, mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    """Linear, GELU (tanh approximation), Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class TransformerBlock(nn.Module):
    """Pre-LN: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x, mask=None, rope=None):
        x = x + self.attn(self.norm1(x), mask, rope)
        return x + self.mlp(self.norm2(x))


# --- the text encoder ---------------------------------------------------------------------------


class TextEncoder(nn.Module):
    """Token embedding + learned positions, ``depth`` pre-LN blocks with a key-padding mask, a
    final LayerNorm, features zeroed at padding; dropped rows become the null condition (the
    learned ``null_tokens`` at position 0, zeros after, mask True at position 0 only)."""

    def __init__(self, vocab_size, dim, depth=2, heads=4, max_length=16, mlp_ratio=4.0):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        nn.init.trunc_normal_(self.token_embedding.weight, std=0.02, a=-0.04, b=0.04)
        self.positions = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros(max_length, dim), std=0.02, a=-0.04, b=0.04)
        )
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.null_tokens = nn.Parameter(torch.randn(1, dim))

    def forward(self, ids, mask, drop=None):
        # A row with no real token (only possible in a dropped row) sees every position, which
        # keeps its softmax finite.
        visible = mask | ~mask.any(1, keepdim=True)
        key_mask = visible[:, None, None, :]
        length = ids.shape[1]
        x = self.token_embedding(ids) + self.positions[:length]
        for block in self.blocks:
            x = block(x, key_mask)
        tokens = torch.where(mask[:, :, None], self.norm(x), 0.0)
        if drop is not None:
            null_tokens = F.pad(self.null_tokens, (0, 0, 0, length - 1))[None]
            null_mask = torch.zeros(1, length, dtype=torch.bool, device=ids.device)
            null_mask[:, 0] = True
            tokens = torch.where(drop[:, None, None], null_tokens, tokens)
            mask = torch.where(drop[:, None], null_mask, mask)
        return tokens, mask


# --- the U-ViT ----------------------------------------------------------------------------------


def patchify(x, patch: int, tubelet: int):
    """(B, F, C, H, W) -> (B, N, tubelet * patch * patch * C), tokens in (t, i, j) order."""
    b, f, c, h, w = x.shape
    x = x.reshape(b, f // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)
    return x.reshape(b, (f // tubelet) * (h // patch) * (w // patch), tubelet * patch * patch * c)


def unpatchify(tokens, frames, channels, height, width, patch: int, tubelet: int):
    """The inverse of :func:`patchify`."""
    b = tokens.shape[0]
    x = tokens.reshape(
        b, frames // tubelet, height // patch, width // patch, tubelet, patch, patch, channels
    )
    return x.permute(0, 1, 4, 7, 2, 5, 3, 6).reshape(b, frames, channels, height, width)


class UViT(nn.Module):
    """``config`` holds the fields of ``minidiff.models.UViTConfig`` (as a dict). Supports the
    rotary position encoding with joint or factorized attention, text conditioning, no output
    convolution: what the presets benchmarked here use."""

    def __init__(self, config: dict):
        super().__init__()
        c = self.c = dict(config)
        if c["pos_encoding"] != "rope3d" or c.get("conv_out") or not c["text_dim"]:
            raise NotImplementedError(
                "the PyTorch U-ViT covers rope3d positions, text conditioning and no output "
                f"convolution; got {config}"
            )
        dim, half = c["dim"], c["depth"] // 2
        self.grid = (
            c["frames"] // c["tubelet"],
            c["height"] // c["patch"],
            c["width"] // c["patch"],
        )
        self.patches = math.prod(self.grid)
        self.extra = 1 + c["text_length"]
        patch_dim = c["tubelet"] * c["patch"] ** 2 * c["channels"]
        self.patch_embed = nn.Linear(patch_dim, dim)
        self.time_embed = nn.ModuleList([nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)])
        self.text_embed = nn.Linear(c["text_dim"], dim)
        self.extra_pos = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros(self.extra, dim), std=0.02, a=-0.04, b=0.04)
        )
        block = lambda: TransformerBlock(dim, c["heads"], c["mlp_ratio"])  # noqa: E731
        self.in_blocks = nn.ModuleList(block() for _ in range(half))
        self.mid_block = block()
        self.out_blocks = nn.ModuleList(block() for _ in range(half))
        self.skips = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(half))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch_dim)
        fraction = c["time_fraction"] if self.grid[0] > 1 else 0.0
        cos, sin = rope_tables(
            self.grid, dim // c["heads"], fraction, c["pos_max_period"], self.extra
        )
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def grouped_attention(self, attn: MultiHeadAttention, x, key_mask, rope, index: int):
        """Factorized attention: even blocks group the patch tokens by frame, odd ones by (i, j);
        a patch token attends to the extra tokens and its group, an extra token to every token.
        Q, K, V once per token (as ``nn.FactorizedAttention`` in minidiff)."""
        b, n, d = x.shape
        e, heads = self.extra, attn.heads
        frames, rows, columns = self.grid
        q, k, v = attn.split_heads(x)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        extra_out = attention(q[:, :, :e], k, v, key_mask)
        spatial = index % 2 == 0
        groups = frames if spatial else rows * columns
        length = (n - e) // groups

        def grouped(t):  # (B, H, N, Dh) -> (B, H, groups, length, Dh)
            g = t[:, :, e:].reshape(b, heads, frames, rows * columns, d // heads)
            return g if spatial else g.transpose(2, 3)

        def with_extra(t):  # the extra tokens' keys or values join every group
            shared = t[:, :, :e].unsqueeze(2).expand(b, heads, groups, e, d // heads)
            return torch.cat([shared, grouped(t)], 3)

        patches = torch.ones(b, 1, 1, length, dtype=torch.bool, device=x.device)
        mask = torch.cat([key_mask[..., :e], patches], -1)[:, :, None]
        out = attention(grouped(q), with_extra(k), with_extra(v), mask)
        if not spatial:
            out = out.transpose(2, 3)
        out = torch.cat([extra_out, out.reshape(b, heads, n - e, d // heads)], 2)
        return attn.proj(out.transpose(1, 2).reshape(b, n, d))

    def run_block(self, block: TransformerBlock, tokens, key_mask, index: int):
        rope = (self.rope_cos, self.rope_sin)
        if self.c["attention"] == "joint":
            return block(tokens, key_mask, rope)
        x = tokens + self.grouped_attention(block.attn, block.norm1(tokens), key_mask, rope, index)
        return x + block.mlp(block.norm2(x))

    def forward(self, x, t, text, text_mask):
        c = self.c
        b = x.shape[0]
        tokens = self.patch_embed(patchify(x, c["patch"], c["tubelet"]))
        time = timestep_embedding(t, c["dim"])
        time = self.time_embed[1](F.silu(self.time_embed[0](time)))
        extra = torch.cat([time[:, None], self.text_embed(text)], 1) + self.extra_pos
        tokens = torch.cat([extra, tokens], 1)
        always = torch.ones(b, 1, dtype=torch.bool, device=x.device)
        patches = torch.ones(b, self.patches, dtype=torch.bool, device=x.device)
        key_mask = torch.cat([always, text_mask, patches], 1)[:, None, None, :]

        skips = []
        for index, block in enumerate(self.in_blocks):
            tokens = self.run_block(block, tokens, key_mask, index)
            skips.append(tokens)
        tokens = self.run_block(self.mid_block, tokens, key_mask, len(self.in_blocks))
        for index, (block, skip) in enumerate(zip(self.out_blocks, self.skips)):
            tokens = skip(torch.cat([tokens, skips.pop()], -1))
            tokens = self.run_block(block, tokens, key_mask, len(self.in_blocks) + 1 + index)
        out = self.head(self.norm(tokens[:, self.extra :]))
        return unpatchify(
            out, c["frames"], c["channels"], c["height"], c["width"], c["patch"], c["tubelet"]
        )


# --- the training step --------------------------------------------------------------------------


def cosine_schedule(steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> dict:
    """Nichol & Dhariwal's cosine schedule in float64, betas clipped at ``max_beta``; returns
    float32 tables (T,) of sqrt(alpha_bar), sqrt(1 - alpha_bar) and the SNR."""
    u = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = torch.clamp(1.0 - alpha_bar[1:] / alpha_bar[:-1], max=max_beta)
    alpha_bars = torch.cumprod(1.0 - betas, 0)
    return {
        "sqrt_alpha_bars": alpha_bars.sqrt().float(),
        "sqrt_one_minus_alpha_bars": (1.0 - alpha_bars).sqrt().float(),
        "snr": (alpha_bars / (1.0 - alpha_bars)).float(),
    }


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear from 1/warmup to 1 over ``warmup_steps``, then cosine down to 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class TrainStep:
    """One call = one optimization step of ``Trainer.train_step``: draw a batch, its caption
    drops, timesteps and noise; encode the captions; noise the clips; predict the target; take
    the min-SNR weighted MSE; backward; clip the gradient norm; AdamW; advance the learning
    rate; update the EMA of the U-ViT's and the encoder's parameters.

    ``clips`` (N, F, C, H, W) float32 in [-1, 1]; ``ids`` (N, L) int64; ``mask`` (N, L) bool;
    ``train`` holds the preset's training fields (batch_size, lr, ...)."""

    def __init__(self, model: UViT, encoder: TextEncoder, clips, ids, mask, train: dict):
        self.model, self.encoder = model, encoder
        self.clips, self.ids, self.mask = clips, ids, mask
        self.batch_size = train["batch_size"]
        self.cond_drop = train["cond_drop"]
        self.target = train["target"]
        self.gamma = train["min_snr_gamma"]
        self.grad_clip = train["grad_clip"]
        self.ema_decay = train["ema_decay"]
        self.device = clips.device
        self.schedule = {k: v.to(self.device) for k, v in cosine_schedule(1000).items()}
        self.parameters = list(model.parameters()) + list(encoder.parameters())
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=train["lr"], weight_decay=train["weight_decay"]
        )
        warmup, total = train["warmup_steps"], train["steps"]
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, warmup, total)
        )
        self.shadow = [p.detach().clone() for p in self.parameters]
        self.generator = torch.Generator().manual_seed(train.get("seed", 0))

    def _at(self, name: str, t):
        return self.schedule[name][t].reshape(-1, 1, 1, 1, 1)

    def loss(self) -> torch.Tensor:
        g, b = self.generator, self.batch_size
        index = torch.randint(0, self.clips.shape[0], (b,), generator=g)
        x0, ids, mask = self.clips[index], self.ids[index], self.mask[index]
        drop = (torch.rand(b, generator=g) < self.cond_drop).to(self.device)
        tokens, token_mask = self.encoder(ids, mask, drop)
        t = torch.randint(0, 1000, (b,), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        a, s = self._at("sqrt_alpha_bars", t), self._at("sqrt_one_minus_alpha_bars", t)
        x_t = a * x0 + s * noise
        target = {"eps": noise, "x0": x0, "v": a * noise - s * x0}[self.target]
        error = self.model(x_t, t, tokens, token_mask) - target
        squared = error * error
        if self.gamma is not None:
            snr = self._at("snr", t)
            capped = torch.clamp(snr, max=self.gamma)
            weight = {"eps": capped / snr, "x0": capped, "v": capped / (snr + 1.0)}[self.target]
            squared = squared * weight
        return squared.mean()

    def __call__(self) -> torch.Tensor:
        loss = self.loss()
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.optimizer.step()
        self.lr_schedule.step()
        with torch.no_grad():
            for shadow, p in zip(self.shadow, self.parameters):
                shadow.mul_(self.ema_decay).add_(p, alpha=1.0 - self.ema_decay)
        return loss.detach()
