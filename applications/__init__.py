"""Model functions returning functional `keras.Model`s (backend-agnostic).

Modules: `translation` (encoder-decoder and its cached `Seq2SeqDecoder`),
`bert` (encoder, masked LM, classifiers), `gpt` (decoder-only LM and its
cached `GPTDecoder`); presets in `presets`. They are imported when first
used, so `keras_transformer.applications.presets` reads without Keras.

Example:
>>> import keras_transformer
>>> presets = keras_transformer.applications.presets
>>> presets.get_preset("gpt", "tiny")["num_layers"]
2
"""

import importlib

_SUBMODULES = ("bert", "gpt", "presets", "translation")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_transformer.applications.{name}")
    raise AttributeError(
        f"module 'keras_transformer.applications' has no attribute {name!r}"
    )


__all__ = list(_SUBMODULES)
