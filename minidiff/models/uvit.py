"""U-ViT for images and videos: a transformer over space-time patch tokens with long skips.

Reading order of the forward pass (book chapter 9):

1. ``patchify`` cuts a clip (B, F, C, H, W) into tubelets of pt frames x p x p pixels, one token
   each, in (t, i, j) order (time slowest); a Linear embeds each token in ``dim``. With
   ``stem_channels`` S > 0, two 3 x 3 convolutions over each frame first compute S feature
   maps (conv, GELU, conv, GELU), which go into the tokens beside the C pixel channels: the
   same small detectors at every pixel, instead of separate ones for each place in a patch.
2. Positions: fixed sincos over (t, i, j) or learned vectors are added to the patch tokens, or a
   3-D rotary encoding rotates queries and keys inside attention (``pos_encoding``); with
   ``motion_slope`` some rotary pairs follow lines of motion through (t, i) and (t, j).
3. The diffusion time (``TimeEmbedding``: sinusoidal features -> MLP) and the text features
   (Linear) become extra tokens in front of the patches: U-ViT treats every input as a token;
   ``key_mask`` hides the caption's padding from every query.
4. depth // 2 "in" blocks, one middle block, depth // 2 "out" blocks; the output of in-block k
   is concatenated to the input of out-block depth//2 - 1 - k and mixed back to ``dim`` by a
   Linear (long skips, last in first out).
5. A final LayerNorm and Linear turn patch tokens back into pixels (``unpatchify``), optionally
   followed by a 3 x 3 convolution over each frame.

``attention="joint"`` lets every token attend to every other (cost grows with (F H W)^2);
``"factorized"`` alternates spatial blocks (a patch token attends to the tokens of its frame)
and temporal blocks (to the tokens at its (i, j) in every frame); the extra tokens join every
group as keys and values, and attend to all tokens themselves (``nn.FactorizedAttention``).
Positions are a fraction of a pixel's worth of information in a small grid: ``pos_max_period``
sets the longest wavelength of the sincos and rotary encodings (10000 in the Transformer; a few
grid lengths suits a 4 x 4 x 8 grid). An image is a one-frame video, so images and videos train
the same network.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial

import numpy

from .. import backend, config
from ..autograd import ops
from ..autograd.checkpoint import checkpoint
from ..autograd.tensor import Tensor, as_tensor, unwrap
from ..errors import ShapeError
from ..nn import Conv2d, LayerNorm, Linear, Module, ModuleList, Parameter, TransformerBlock, init
from ..nn import functional as F
from ..nn.attention import FactorizedAttention, MultiHeadAttention
from ..nn.encodings import rope_3d, sincos_3d, timestep_embedding

POS_ENCODINGS = ("sincos3d", "learned", "rope3d", "rope3d+sincos3d")
ATTENTIONS = ("joint", "factorized")


# --- patches ------------------------------------------------------------------------------------


def patchify(x: Tensor, patch: int, tubelet: int = 1) -> Tensor:
    """(B, F, C, H, W) -> (B, N, tubelet * patch * patch * C), N = F/pt * H/p * W/p, tokens in
    (t, i, j) order and each token's values in (frame, row, column, channel) order."""
    b, f, c, h, w = x.shape
    if f % tubelet or h % patch or w % patch:
        raise ShapeError(
            f"patchify: clip of shape {x.shape} (B, F, C, H, W) does not divide into "
            f"tubelets of {tubelet} x {patch} x {patch}"
        )
    x = x.reshape(b, f // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.transpose(0, 1, 4, 6, 2, 5, 7, 3)
    return x.reshape(b, (f // tubelet) * (h // patch) * (w // patch), tubelet * patch * patch * c)


def unpatchify(
    tokens: Tensor,
    frames: int,
    channels: int,
    height: int,
    width: int,
    patch: int,
    tubelet: int = 1,
) -> Tensor:
    """The exact inverse of :func:`patchify`: (B, N, pt p p C) -> (B, F, C, H, W)."""
    b = tokens.shape[0]
    grid = (frames // tubelet, height // patch, width // patch)
    x = tokens.reshape(b, *grid, tubelet, patch, patch, channels)
    x = x.transpose(0, 1, 4, 7, 2, 5, 3, 6)
    return x.reshape(b, frames, channels, height, width)


# --- configuration --------------------------------------------------------------------------------


@dataclass
class UViTConfig:
    """Shape of the data and of the network. ``frames=1`` is image mode; ``text_dim=0`` makes
    an unconditional model."""

    frames: int = 1
    channels: int = 3
    height: int = 16
    width: int = 16
    patch: int = 4
    tubelet: int = 1
    dim: int = 128
    depth: int = 7
    heads: int = 4
    mlp_ratio: float = 4.0
    pos_encoding: str = "sincos3d"
    attention: str = "joint"
    time_fraction: float = 0.25
    pos_max_period: float = 10000.0
    motion_slope: float = 0.0
    checkpoint_blocks: bool = False
    text_dim: int = 0
    text_length: int = 0
    conv_out: bool = False
    stem_channels: int = 0
    frame_conditioning: bool = False
    adaln: bool = False
    frame_times: bool = False

    def __post_init__(self):
        """Every setting checked where it enters; all the problems are reported at once."""
        sizes = ("frames", "channels", "height", "width", "patch", "tubelet", "dim", "heads")
        problems = [config.integer(name, getattr(self, name)) for name in sizes]
        if not any(problems):  # the shapes must divide, which needs them positive
            problems += self._division_problems()
        problems += [
            config.integer("text_dim", self.text_dim, 0),
            config.integer("text_length", self.text_length, 0),
            config.integer("stem_channels", self.stem_channels, 0),
            config.number("mlp_ratio", self.mlp_ratio, 0, open_low=True),
            config.number("time_fraction", self.time_fraction, 0, 1, open_high=False),
            config.number("pos_max_period", self.pos_max_period, 0, open_low=True),
            config.number("motion_slope", self.motion_slope, 0),
        ]
        if self.pos_encoding not in POS_ENCODINGS:
            problems.append(f"pos_encoding {self.pos_encoding!r} is not one of {POS_ENCODINGS}")
        if self.motion_slope and not self.pos_encoding.startswith("rope3d"):
            problems.append(
                f"motion_slope {self.motion_slope} tilts rotary pairs: it needs a rope3d "
                f"pos_encoding, got {self.pos_encoding!r}"
            )
        if self.attention not in ATTENTIONS:
            problems.append(f"attention {self.attention!r} is not one of {ATTENTIONS}")
        if config.integer("depth", self.depth) or self.depth % 2 == 0:
            problems.append(
                f"depth must be odd (in blocks, a middle block, out blocks), got {self.depth}"
            )
        if (self.text_dim > 0) != (self.text_length > 0):
            problems.append("text_dim and text_length must both be set (or both 0)")
        config.refuse("UViTConfig", problems)

    def _division_problems(self) -> list:
        """The sizes that do not divide: heads into dim, patches and tubelets into the clip."""
        problems = []
        if self.dim % self.heads:
            problems.append(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.height % self.patch or self.width % self.patch:
            problems.append(
                f"height x width {self.height} x {self.width} is not divisible by "
                f"patch {self.patch}"
            )
        if self.frames % self.tubelet:
            problems.append(f"frames {self.frames} is not divisible by tubelet {self.tubelet}")
        return problems

    @classmethod
    def from_dict(cls, values: dict) -> UViTConfig:
        """A configuration from a dict (e.g. a checkpoint's), refusing unknown keys by name."""
        return config.from_dict(cls, values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Tokens along (t, i, j)."""
        return (self.frames // self.tubelet, self.height // self.patch, self.width // self.patch)

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid)

    @property
    def patch_dim(self) -> int:
        """Pixel values in one token: what the head predicts."""
        return self.tubelet * self.patch * self.patch * self.channels

    @property
    def token_dim(self) -> int:
        """Values a token is embedded from: its pixels and the stem's feature maps there."""
        return self.tubelet * self.patch * self.patch * (self.channels + self.stem_channels)

    @property
    def num_extra_tokens(self) -> int:
        """The time token and the text tokens in front of the patches."""
        return 1 + self.text_length


# --- the network ----------------------------------------------------------------------------------


class TimeEmbedding(ModuleList):
    """The diffusion time as a vector of width ``dim``: its sinusoidal features
    (eq-timestep-embedding) through a two-layer MLP,

        tau(t) = W_2 SiLU(W_1 emb(t) + b_1) + b_2,    W_1: dim -> 4 dim,  W_2: 4 dim -> dim.
    """

    # A ModuleList rather than two named attributes: the Linears stay "0" and "1", the names
    # they have in every saved checkpoint (time_embed.0.weight, ...).
    def __init__(self, dim: int, dtype=None, device=None):
        super().__init__(
            [
                Linear(dim, 4 * dim, dtype=dtype, device=device),
                Linear(4 * dim, dim, dtype=dtype, device=device),
            ]
        )
        self.dim = dim

    def forward(self, t) -> Tensor:
        """t: times of any shape S (an array) -> (*S, dim)."""
        first, second = self
        features = timestep_embedding(t, self.dim, dtype=first.weight.dtype)
        return second(F.silu(first(features.to(first.weight.device))))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class UViT(Module):
    """Predicts eps (or x0, or v) for a noisy clip x_t at time t, given optional text tokens."""

    def __init__(self, config: UViTConfig, dtype=None, device=None):
        super().__init__()
        self.config = c = config
        kw = {"dtype": dtype, "device": device}
        self.patch_embed = Linear(c.token_dim, c.dim, **kw)
        self.time_embed = TimeEmbedding(c.dim, **kw)
        self.text_embed = Linear(c.text_dim, c.dim, **kw) if c.text_dim else None
        self.extra_pos = init.trunc_normal_(
            Parameter(
                backend.module_for(device or backend.default_device()).zeros(
                    (c.num_extra_tokens, c.dim)
                ),
                **kw,
            )
        )
        if c.pos_encoding == "learned":
            self.patch_pos = init.trunc_normal_(
                Parameter(
                    backend.module_for(device or backend.default_device()).zeros(
                        (c.num_patches, c.dim)
                    ),
                    **kw,
                )
            )
        elif c.pos_encoding in ("sincos3d", "rope3d+sincos3d"):
            fraction = c.time_fraction if c.grid[0] > 1 else 0.0
            self.register_buffer(
                "patch_pos",
                Tensor(
                    sincos_3d(*c.grid, c.dim, fraction, c.pos_max_period),
                    dtype=dtype,
                    device=device,
                ),
            )

        def block(index: int) -> TransformerBlock:
            attention = MultiHeadAttention
            if c.attention == "factorized":  # even blocks within a frame, odd ones along time
                kind = "spatial" if index % 2 == 0 else "temporal"
                attention = partial(FactorizedAttention, grid=c.grid, kind=kind)
            return TransformerBlock(
                c.dim, c.heads, c.mlp_ratio, modulated=c.adaln, attention=attention, **kw
            )

        half = c.depth // 2
        self.in_blocks = ModuleList([block(index) for index in range(half)])
        self.mid_block = block(half)
        self.out_blocks = ModuleList([block(half + 1 + index) for index in range(half)])
        self.skips = ModuleList([Linear(2 * c.dim, c.dim, **kw) for _ in range(half)])
        self.norm = LayerNorm(c.dim, **kw)
        self.head = Linear(c.dim, c.patch_dim, **kw)
        self.text_pool = self.final_modulation = None
        if c.adaln:
            self.text_pool = Linear(c.text_dim, c.dim, **kw) if c.text_dim else None
            self.final_modulation = Linear(c.dim, 2 * c.dim, init_weight="zeros", **kw)
            init.zeros_(self.final_modulation.bias)
        self.conv = Conv2d(c.channels, c.channels, 3, **kw) if c.conv_out else None
        self.stem = None
        if c.stem_channels:
            self.stem = ModuleList(
                [
                    Conv2d(c.channels, c.stem_channels, 3, **kw),
                    Conv2d(c.stem_channels, c.stem_channels, 3, **kw),
                ]
            )
        self.known_embed = None
        if c.frame_conditioning:
            self.known_embed = init.trunc_normal_(
                Parameter(backend.module_for(device or backend.default_device()).zeros(c.dim), **kw)
            )
        self._rope_cache: dict = {}

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"grid={c.grid}, dim={c.dim}, depth={c.depth}, heads={c.heads}, "
            f"pos={c.pos_encoding}, attention={c.attention}"
        )

    # --- positions ------------------------------------------------------------------------------
    def _rope(self, dtype, device):
        """(cos, sin) for every token, extra tokens first with angle 0 (no rotation); joint and
        factorized attention use the same table."""
        key = (numpy.dtype(dtype).str, device)
        if key not in self._rope_cache:
            c = self.config
            fraction = c.time_fraction if c.grid[0] > 1 else 0.0
            cos, sin = rope_3d(
                *c.grid,
                c.dim // c.heads,
                fraction,
                c.pos_max_period,
                dtype=dtype,
                device=device,
                motion_slope=c.motion_slope,
            )
            xp = backend.xp_of(cos)
            extra = c.num_extra_tokens
            self._rope_cache[key] = (
                xp.concatenate([xp.ones((extra, cos.shape[1]), dtype=cos.dtype), cos]),
                xp.concatenate([xp.zeros((extra, sin.shape[1]), dtype=sin.dtype), sin]),
            )
        return self._rope_cache[key]

    # --- conditions ----------------------------------------------------------------------------
    def key_mask(self, text_mask, batch: int):
        """(B, 1, 1, E + N) bool, True on the keys that every query may attend to: the time
        token, the caption's real words (``text_mask`` (B, L), True on real tokens) and every
        patch; it broadcasts against the scores (B, heads, queries, keys). None, hiding
        nothing, without a text mask or for an unconditional network."""
        c = self.config
        if not c.text_dim or text_mask is None:
            return None
        xp = backend.xp_of(self.extra_pos.data)
        text_mask = xp.asarray(unwrap(text_mask), dtype=bool)
        time = xp.ones((batch, 1), dtype=bool)
        patches = xp.ones((batch, c.num_patches), dtype=bool)
        return xp.concatenate([time, text_mask, patches], axis=1)[:, None, None, :]

    def _time(self, t, batch: int, like: Tensor) -> Tensor:
        """The embedded noise level: (B, dim) for one level per clip, (B, F, dim) with
        ``frame_times`` (a (B,) t then means the same level in every frame)."""
        c = self.config
        xp = backend.xp_of(like.data)
        data = xp.asarray(unwrap(t))
        shape = tuple(data.shape)
        if c.frame_times:
            if shape not in ((batch,), (batch, c.frames)):
                raise ShapeError(
                    f"t of shape {shape}, expected ({batch},) or ({batch}, {c.frames})"
                )
            if len(shape) == 1:
                data = xp.repeat(data[:, None], c.frames, axis=1)
        elif shape != (batch,):
            raise ShapeError(
                f"t of shape {shape}, expected ({batch},); one level per frame needs a network "
                "built with frame_times=True"
            )
        return self.time_embed(data)

    def _per_token(self, per_frame: Tensor, batch: int) -> Tensor:
        """(B, F, dim) per-frame vectors spread to the patch tokens (B, N, dim) of their frames
        (averaged over a tubelet's frames)."""
        c = self.config
        slabs = per_frame.reshape(batch, c.grid[0], c.tubelet, c.dim).mean(axis=2)
        spread = slabs.unsqueeze(2).broadcast_to(batch, c.grid[0], c.grid[1] * c.grid[2], c.dim)
        return spread.reshape(batch, c.num_patches, c.dim)

    def _known_tokens(self, known, batch: int) -> Tensor:
        """(B, N, 1): the fraction of each token's frames that are known (0 or 1 for tubelet 1)."""
        c = self.config
        if self.known_embed is None:
            raise ValueError(
                "this UViT was built without frame_conditioning=True: it cannot take known frames"
            )
        xp = backend.xp_of(self.known_embed.data)
        known = xp.asarray(unwrap(known))
        if known.shape != (batch, c.frames):
            raise ShapeError(f"known frames of shape {known.shape}, expected ({batch}, {c.frames})")
        dtype = self.known_embed.dtype
        per_token = known.reshape(batch, c.grid[0], c.tubelet).mean(axis=2, dtype=dtype)
        per_token = xp.repeat(per_token, c.grid[1] * c.grid[2], axis=1)
        return Tensor(per_token[:, :, None], dtype=dtype)

    # --- forward --------------------------------------------------------------------------------
    def _stem_features(self, x: Tensor) -> Tensor:
        """(B, F, C, H, W) -> (B, F, S, H, W): conv, GELU, conv, GELU over each frame."""
        b, f, channels, height, width = x.shape
        h = x.transpose(0, 1, 3, 4, 2).reshape(b * f, height, width, channels)
        for conv in self.stem:
            h = F.gelu(conv(h))
        return h.reshape(b, f, height, width, -1).transpose(0, 1, 4, 2, 3)

    def _run_block(self, block: TransformerBlock, tokens: Tensor, key_mask, rope, condition):
        """One block, recomputed in backward instead of stored if ``checkpoint_blocks``;
        ``condition`` is the adaLN vector of a modulated network (or None)."""
        if not self.config.checkpoint_blocks:
            return block(tokens, key_mask, rope, condition)
        if condition is None:
            return checkpoint(lambda x: block(x, key_mask, rope), tokens)
        return checkpoint(lambda x, cond: block(x, key_mask, rope, cond), tokens, condition)

    def forward(self, x, t, text=None, text_mask=None, known=None) -> Tensor:
        """x: (B, F, C, H, W), or (B, C, H, W) in image mode; t: (B,) timesteps (ints, or floats
        for flow matching, already scaled), or (B, F) one per frame with ``frame_times`` (each
        frame's tokens then get its own time embedding, the time token their mean); text:
        (B, L, text_dim) features with a (B, L) bool mask (True on real tokens); known: (B, F)
        bool, the frames given clean (frame conditioning: their tokens get the learned
        ``known_embed``; None means no frame is known). Returns a tensor shaped like x."""
        c = self.config
        x = as_tensor(x)
        image_mode = x.ndim == 4
        if image_mode:
            x = x.unsqueeze(1)
        expected = (c.frames, c.channels, c.height, c.width)
        if x.shape[1:] != expected:
            raise ShapeError(
                f"UViT expects clips (B, F, C, H, W) with (F, C, H, W) = {expected}, got {x.shape}"
            )
        b = x.shape[0]
        if self.stem is not None:
            x = ops.concatenate([x, self._stem_features(x)], axis=2)
        tokens = self.patch_embed(patchify(x, c.patch, c.tubelet))
        if c.pos_encoding != "rope3d":  # absolute positions, alone or beside the rotary ones
            tokens = tokens + self.patch_pos
        if known is not None:
            tokens = tokens + self._known_tokens(known, b) * self.known_embed
        time = self._time(t, b, tokens)
        if time.ndim == 3:  # one noise level per frame: each frame's tokens get their own
            tokens = tokens + self._per_token(time, b)
            time = time.mean(axis=1)
        extra = [time.unsqueeze(1)]
        if c.text_dim:
            if text is None:
                raise ValueError("this UViT is text-conditioned: pass text (B, L, text_dim)")
            if text.shape[1:] != (c.text_length, c.text_dim):
                raise ShapeError(
                    f"text of shape {text.shape}, expected (B, {c.text_length}, {c.text_dim})"
                )
            extra.append(self.text_embed(text))
        key_mask = self.key_mask(text_mask, b)
        condition = None
        if c.adaln:
            condition = time
            if c.text_dim:
                condition = condition + self.text_pool(_masked_mean(text, text_mask))
        extra = ops.concatenate(extra, axis=1) + self.extra_pos
        tokens = ops.concatenate([extra, tokens], axis=1)
        rope = None
        if c.pos_encoding.startswith("rope3d"):
            rope = self._rope(tokens.dtype, tokens.device)

        skips = []
        for block in self.in_blocks:
            tokens = self._run_block(block, tokens, key_mask, rope, condition)
            skips.append(tokens)
        tokens = self._run_block(self.mid_block, tokens, key_mask, rope, condition)
        for block, skip in zip(self.out_blocks, self.skips):
            tokens = skip(ops.concatenate([tokens, skips.pop()], axis=-1))
            tokens = self._run_block(block, tokens, key_mask, rope, condition)

        patches = self.norm(tokens[:, c.num_extra_tokens :])
        if condition is not None:
            shift, scale = (
                part.squeeze(1)
                for part in ops.split(
                    self.final_modulation(F.silu(condition)).reshape(b, 2, 1, c.dim), 2, axis=1
                )
            )
            patches = patches * (scale + 1.0) + shift
        patches = self.head(patches)
        out = unpatchify(patches, c.frames, c.channels, c.height, c.width, c.patch, c.tubelet)
        if self.conv is not None:
            frames = out.transpose(0, 1, 3, 4, 2).reshape(
                b * c.frames, c.height, c.width, c.channels
            )
            out = self.conv(frames).reshape(b, c.frames, c.height, c.width, c.channels)
            out = out.transpose(0, 1, 4, 2, 3)
        return out.squeeze(1) if image_mode else out


def _masked_mean(features: Tensor, mask) -> Tensor:
    """(B, L, D) features averaged over the positions where ``mask`` (B, L) is True (all of
    them when it is None): one vector per caption."""
    if mask is None:
        return features.mean(axis=1)
    xp = backend.xp_of(features.data)
    mask = xp.asarray(unwrap(mask), dtype=bool)
    weights = mask.astype(features.dtype)
    weights = weights / xp.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    return (features * Tensor(weights[:, :, None], dtype=features.dtype)).sum(axis=1)


# --- cost -----------------------------------------------------------------------------------------


def forward_flops(config: UViTConfig, batch: int = 1) -> dict:
    """Multiply-adds x 2 of one forward pass, by part (matmuls only; elementwise work is small).

    Joint attention scores and mixing cost 2 * 2 N^2 d per block for N tokens; factorized
    attention replaces the N^2 pairs by those of eq-attention-cost.
    """
    c = config
    e = c.num_extra_tokens
    n = e + c.num_patches
    frames, rows, columns = c.grid
    d = c.dim
    if c.attention == "joint":
        pairs = [n * n] * c.depth
    else:
        # extra tokens see every token; a patch sees the extra tokens and its group
        spatial = e * n + frames * rows * columns * (e + rows * columns)
        temporal = e * n + rows * columns * frames * (e + frames)
        pairs = [spatial if i % 2 == 0 else temporal for i in range(c.depth)]
    tokens_per_block = [n] * c.depth
    hidden = int(d * c.mlp_ratio)
    parts = {
        "patch_embed": 2 * c.num_patches * c.token_dim * d,
        "qkv_and_proj": sum(2 * m * d * 4 * d for m in tokens_per_block),
        "attention": sum(2 * 2 * p * d for p in pairs),
        "mlp": sum(2 * m * d * hidden * 2 for m in tokens_per_block),
        "skips": (c.depth // 2) * 2 * n * 2 * d * d,
        "head": 2 * c.num_patches * d * c.patch_dim,
    }
    parts = {k: v * batch for k, v in parts.items()}
    parts["total"] = sum(parts.values())
    return parts
