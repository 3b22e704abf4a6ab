"""Presets: dicts of keyword arguments for the application functions.

Parameter counts in the comments are for the vocabulary size noted there
(computed with `model.count_params()`).
"""

# Translation (encoder-decoder): keyword arguments of
# `keras_transformer.applications.translation.transformer_seq2seq`.
TRANSLATION_PRESETS = {
    # 13,248 parameters (vocabulary 128): unit tests and smoke runs (pre-LN,
    # so the export tests also cover the final layer normalizations).
    "tiny": {
        "vocabulary_size": 128,
        "num_encoder_layers": 2,
        "num_decoder_layers": 2,
        "hidden_dim": 16,
        "num_heads": 2,
        "intermediate_dim": 32,
        "max_sequence_length": 64,
        "dropout": 0.1,
        "position": "sinusoidal",
        "tie_embeddings": True,
        "share_embeddings": True,
        "normalize_first": True,
    },
    # 1,950,208 parameters (vocabulary 8000, 1,024,000 of them embeddings):
    # half the width and two thirds of the depth of "small", about three
    # times as many steps per minute on a CPU. Chosen by `preset="auto"`
    # when a budget or a corpus is too small for "small" (see
    # `keras_transformer.tasks.translation.choose_preset`).
    "mini": {
        "vocabulary_size": 8000,
        "num_encoder_layers": 2,
        "num_decoder_layers": 2,
        "hidden_dim": 128,
        "num_heads": 4,
        "intermediate_dim": 512,
        "max_sequence_length": 128,
        "dropout": 0.1,
        "position": "sinusoidal",
        "tie_embeddings": True,
        "share_embeddings": True,
        "normalize_first": True,
    },
    # 7,578,624 parameters (vocabulary 8000, 2,048,000 of them embeddings):
    # trains on 2 CPU cores in minutes. Pre-LN, which tolerates the short
    # warmup and high learning rate that a CPU budget of a few hundred or
    # thousand steps needs.
    "small": {
        "vocabulary_size": 8000,
        "num_encoder_layers": 3,
        "num_decoder_layers": 3,
        "hidden_dim": 256,
        "num_heads": 4,
        "intermediate_dim": 1024,
        "max_sequence_length": 128,
        "dropout": 0.1,
        "position": "sinusoidal",
        "tie_embeddings": True,
        "share_embeddings": True,
        "normalize_first": True,
    },
    # 60,522,496 parameters (vocabulary 32000): the paper's base model
    # (6+6 layers, hidden_dim 512, ff 2048, 8 heads, dropout 0.1, post-LN,
    # shared source/target vocabulary with tied embeddings).
    "base": {
        "vocabulary_size": 32000,
        "num_encoder_layers": 6,
        "num_decoder_layers": 6,
        "hidden_dim": 512,
        "num_heads": 8,
        "intermediate_dim": 2048,
        "max_sequence_length": 256,
        "dropout": 0.1,
        "position": "sinusoidal",
        "tie_embeddings": True,
        "share_embeddings": True,
        "normalize_first": False,
    },
}

# BERT-style encoder: keyword arguments of
# `keras_transformer.applications.bert.bert_backbone`, except
# `vocabulary_size`, which comes from the tokenizer. Backbone parameter counts
# for vocabulary_size=8000 (the default of `train bert-pretrain` and
# `train classifier`); for BERT's 30522 in brackets.
BERT_PRESETS = {
    # 0.62M (2.07M): unit tests, demos, a one-minute CPU run.
    "tiny": {
        "num_layers": 2,
        "hidden_dim": 64,
        "num_heads": 2,
        "intermediate_dim": 256,
        "max_sequence_length": 128,
        "dropout": 0.1,
    },
    # 1.85M (4.73M): a few minutes on a laptop CPU.
    "mini": {
        "num_layers": 4,
        "hidden_dim": 128,
        "num_heads": 4,
        "intermediate_dim": 512,
        "max_sequence_length": 128,
        "dropout": 0.1,
    },
    # 5.31M (11.07M): the default, sized for a 30-minute 2-core CPU budget.
    "small": {
        "num_layers": 4,
        "hidden_dim": 256,
        "num_heads": 4,
        "intermediate_dim": 1024,
        "max_sequence_length": 128,
        "dropout": 0.1,
    },
    # 92.19M (109.48M): BERT-base sizes (Devlin et al., 2019); needs a GPU.
    "base": {
        "num_layers": 12,
        "hidden_dim": 768,
        "num_heads": 12,
        "intermediate_dim": 3072,
        "max_sequence_length": 512,
        "dropout": 0.1,
    },
}

# GPT-style decoder-only LM: keyword arguments of
# `keras_transformer.applications.gpt.gpt_lm`.
GPT_PRESETS = {
    # 620,288 parameters (vocabulary 8000): smoke tests and demos.
    "tiny": {
        "vocabulary_size": 8000,
        "num_layers": 2,
        "hidden_dim": 64,
        "num_heads": 2,
        "intermediate_dim": 256,
        "max_sequence_length": 128,
        "dropout": 0.0,
    },
    # 5,240,320 parameters (vocabulary 8000): trains on 2 CPU cores in
    # minutes (the `train gpt` default). Dropout 0.1 (GPT-2's): 30 minutes
    # on one CPU thread is 4.6 passes over the bundled corpus, and without
    # dropout the held-out perplexity stops following the training loss.
    "small": {
        "vocabulary_size": 8000,
        "num_layers": 4,
        "hidden_dim": 256,
        "num_heads": 4,
        "intermediate_dim": 1024,
        "max_sequence_length": 128,
        "dropout": 0.1,
    },
    # 124,439,808 parameters (vocabulary 50257): GPT-2 small sizes.
    "gpt2": {
        "vocabulary_size": 50257,
        "num_layers": 12,
        "hidden_dim": 768,
        "num_heads": 12,
        "intermediate_dim": 3072,
        "max_sequence_length": 1024,
        "dropout": 0.1,
    },
}


def get_preset(family, name):
    """Returns a copy of a preset's keyword arguments.

    Args:
        family: str, `"translation"`, `"bert"` or `"gpt"`.
        name: str, the preset name, e.g. `"tiny"`, `"small"`, `"base"`.

    Returns:
        A new dict of keyword arguments of the family's model function
        (changing it leaves the preset as it is).

    Example:
    >>> import keras_transformer
    >>> presets = keras_transformer.applications.presets
    >>> config = presets.get_preset("gpt", "tiny")
    >>> config["hidden_dim"], config["num_layers"]
    (64, 2)
    >>> model = keras_transformer.applications.gpt.gpt_lm(**config)
    >>> model.count_params()  # the count written next to the preset
    620288
    """
    families = {
        "translation": TRANSLATION_PRESETS,
        "bert": BERT_PRESETS,
        "gpt": GPT_PRESETS,
    }
    if family not in families:
        raise ValueError(
            f"Unknown preset family; expected one of {sorted(families)}. "
            f"Received: family={family!r}"
        )
    presets = families[family]
    if name not in presets:
        raise ValueError(
            f"Unknown {family} preset; expected one of {sorted(presets)}. "
            f"Received: preset={name!r}"
        )
    return dict(presets[name])
