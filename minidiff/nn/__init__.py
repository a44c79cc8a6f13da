"""Layers built on the autograd engine, shaped like PyTorch's ``torch.nn``."""

from . import encodings, functional, init
from .attention import (
    FactorizedAttention,
    MultiHeadAttention,
    TransformerBlock,
    attention_weights,
    recording_attention,
    scaled_dot_product_attention,
)
from .layers import (
    MLP,
    Conv2d,
    Dropout,
    Embedding,
    Identity,
    LayerNorm,
    Linear,
    ModuleList,
    Sequential,
)
from .module import Module, Parameter
