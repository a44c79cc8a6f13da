"""The application: the text-to-video system of chapters 12-14, built from the layers below.

``presets`` names the configurations (data, network, text encoder, training); ``text_to_video``
holds :class:`TextToVideo`, the tokenizer, text encoder, U-ViT and schedule of a preset together
(chapter 10 builds it); ``train`` is the training loop with exact resume (chapter 12);
``pipeline`` is the job end to end: train, sample, measure, report (chapters 12 and 13);
``studies`` trains and measures the named variants whose results the book reads (chapters 12
to 14); ``cli`` is the command line, ``python -m minidiff COMMAND``.
"""
