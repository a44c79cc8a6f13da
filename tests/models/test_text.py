"""Tokenizer and TextEncoder: round trips, padding, errors, the null condition, gradients."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.models import text
from minidiff.models.text import TextEncoder, Tokenizer, UnknownWordError, sample_drop

CAPTIONS = [
    "a small red ball bounces to the right",
    "a big blue ball rolls to the left",
    "two red balls collide",
    "a green ball falls",
]


def host(array):
    return md.backend.to_numpy(array.data if isinstance(array, md.Tensor) else array)


@pytest.fixture
def tokenizer():
    return Tokenizer.from_corpus(CAPTIONS)


def make_encoder(tokenizer, dim=8, dtype=None, **kwargs):
    md.manual_seed(0)
    kwargs = {"depth": 2, "heads": 2, "max_length": 10, **kwargs}
    return TextEncoder(len(tokenizer), dim, dtype=dtype, **kwargs)


# --- tokenizer ---------------------------------------------------------------------------------

words = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)


@st.composite
def corpus_and_captions(draw):
    """A vocabulary, captions over it (as word lists), and the same captions written with
    random case, trailing punctuation and hyphens between words."""
    vocabulary = draw(st.lists(words, min_size=1, max_size=12, unique=True))
    captions = draw(
        st.lists(st.lists(st.sampled_from(vocabulary), max_size=8), min_size=1, max_size=5)
    )
    written = []
    for caption in captions:
        pieces = []
        for word in caption:
            word = draw(st.sampled_from([word, word.upper(), word.title()]))
            pieces.append(word + draw(st.sampled_from(["", ".", ",", "!", "?", ";", ":"])))
            pieces.append(draw(st.sampled_from([" ", "  ", "-", " - "])))
        written.append("".join(pieces[:-1]))
    return captions, written


@given(corpus_and_captions())
def test_encode_decode_round_trip(drawn):
    captions, written = drawn
    tokenizer = Tokenizer.from_corpus(written)
    ids, mask = tokenizer.encode(written)
    longest = max(len(c) for c in captions)
    assert ids.shape == mask.shape == (len(captions), longest)
    assert ids.dtype == np.int64 and mask.dtype == bool
    assert mask.sum(axis=1).tolist() == [len(c) for c in captions]
    assert (ids[~mask] == text.PAD_ID).all() and (ids[mask] >= 2).all()
    assert tokenizer.decode(ids) == [" ".join(c) for c in captions]


def test_case_and_punctuation():
    split = text.split_words
    assert split("A Small, RED ball bounces -- to the right!") == [
        "a", "small", "red", "ball", "bounces", "to", "the", "right"
    ]  # fmt: skip
    assert split("light-blue/green_ball") == ["light", "blue", "green", "ball"]
    assert split("the ball's 3 bounces; 12 frames.") == [
        "the", "balls", "3", "bounces", "12", "frames"
    ]  # fmt: skip
    assert split("  \t\n") == []
    with pytest.raises(TypeError, match="str"):
        split(3)


def test_padding_and_mask(tokenizer):
    ids, mask = tokenizer.encode(["A red ball.", "two red balls collide"])
    assert ids.shape == (2, 4)
    assert mask.tolist() == [[True, True, True, False], [True] * 4]
    assert ids[0, 3] == text.PAD_ID
    ids, mask = tokenizer.encode("a red ball", max_length=6)
    assert ids.shape == mask.shape == (1, 6) and mask.sum() == 3
    assert tokenizer.decode(ids[0]) == "a red ball"
    assert tokenizer.encode([])[0].shape == (0, 0)


def test_unknown_word_names_word_caption_and_nearest_words(tokenizer):
    with pytest.raises(UnknownWordError) as caught:
        tokenizer.encode(["a red ball", "a rde ball"])
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, ValueError)
    message = str(error)
    assert "'rde'" in message and "'a rde ball'" in message and "'red'" in message
    assert error.word == "rde" and "red" in error.suggestions
    with pytest.raises(UnknownWordError, match="none close"):
        tokenizer.encode("a zzzzzz")


def test_allow_unknown_maps_to_unk(tokenizer):
    ids, mask = tokenizer.encode("a purple ball", allow_unknown=True)
    assert ids[0, 1] == text.UNK_ID and mask.all()
    assert tokenizer.decode(ids[0]) == "a <unk> ball"


def test_max_length(tokenizer):
    caption = "a small red ball bounces to the right"
    with pytest.raises(ValueError, match=r"'a small red ball bounces to the right' has 8 words"):
        tokenizer.encode(caption, max_length=5)
    ids, mask = tokenizer.encode(caption, max_length=5, truncate=True)
    assert mask.all() and tokenizer.decode(ids[0]) == "a small red ball bounces"
    with pytest.raises(ValueError, match="max_length"):
        tokenizer.encode(caption, max_length=0)


def test_state_dict_round_trip(tokenizer, tmp_path):
    state = tokenizer.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert Tokenizer.from_state_dict(state).vocabulary == tokenizer.vocabulary
    md.save(tmp_path / "tokenizer.npz", tokenizer=tokenizer)
    restored = Tokenizer.from_state_dict(md.load(tmp_path / "tokenizer.npz")["tokenizer"])
    assert restored.vocabulary == tokenizer.vocabulary and len(restored) == len(tokenizer)
    for caption in CAPTIONS:
        np.testing.assert_array_equal(restored.encode(caption)[0], tokenizer.encode(caption)[0])
    with pytest.raises(ValueError, match="start with"):
        Tokenizer.from_state_dict({"vocabulary": ["a", "b"]})


def test_vocabulary_order_is_frequency_then_alphabetical():
    corpus = ["a red cube", "a blue ball", "a red ball"]
    expected = ("<pad>", "<unk>", "a", "ball", "red", "blue", "cube")
    assert Tokenizer.from_corpus(corpus).vocabulary == expected
    assert Tokenizer.from_corpus(corpus[::-1]).vocabulary == expected
    assert Tokenizer.from_corpus(corpus, min_count=2).vocabulary == expected[:5]
    with pytest.raises(ValueError, match="min_count"):
        Tokenizer.from_corpus(corpus, min_count=0)


def test_tokenizer_rejects_bad_vocabularies_and_ids(tokenizer):
    with pytest.raises(ValueError, match="repeated"):
        Tokenizer(["red", "red"])
    with pytest.raises(ValueError, match="normalized"):
        Tokenizer(["Red"])
    with pytest.raises(ValueError, match=r"\[0, "):
        tokenizer.decode(np.array([[0, len(tokenizer)]]))
    with pytest.raises(TypeError, match="list of captions"):
        Tokenizer.from_corpus("a red ball")


# --- encoder -----------------------------------------------------------------------------------


def test_encoder_shapes_and_dtype(tokenizer):
    encoder = make_encoder(tokenizer)
    ids, mask = tokenizer.encode(CAPTIONS[:3])
    tokens, out_mask = encoder(ids, mask)
    assert tokens.shape == (3, ids.shape[1], 8) and tokens.dtype == np.float32
    np.testing.assert_array_equal(host(out_mask), mask)
    features = host(tokens)
    assert np.isfinite(features).all()
    assert (features[~mask] == 0).all()  # padding positions are zeroed


def test_padding_does_not_change_the_real_tokens(tokenizer):
    """Key-padding mask: extra padding, padding filled with arbitrary ids, and the other captions
    of the batch all leave a caption's real-token features unchanged."""
    encoder = make_encoder(tokenizer)
    caption = "a green ball falls"
    alone, _ = encoder(*tokenizer.encode(caption))
    reference = host(alone)[0]
    ids, mask = tokenizer.encode([caption, CAPTIONS[0]], max_length=10)
    ids[0, ~mask[0]] = np.arange(2, 2 + (~mask[0]).sum()) % len(tokenizer)
    batched, _ = encoder(ids, mask)
    np.testing.assert_allclose(host(batched)[0, :4], reference, rtol=1e-5, atol=1e-6)
    assert (host(batched)[0, 4:] == 0).all()


def test_dropped_rows_are_the_null_condition(tokenizer):
    encoder = make_encoder(tokenizer)
    ids, mask = tokenizer.encode(CAPTIONS)
    drop = np.array([False, True, False, True])
    tokens, out_mask = encoder(ids, mask, drop=drop)
    null_tokens, null_mask = encoder.null_condition(2, ids.shape[1])
    np.testing.assert_array_equal(host(tokens)[drop], host(null_tokens))
    np.testing.assert_array_equal(host(out_mask)[drop], host(null_mask))
    np.testing.assert_array_equal(host(out_mask)[~drop], mask[~drop])
    assert host(null_mask)[:, 0].all() and not host(null_mask)[:, 1:].any()
    np.testing.assert_array_equal(
        host(null_tokens)[:, 0], np.repeat(host(encoder.null_tokens), 2, 0)
    )
    undropped, _ = encoder(ids, mask)
    np.testing.assert_array_equal(host(tokens)[~drop], host(undropped)[~drop])


def test_gradients_reach_null_tokens_only_through_dropped_rows(tokenizer):
    encoder = make_encoder(tokenizer)
    ids, mask = tokenizer.encode(CAPTIONS)
    drop = np.array([True, False, False, True])
    weights = np.random.default_rng(0).standard_normal((4, ids.shape[1], 8)).astype(np.float32)
    tokens, _ = encoder(ids, mask, drop=drop)
    (tokens * md.tensor(weights)).sum().backward()
    # d loss / d null = the weights at position 0 of the dropped rows, summed
    np.testing.assert_allclose(
        host(encoder.null_tokens.grad)[0], weights[drop, 0].sum(0), rtol=1e-6
    )
    table_grad = host(encoder.token_embedding.weight.grad).copy()

    # The encoder's own parameters see the kept rows only: the same as a loss without them.
    encoder.zero_grad()
    tokens, _ = encoder(ids, mask)
    (tokens * md.tensor(weights * ~drop[:, None, None])).sum().backward()
    np.testing.assert_allclose(host(encoder.token_embedding.weight.grad), table_grad, atol=1e-7)
    assert encoder.null_tokens.grad is None


def test_an_empty_caption_is_allowed_only_when_dropped(tokenizer):
    encoder = make_encoder(tokenizer)
    ids, mask = tokenizer.encode(["", "a red ball"])
    tokens, out_mask = encoder(ids, mask, drop=np.array([True, False]))
    tokens.sum().backward()
    assert np.isfinite(host(tokens)).all() and host(out_mask)[0].tolist() == [True, False, False]
    assert all(np.isfinite(host(p.grad)).all() for p in encoder.parameters())
    with pytest.raises(ValueError, match=r"rows \[0\] have no real tokens"):
        encoder(ids, mask)


def _encoder_with(encoder, table, positions, null_tokens, ids, mask, drop):
    """The encoder with three of its parameters replaced by gradcheck's float64 leaves."""
    encoder.token_embedding.weight = table
    encoder.positions, encoder.null_tokens = positions, null_tokens
    return encoder(ids, mask, drop=drop)[0]


def test_encoder_gradcheck_float64(tokenizer):
    encoder = make_encoder(tokenizer, dim=4, dtype=np.float64, depth=1, max_length=4)
    ids, mask = tokenizer.encode(["a red ball", "a green ball falls", "two balls"])
    drop = np.array([False, False, True])
    leaves = (encoder.token_embedding.weight, encoder.positions, encoder.null_tokens)
    assert md.gradcheck(
        lambda *params: _encoder_with(encoder, *params, ids, mask, drop), *leaves, directions=8
    )


def test_encoder_rejects_bad_inputs(tokenizer):
    encoder = make_encoder(tokenizer, max_length=4)
    ids, mask = tokenizer.encode("a red ball")
    bad = ids.copy()
    bad[0, 1] = len(tokenizer)
    with pytest.raises(ValueError, match=rf"token id {len(tokenizer)} at \(row 0, position 1\)"):
        encoder(bad, mask)
    with pytest.raises(md.ShapeError, match="max_length=4"):
        encoder(*tokenizer.encode(CAPTIONS[0]))
    with pytest.raises(md.ShapeError, match="mask must be bool"):
        encoder(ids, mask[:, :2])
    with pytest.raises(md.ShapeError, match="drop must be bool"):
        encoder(ids, mask, drop=np.array([True, False]))
    with pytest.raises(md.DTypeError, match="integers"):
        encoder(ids.astype(np.float32), mask)


@given(std=st.floats(0.01, 2.0))
def test_the_token_table_is_drawn_at_the_embedding_std(std):
    """N(0, std^2) truncated at 2 std: every entry within 2 std, and the spread of the table
    that of the truncated normal, 0.880 std (the positions keep 0.02)."""
    md.manual_seed(0)
    encoder = TextEncoder(200, 32, depth=0, embedding_std=std)
    table = encoder.token_embedding.weight.numpy()
    assert np.abs(table).max() <= 2 * std * (1 + 1e-6)
    assert table.std() == pytest.approx(0.880 * std, rel=0.05)
    assert encoder.positions.numpy().std() == pytest.approx(0.880 * 0.02, rel=0.1)
    with pytest.raises(ValueError, match="embedding_std must be > 0, got 0"):
        TextEncoder(200, 32, embedding_std=0)


def test_sample_drop():
    md.manual_seed(3)
    first = host(sample_drop(10_000, 0.1))
    md.manual_seed(3)
    np.testing.assert_array_equal(host(sample_drop(10_000, 0.1)), first)
    assert first.dtype == bool and abs(first.mean() - 0.1) < 0.015
    assert not host(sample_drop(50, 0.0)).any() and host(sample_drop(50, 1.0)).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sample_drop(4, 1.5)
