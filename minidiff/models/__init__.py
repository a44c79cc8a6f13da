"""Networks: the U-ViT backbone for images and videos, and the text encoder."""

from .uvit import UViT, UViTConfig, forward_flops, patchify, unpatchify
