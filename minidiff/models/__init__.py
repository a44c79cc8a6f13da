"""Networks: the U-ViT backbone for images and videos, and the text encoder."""

from .text import TextEncoder, Tokenizer, UnknownWordError, sample_drop, split_words
from .uvit import UViT, UViTConfig, forward_flops, patchify, unpatchify
