"""Captions to token features: a word-level :class:`Tokenizer` and a small :class:`TextEncoder`.

The captions of the ball world come from a small grammar ("a small red ball bounces to the
right"), so a word-level vocabulary built from the training captions covers them exactly; there is
no need for sub-word pieces. The pipeline is

    caption --Tokenizer.encode--> ids (B, L), mask (B, L)
            --TextEncoder--------> features (B, L, dim), mask (B, L)

and the diffusion network attends to the features, ignoring the positions where the mask is
False. For classifier-free guidance the encoder also owns the *null condition*: a learned feature
that stands in for "no caption", used for the randomly dropped captions in training and for the
unconditional half of a guided prediction at sampling time.

>>> tokenizer = Tokenizer.from_corpus(["A red ball.", "a blue ball bounces"])
>>> ids, mask = tokenizer.encode(["a red ball", "a blue ball bounces"])
>>> ids.tolist(), tokenizer.decode(ids)
([[2, 6, 3, 0], [2, 4, 3, 5]], ['a red ball', 'a blue ball bounces'])
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor, unwrap
from ..errors import DTypeError, ShapeError
from ..nn import init
from ..nn.attention import TransformerBlock
from ..nn.layers import Embedding, LayerNorm, ModuleList
from ..nn.module import Module, Parameter

PAD, UNK = "<pad>", "<unk>"
RESERVED = (PAD, UNK)
PAD_ID, UNK_ID = 0, 1

# Characters that join two words ("left-to-right", "red/blue") become spaces, so each part is a
# word of its own; every other punctuation character is deleted ("ball's" -> "balls").
_JOINERS = re.compile(r"[-_/]")
_PUNCTUATION = re.compile(r"[^\w\s]")


def split_words(text: str) -> list[str]:
    """The words of ``text`` as the tokenizer sees them: lowercase; hyphens, underscores and
    slashes separate words; other punctuation is removed; digits are kept; split on whitespace.

    >>> split_words("A light-blue ball, 2 cubes!")
    ['a', 'light', 'blue', 'ball', '2', 'cubes']
    """
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__}: {text!r}")
    return _PUNCTUATION.sub("", _JOINERS.sub(" ", text.lower())).split()


class UnknownWordError(KeyError, ValueError):
    """A caption word that is not in the tokenizer's vocabulary. The message names the word, the
    caption and the closest words the vocabulary does have (likely typos)."""

    def __init__(self, word: str, caption: str, suggestions: Sequence[str]):
        self.word, self.caption, self.suggestions = word, caption, list(suggestions)
        nearest = ", ".join(repr(s) for s in suggestions) if suggestions else "none close"
        super().__init__(
            f"unknown word {word!r} in caption {caption!r}; nearest words in the vocabulary: "
            f"{nearest}. Use words the vocabulary has (in Python, a tokenizer built from "
            "captions that contain it, or encode(..., allow_unknown=True) to read it as <unk>, "
            "also do)"
        )

    def __str__(self) -> str:
        return self.args[0]  # KeyError would show the message in quotes


class Tokenizer:
    """Word-level tokenizer: id 0 is ``<pad>``, id 1 is ``<unk>``, ids 2, 3, ... are ``words``.

    Build one with :meth:`from_corpus`, which orders the words by decreasing frequency in the
    corpus and breaks ties alphabetically, so the same captions in any order give the same ids.
    ``<unk>`` is only produced by ``encode(..., allow_unknown=True)``; by default an unknown word
    is an error, because in a closed caption grammar it is almost always a typo.
    """

    def __init__(self, words: Iterable[str]):
        words = list(words)
        problems = [w for w in words if not isinstance(w, str) or split_words(w) != [w]]
        if problems:
            raise ValueError(
                f"Tokenizer: vocabulary entries must be single normalized words "
                f"(see split_words), got {problems[:5]}"
            )
        repeated = sorted(w for w, n in Counter(words).items() if n > 1)
        if repeated:
            raise ValueError(f"Tokenizer: repeated vocabulary words {repeated[:5]}")
        self._vocabulary = (*RESERVED, *words)
        self._ids = {word: i for i, word in enumerate(self._vocabulary)}

    @classmethod
    def from_corpus(cls, captions: Iterable[str], min_count: int = 1) -> Tokenizer:
        """The vocabulary of ``captions``: every word seen at least ``min_count`` times, most
        frequent first, ties in alphabetical order."""
        if min_count < 1:
            raise ValueError(f"Tokenizer.from_corpus: min_count must be >= 1, got {min_count}")
        if isinstance(captions, str):
            raise TypeError("Tokenizer.from_corpus: give a list of captions, not one string")
        counts = Counter(word for caption in captions for word in split_words(caption))
        kept = [word for word, count in counts.items() if count >= min_count]
        return cls(sorted(kept, key=lambda word: (-counts[word], word)))

    # --- the vocabulary ---------------------------------------------------------------------
    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every token, reserved ones included; a token's position is its id."""
        return self._vocabulary

    def __len__(self) -> int:
        return len(self._vocabulary)

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens: {', '.join(self._vocabulary[:8])}, ...)"

    def state_dict(self) -> dict:
        """Plain JSON data (the vocabulary as a list of strings), storable with ``md.save``."""
        return {"vocabulary": list(self._vocabulary)}

    @classmethod
    def from_state_dict(cls, state: dict) -> Tokenizer:
        """The tokenizer that :meth:`state_dict` described (ids unchanged)."""
        vocabulary = list(state["vocabulary"])
        if tuple(vocabulary[: len(RESERVED)]) != RESERVED:
            raise ValueError(
                f"Tokenizer.from_state_dict: the vocabulary must start with {list(RESERVED)}, "
                f"got {vocabulary[:3]}"
            )
        return cls(vocabulary[len(RESERVED) :])

    # --- captions <-> ids -------------------------------------------------------------------
    def _word_id(self, word: str, caption: str, allow_unknown: bool) -> int:
        if word in self._ids:
            return self._ids[word]
        if allow_unknown:
            return UNK_ID
        words = self._vocabulary[len(RESERVED) :]
        raise UnknownWordError(word, caption, difflib.get_close_matches(word, words, n=3))

    def encode(
        self,
        texts: str | Sequence[str],
        max_length: int | None = None,
        allow_unknown: bool = False,
        truncate: bool = False,
    ) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Token ids (B, L) int64 and a mask (B, L) bool, True on real tokens.

        Rows are padded with ``<pad>`` (id 0) at the end, to the longest caption or to
        ``max_length`` when given. A caption longer than ``max_length`` is an error naming it,
        unless ``truncate`` keeps its first ``max_length`` words. A single string is a batch of
        one. The arrays are NumPy arrays on the host; the encoder moves them to its device.
        """
        captions = [texts] if isinstance(texts, str) else list(texts)
        if max_length is not None and max_length < 1:
            raise ValueError(f"Tokenizer.encode: max_length must be >= 1, got {max_length}")
        rows = []
        for caption in captions:
            words = split_words(caption)
            if max_length is not None and len(words) > max_length:
                if not truncate:
                    raise ValueError(
                        f"caption {caption!r} has {len(words)} words, more than "
                        f"max_length={max_length}; shorten it to at most {max_length} words "
                        "(in Python, a larger max_length, or encode(..., truncate=True) to "
                        "keep the first words, also do)"
                    )
                words = words[:max_length]
            rows.append([self._word_id(word, caption, allow_unknown) for word in words])
        length = max_length if max_length is not None else max((len(r) for r in rows), default=0)
        ids = numpy.full((len(rows), length), PAD_ID, dtype=numpy.int64)
        mask = numpy.zeros((len(rows), length), dtype=bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        return ids, mask

    def decode(self, ids) -> list[str] | str:
        """Captions from ids (B, L) (a list of strings) or (L,) (one string); ``<pad>`` is
        skipped. ``decode(encode(c))`` gives back ``" ".join(split_words(c))``."""
        array = backend.to_numpy(unwrap(ids))
        if array.ndim not in (1, 2) or (array.size and array.dtype.kind not in "iu"):
            raise ValueError(
                f"Tokenizer.decode: ids must be integers of shape (L,) or (B, L), "
                f"got dtype {array.dtype} and shape {array.shape}"
            )
        if array.size and (array.min() < 0 or array.max() >= len(self)):
            raise ValueError(
                f"Tokenizer.decode: ids must be in [0, {len(self)}), got values in "
                f"[{int(array.min())}, {int(array.max())}]"
            )
        rows = [
            " ".join(self._vocabulary[i] for i in row.tolist() if i != PAD_ID)
            for row in (array[None] if array.ndim == 1 else array)
        ]
        return rows[0] if array.ndim == 1 else rows


def sample_drop(batch: int, p: float, device: str | None = None):
    """Which of ``batch`` captions to drop for classifier-free guidance training: a bool array
    (batch,) on ``device``, each entry True with probability ``p``, independently, from the
    device's seeded generator (``md.manual_seed``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"sample_drop: p must be in [0, 1], got {p}")
    return backend.generator(device).random(batch) < p


class TextEncoder(Module):
    """Token ids to contextual features: a small pre-LN transformer over the caption.

    With E the token table (N(0, ``embedding_std``^2) truncated at two standard deviations;
    0.02 as in ViT and GPT-2 by default), P the learned positions (N(0, 0.02^2) truncated alike)
    and m the mask,

        h_0 = E[ids] + P[:L],   h_k = Block_k(h_{k-1}; keys where m is False are hidden),
        features = LayerNorm(h_depth) * m    (positions where m is False are set to 0).

    The key-padding mask means a real token never attends to padding, so appending padding to a
    caption leaves the features of its real tokens unchanged. Queries at padding positions are
    still computed (they attend to the real tokens) and then zeroed.

    Null condition. ``null_tokens`` is a single learned feature vector (shape (1, dim)). The null
    "caption" is that vector at position 0 and padding after it, with mask [True, False, ...].
    One token rather than a full learned sequence makes the null condition the same whatever
    the padded length L of the batch, for any consumer that honours the mask. It starts as
    N(0, 1), the scale of the LayerNorm'd features it stands in for.

    A network that expects a fixed text length (``UViTConfig.text_length``) gets it from
    ``tokenizer.encode(captions, max_length=encoder.max_length)``.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        depth: int = 2,
        heads: int = 4,
        max_length: int = 16,
        mlp_ratio: float = 4.0,
        embedding_std: float = 0.02,
        dtype=None,
        device=None,
    ):
        super().__init__()
        if embedding_std <= 0:
            raise ValueError(f"TextEncoder: embedding_std must be > 0, got {embedding_std}")
        if vocab_size < len(RESERVED) + 1 or max_length < 1 or depth < 0:
            raise ValueError(
                f"TextEncoder: need vocab_size > {len(RESERVED)}, max_length >= 1 and "
                f"depth >= 0, got {vocab_size}, {max_length} and {depth}"
            )
        self.vocab_size, self.dim, self.max_length = vocab_size, dim, max_length
        device = device or backend.default_device()
        dtype = dtype or backend.DEFAULT_FLOAT
        xp = backend.module_for(device)
        self.token_embedding = Embedding(vocab_size, dim, dtype=dtype, device=device)
        init.trunc_normal_(self.token_embedding.weight, embedding_std)
        self.positions = init.trunc_normal_(
            Parameter(xp.zeros((max_length, dim)), dtype=dtype, device=device), 0.02
        )
        self.blocks = ModuleList(
            TransformerBlock(dim, heads, mlp_ratio, dtype=dtype, device=device)
            for _ in range(depth)
        )
        self.norm = LayerNorm(dim, dtype=dtype, device=device)
        self.null_tokens = init.normal_(
            Parameter(xp.zeros((1, dim)), dtype=dtype, device=device), 1.0
        )

    @property
    def device(self) -> str:
        """Where the parameters live (``'cpu'`` or ``'cuda'``)."""
        return self.token_embedding.weight.device

    def _checked(self, ids, mask, drop):
        """ids (on the host), mask and drop (on the encoder's device), after checking them on
        the host: ids come from the tokenizer as host arrays, so the checks cost no device sync,
        and the embedding looks them up from there."""
        ids = backend.to_numpy(unwrap(ids))
        mask = backend.to_numpy(unwrap(mask))
        name = f"TextEncoder(vocab_size={self.vocab_size}, max_length={self.max_length})"
        if ids.ndim != 2 or (ids.size and ids.dtype.kind not in "iu"):
            raise DTypeError(
                f"{name}: ids must be integers of shape (B, L), got dtype {ids.dtype} and "
                f"shape {ids.shape}"
            )
        batch, length = ids.shape
        if not 1 <= length <= self.max_length:
            raise ShapeError(
                f"{name}: ids of shape {ids.shape} have {length} positions; the encoder takes "
                f"1 to max_length={self.max_length} (encode with max_length={self.max_length})"
            )
        outside = (ids < 0) | (ids >= self.vocab_size)
        if outside.any():
            row, col = (int(i) for i in numpy.argwhere(outside)[0])
            raise ValueError(
                f"{name}: token id {int(ids[row, col])} at (row {row}, position {col}) is outside "
                f"[0, {self.vocab_size}); was the tokenizer built from another vocabulary "
                f"(its len() must equal vocab_size)?"
            )
        if mask.shape != ids.shape or mask.dtype != bool:
            raise ShapeError(
                f"{name}: mask must be bool of the ids' shape {ids.shape}, got dtype "
                f"{mask.dtype} and shape {mask.shape}"
            )
        kept = numpy.ones(batch, dtype=bool)
        if drop is not None:
            drop = backend.to_numpy(unwrap(drop))
            if drop.shape != (batch,) or drop.dtype != bool:
                raise ShapeError(
                    f"{name}: drop must be bool of shape ({batch},), got dtype {drop.dtype} "
                    f"and shape {drop.shape}"
                )
            kept = ~drop
            drop = backend.to_device(drop, self.device)
        empty = ~mask.any(axis=1) & kept
        if empty.any():
            raise ValueError(
                f"{name}: rows {numpy.flatnonzero(empty).tolist()} have no real tokens (an "
                "empty caption); for 'no caption' drop the row or use null_condition()"
            )
        return ids, backend.to_device(mask, self.device), drop

    def null_condition(self, batch: int, length: int = 1) -> tuple[Tensor, object]:
        """The null caption for ``batch`` rows padded to ``length``: features (batch, length,
        dim) that are ``null_tokens`` at position 0 and zeros after, and the mask (batch, length)
        that is True at position 0 only. Differentiable in ``null_tokens``."""
        if length < 1:
            raise ShapeError(f"TextEncoder.null_condition: length must be >= 1, got {length}")
        row = ops.pad(self.null_tokens, ((0, length - 1), (0, 0)))
        tokens = ops.broadcast_to(row, (batch, length, self.dim))
        mask = backend.module_for(self.device).zeros((batch, length), dtype=bool)
        mask[:, 0] = True
        return tokens, mask

    def forward(self, ids, mask, drop=None) -> tuple[Tensor, object]:
        """Features (B, L, dim) and mask (B, L) for ids and mask from ``Tokenizer.encode``.

        ``drop`` (bool, (B,)), e.g. from :func:`sample_drop`, replaces the selected rows by the
        null condition, features and mask both; the gradient then reaches ``null_tokens`` from
        those rows only, and the encoder's parameters from the others only. Dropped rows are
        still encoded (and discarded), which keeps the batch in one piece.
        """
        ids, mask, drop = self._checked(ids, mask, drop)
        xp = backend.xp_of(mask)
        # An empty caption may only occur in a dropped row; letting its queries see every
        # position keeps its softmax finite (a row of -inf logits would give NaN, and NaN
        # times the zero gradient of a discarded row is still NaN).
        visible = mask | ~mask.any(axis=1, keepdims=True)
        key_mask = visible[:, None, None, :]  # broadcasts to the scores' (B, heads, L, L)
        length = ids.shape[1]
        x = self.token_embedding(ids) + self.positions[:length]
        for block in self.blocks:
            x = block(x, mask=key_mask)
        tokens = ops.where(mask[:, :, None], self.norm(x), 0.0)
        if drop is not None:
            null_tokens, null_mask = self.null_condition(1, length)
            tokens = ops.where(drop[:, None, None], null_tokens, tokens)
            mask = xp.where(drop[:, None], null_mask, mask)
        return tokens, mask

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, dim={self.dim}, depth={len(self.blocks)}, "
            f"max_length={self.max_length}"
        )
