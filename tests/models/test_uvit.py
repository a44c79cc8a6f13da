"""U-ViT: patches, token order, every configuration's shapes, gradients, cost, and learning."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff import optim
from minidiff.models import UViT, UViTConfig, forward_flops, patchify, unpatchify
from minidiff.nn.encodings import grid_positions


@given(
    b=st.integers(1, 2),
    tubelet=st.integers(1, 2),
    patch=st.integers(1, 3),
    grid=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    channels=st.integers(1, 3),
)
def test_patchify_and_unpatchify_are_exact_inverses(b, tubelet, patch, grid, channels):
    frames, height, width = grid[0] * tubelet, grid[1] * patch, grid[2] * patch
    x = md.tensor(np.random.default_rng(0).standard_normal((b, frames, channels, height, width)))
    tokens = patchify(x, patch, tubelet)
    assert tokens.shape == (b, grid[0] * grid[1] * grid[2], tubelet * patch * patch * channels)
    back = unpatchify(tokens, frames, channels, height, width, patch, tubelet)
    np.testing.assert_array_equal(back.numpy(), x.numpy())


def test_token_order_is_t_i_j_like_the_encodings():
    """Token n holds the pixels of tubelet grid_positions(...)[n]: time slowest, column fastest."""
    frames, height, width, patch, tubelet = 4, 6, 4, 2, 2
    t, i, j = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    clip = np.stack([t // tubelet, i // patch, j // patch], axis=1)[None].astype(np.float32)
    tokens = patchify(md.tensor(clip), patch, tubelet).numpy()[0]  # (N, pt*p*p*3)
    per_channel = tokens.reshape(tokens.shape[0], -1, 3)
    assert (per_channel == per_channel[:, :1]).all()  # one position per token
    np.testing.assert_array_equal(
        per_channel[:, 0], grid_positions(frames // tubelet, height // patch, width // patch)
    )


def _tiny(**overrides):
    values = dict(
        frames=4,
        channels=2,
        height=4,
        width=4,
        patch=2,
        tubelet=1,
        dim=16,
        depth=3,
        heads=2,
        text_dim=6,
        text_length=3,
    )
    values.update(overrides)
    return UViTConfig(**values)


@pytest.mark.parametrize("pos", ["sincos3d", "learned", "rope3d"])
@pytest.mark.parametrize("attention", ["joint", "factorized"])
def test_every_configuration_runs_and_keeps_float32(pos, attention):
    md.manual_seed(0)
    config = _tiny(pos_encoding=pos, attention=attention, conv_out=pos == "learned")
    model = UViT(config)
    x = md.randn(2, 4, 2, 4, 4)
    text, mask = md.randn(2, 3, 6), np.array([[True, True, False], [True, False, False]])
    out = model(x, np.array([3, 500]), text, mask)
    assert out.shape == x.shape and out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in model.parameters())


def test_image_mode_is_a_one_frame_video():
    md.manual_seed(1)
    model = UViT(_tiny(frames=1, text_dim=0, text_length=0))
    image = md.randn(3, 2, 4, 4)
    out = model(image, np.array([1, 2, 3]))
    assert out.shape == image.shape
    np.testing.assert_allclose(
        model(image.unsqueeze(1), np.array([1, 2, 3])).numpy()[:, 0], out.numpy(), rtol=1e-6
    )


def test_padded_text_tokens_are_ignored():
    md.manual_seed(2)
    model = UViT(_tiny())
    x, text = md.randn(1, 4, 2, 4, 4), md.randn(1, 3, 6).numpy()
    mask = np.array([[True, False, False]])
    other = text.copy()
    other[:, 1:] = 100.0  # change only the padding
    a = model(x, np.array([5]), md.tensor(text), mask).numpy()
    b = model(x, np.array([5]), md.tensor(other), mask).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "attention, stem_channels", [("joint", 0), ("factorized", 0), ("joint", 3)]
)
def test_whole_model_gradient_in_float64(attention, stem_channels):
    md.manual_seed(3)
    config = _tiny(
        frames=2,
        height=2,
        width=2,
        patch=1,
        dim=12,
        depth=3,
        text_dim=0,
        text_length=0,
        attention=attention,
        pos_encoding="rope3d",
        stem_channels=stem_channels,
    )
    model = UViT(config, dtype=np.float64)
    x = md.randn(1, 2, 2, 2, 2, dtype=np.float64)
    assert md.gradcheck(lambda clip: model(clip, np.array([7])), x, directions=3)


def test_the_stem_adds_feature_maps_beside_the_pixels_and_is_the_same_at_every_place():
    md.manual_seed(4)
    plain, stemmed = UViT(_tiny()), UViT(_tiny(stem_channels=5))
    assert stemmed.config.token_dim == plain.config.patch_dim * (2 + 5) // 2
    x = md.randn(2, 4, 2, 4, 4)
    out = stemmed(x, np.array([3, 500]), md.randn(2, 3, 6), np.ones((2, 3), dtype=bool))
    assert out.shape == x.shape and out.dtype == np.float32
    # convolutions commute with a shift: a clip moved one pixel right gives feature maps moved
    # one pixel right wherever the two 3 x 3 layers (2 pixels each way) see no border
    wide = UViT(_tiny(height=4, width=10, stem_channels=5))
    x = md.randn(1, 4, 2, 4, 10).numpy()
    shifted = np.zeros_like(x)
    shifted[..., 1:] = x[..., :-1]
    a = wide._stem_features(md.tensor(x)).numpy()
    b = wide._stem_features(md.tensor(shifted)).numpy()
    np.testing.assert_allclose(b[..., 3:-2], a[..., 2:-3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(b[..., 3:-2], a[..., 3:-2])


def test_motion_slope_tilts_rotary_pairs_and_needs_rotary_positions():
    md.manual_seed(5)
    tilted = UViT(_tiny(pos_encoding="rope3d", motion_slope=0.25, dim=32))
    plain = UViT(_tiny(pos_encoding="rope3d", dim=32))
    cos, _ = tilted._rope(np.float32, "cpu")
    assert cos.shape == plain._rope(np.float32, "cpu")[0].shape
    assert not np.allclose(cos, plain._rope(np.float32, "cpu")[0])
    x = md.randn(2, 4, 2, 4, 4)
    out = tilted(x, np.array([3, 500]), md.randn(2, 3, 6), np.ones((2, 3), dtype=bool))
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="motion_slope 0.25 tilts rotary pairs"):
        _tiny(pos_encoding="sincos3d", motion_slope=0.25)


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="pos_encoding 'fourier'"):
        _tiny(pos_encoding="fourier")
    with pytest.raises(ValueError, match="depth must be odd"):
        _tiny(depth=4)
    with pytest.raises(ValueError, match="not divisible by patch"):
        _tiny(height=5)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['layers'\]"):
        UViTConfig.from_dict({"layers": 3})
    assert UViTConfig.from_dict(_tiny().to_dict()) == _tiny()
    model = UViT(_tiny())
    with pytest.raises(md.ShapeError, match=r"\(F, C, H, W\) = \(4, 2, 4, 4\)"):
        model(md.randn(1, 3, 2, 4, 4), np.array([0]), md.randn(1, 3, 6))


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("heads", 0, "a positive integer"),
        ("patch", 0, "a positive integer"),
        ("tubelet", -1, "a positive integer"),
        ("dim", 2.5, "a positive integer"),
        ("pos_max_period", 0.0, r"in \(0, inf\)"),
        ("pos_max_period", float("nan"), r"in \(0, inf\)"),
        ("mlp_ratio", -4.0, r"in \(0, inf\)"),
        ("time_fraction", 1.5, r"in \[0, 1\]"),
        ("text_length", -3, "an integer >= 0"),
    ],
)
def test_config_refuses_sizes_that_would_divide_by_zero_or_give_nan(name, value, allowed):
    with pytest.raises(ValueError, match=rf"UViTConfig: .*{name} must be {allowed}.*got {value!r}"):
        _tiny(**{name: value})


def test_config_reports_every_problem_at_once():
    with pytest.raises(ValueError, match=r"heads must be .*; pos_max_period must be .*; depth"):
        _tiny(heads=0, pos_max_period=0.0, depth=4)


def test_factorized_attention_costs_grow_slower_than_joint():
    """Joint attention's pair count grows with frames^2, factorized with frames."""

    def attention_flops(frames, kind):
        return forward_flops(_tiny(frames=frames, height=16, width=16, attention=kind))["attention"]

    joint = attention_flops(16, "joint") / attention_flops(4, "joint")
    factorized = attention_flops(16, "factorized") / attention_flops(4, "factorized")
    assert joint > 14 and factorized < 5
    flops = forward_flops(_tiny())
    assert flops["total"] == sum(v for k, v in flops.items() if k != "total")


def test_tiny_video_uvit_overfits_two_clips():
    """The denoiser can fit data: the eps-loss on two fixed clips falls well below its start."""
    md.manual_seed(4)
    config = _tiny(frames=2, height=4, width=4, dim=32, depth=3, text_dim=0, text_length=0)
    model = UViT(config)
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = md.diffusion.schedules.cosine(100)
    clips = md.randn(2, 2, 2, 4, 4).data
    t = np.array([30, 60])
    noise = md.randn(2, 2, 2, 4, 4).data
    losses = []
    for _ in range(150):
        loss = md.diffusion.losses.diffusion_loss(model, schedule, clips, t=t, noise=noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_factorized_attention_keeps_frames_apart_in_a_spatial_block():
    """eq-attention-cost: with one (spatial) block, frame k of the output depends on frame
    k of the input only; a joint block mixes every frame."""
    for attention, apart in (("factorized", True), ("joint", False)):
        md.manual_seed(5)
        model = UViT(_tiny(depth=1, attention=attention, pos_encoding="rope3d"), dtype=np.float64)
        x = md.randn(1, 4, 2, 4, 4, dtype=np.float64)
        text = md.randn(1, 3, 6, dtype=np.float64)
        out = model(x, np.array([5]), text).numpy()
        moved = x.numpy().copy()
        moved[:, 0] += 1.0
        changed = model(md.tensor(moved, dtype=np.float64), np.array([5]), text).numpy()
        assert np.abs(changed[:, 0] - out[:, 0]).max() > 1e-3
        others = np.abs(changed[:, 1:] - out[:, 1:]).max()
        assert (others == 0.0) if apart else (others > 1e-6)


def test_factorized_attention_with_a_temporal_block_links_one_position_across_frames():
    """A temporal block (odd index) carries a change at patch (t=0, i=0, j=0) to position (0, 0)
    of every frame, and to no other position."""
    md.manual_seed(6)
    config = _tiny(depth=3, attention="factorized", text_dim=0, text_length=0)
    model = UViT(config, dtype=np.float64)
    tokens = md.randn(1, 1 + config.num_patches, config.dim, dtype=np.float64)
    block = model.mid_block  # index 1: temporal
    assert block.attn.kind == "temporal"
    out = block(tokens).numpy()
    moved = tokens.numpy().copy()
    moved[0, 1] += 1.0  # patch (t=0, i=0, j=0)
    changed = block(md.tensor(moved, dtype=np.float64)).numpy()
    diff = np.abs(changed - out).max(axis=-1)[0, 1:].reshape(config.grid)
    assert np.all(diff[:, 0, 0] > 0)  # the same position in every frame
    diff[:, 0, 0] = 0
    assert np.all(diff == 0)  # nothing else


def test_known_frames_change_only_through_their_embedding():
    """Frame conditioning: the learned known_embed is added to the tokens of the known frames
    and nowhere else, so a known mask with no frame known gives the unconditioned output."""
    md.manual_seed(4)
    model = UViT(_tiny(frame_conditioning=True, pos_encoding="rope3d"))
    x, text = md.randn(2, 4, 2, 4, 4), md.randn(2, 3, 6)
    t, mask = np.array([3, 700]), np.ones((2, 3), dtype=bool)
    plain = model(x, t, text, mask).numpy()
    none = model(x, t, text, mask, known=np.zeros((2, 4), dtype=bool)).numpy()
    np.testing.assert_array_equal(plain, none)
    known = np.array([[True, False, False, False], [True, True, True, False]])
    assert not np.allclose(model(x, t, text, mask, known=known).numpy(), plain)
    tokens = model._known_tokens(known, 2).numpy()[:, :, 0]
    per_frame = model.config.grid[1] * model.config.grid[2]
    np.testing.assert_array_equal(tokens, np.repeat(known, per_frame, axis=1).astype(np.float32))


def test_tubelet_tokens_are_known_in_proportion():
    model = UViT(_tiny(frame_conditioning=True, tubelet=2))
    tokens = model._known_tokens(np.array([[True, False, True, True]]), 1).numpy()[0, :, 0]
    np.testing.assert_array_equal(tokens, [0.5] * 4 + [1.0] * 4)


@pytest.mark.parametrize("pos", ["rope3d", "rope3d+sincos3d"])
def test_adaln_and_frame_conditioning_gradients_in_float64(pos):
    md.manual_seed(5)
    config = _tiny(
        frames=2,
        height=2,
        width=2,
        patch=1,
        dim=12,
        adaln=True,
        frame_conditioning=True,
        pos_encoding=pos,
    )
    model = UViT(config, dtype=np.float64)
    for p in model.parameters():  # zero-initialised gates would hide the modulated paths
        p.data += 0.1 * np.random.default_rng(6).standard_normal(p.shape)
    x, text = md.randn(2, 2, 2, 2, 2, dtype=np.float64), md.randn(2, 3, 6, dtype=np.float64)
    mask, known = np.array([[1, 1, 0], [1, 0, 0]], bool), np.array([[True, False], [False, False]])
    assert md.gradcheck(
        lambda clip, words: model(clip, np.array([7, 600]), words, mask, known=known),
        x,
        text,
        directions=3,
    )


def test_known_frames_need_a_frame_conditioned_network():
    model = UViT(_tiny())
    with pytest.raises(ValueError, match="frame_conditioning"):
        model(
            md.randn(1, 4, 2, 4, 4), np.array([1]), md.randn(1, 3, 6), known=np.ones((1, 4), bool)
        )
    conditioned = UViT(_tiny(frame_conditioning=True))
    with pytest.raises(md.ShapeError, match="known frames of shape"):
        conditioned(
            md.randn(1, 4, 2, 4, 4), np.array([1]), md.randn(1, 3, 6), known=np.ones((1, 3), bool)
        )


def test_frame_times_give_each_frame_its_own_noise_level():
    """With frame_times a (B,) t is the same level in every frame, a (B, F) t one per frame;
    the gradient flows through both, and a network without frame_times refuses (B, F)."""
    md.manual_seed(7)
    config = _tiny(frames=2, height=2, width=2, patch=1, dim=12, frame_times=True, adaln=True)
    model = UViT(config, dtype=np.float64)
    for p in model.parameters():
        p.data += 0.1 * np.random.default_rng(8).standard_normal(p.shape)
    x, text = md.randn(2, 2, 2, 2, 2, dtype=np.float64), md.randn(2, 3, 6, dtype=np.float64)
    mask = np.ones((2, 3), dtype=bool)
    shared = model(x, np.array([300, 700]), text, mask).numpy()
    spelled = model(x, np.array([[300, 300], [700, 700]]), text, mask).numpy()
    np.testing.assert_array_equal(shared, spelled)
    mixed = model(x, np.array([[0, 900], [700, 700]]), text, mask).numpy()
    assert not np.allclose(mixed[0], shared[0]) and np.allclose(mixed[1], shared[1])
    assert md.gradcheck(
        lambda clip: model(clip, np.array([[0, 900], [50, 600]]), text, mask), x, directions=3
    )
    with pytest.raises(md.ShapeError, match="frame_times=True"):
        UViT(_tiny())(md.randn(1, 4, 2, 4, 4), np.zeros((1, 4), int), md.randn(1, 3, 6))


def test_recording_attention_sees_every_block_and_changes_nothing():
    """recording_attention yields one weight array per block, in forward order, each row a
    distribution over the tokens with nothing on padding words; the output is the same."""
    md.manual_seed(0)
    config = _tiny(depth=3)
    model = UViT(config)
    x = md.randn(2, 4, 2, 4, 4)
    text, mask = md.randn(2, 3, 6), np.array([[True, True, False], [True, False, False]])
    with md.no_grad():
        plain = model(x, np.array([3, 500]), text, mask).numpy()
        with md.nn.recording_attention(model) as records:
            recorded = model(x, np.array([3, 500]), text, mask).numpy()
        model(x, np.array([3, 500]), text, mask)  # after the block: nothing more recorded
    np.testing.assert_array_equal(recorded, plain)
    tokens = config.num_extra_tokens + 4 * 2 * 2
    blocks = len(model.in_blocks) + 1 + len(model.out_blocks)
    assert len(records) == blocks
    for weights in records:
        assert weights.shape == (2, config.heads, tokens, tokens)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
        assert (weights[0, :, :, 1 + 2] == 0).all()  # clip 0's third word is padding
        assert (weights[1, :, :, 1 + 1 : 1 + 3] == 0).all()


def test_recording_attention_refuses_factorized_attention():
    with pytest.raises(ValueError, match="no joint MultiHeadAttention"):
        with md.nn.recording_attention(UViT(_tiny(attention="factorized"))):
            pass
