"""Layers built on the autograd engine, shaped like PyTorch's ``torch.nn``."""

from . import functional, init
from .layers import MLP, Dropout, Embedding, Identity, LayerNorm, Linear, ModuleList, Sequential
from .module import Module, Parameter
