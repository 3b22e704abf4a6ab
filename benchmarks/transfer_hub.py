"""KerasHub-built models for the transfer suite, trained like ours.

Each side of a comparison gets the same tokenizer (the one our run trained,
read from its model directory), the same `tf.data` pipeline, loss,
optimizer, schedule, batch size, seed and wall-clock budget; the model is
built from KerasHub's layers at the sizes of our run's preset and compiled
twice: with `jit_compile=True` (system `keras_hub`: KerasHub's fastest
setting for generation on CPU) and with `jit_compile=False` (system
`keras_hub_graph`: what its default "auto" gives on CPU; in training on
length-bucketed batches XLA compiles every new shape, which can cost most
of a short budget). The table counts the better of the two.

- translation: `benchmarks.quality.HubSeq2Seq` (shared
  `TokenAndPositionEmbedding`, tied output, pre-LN blocks); greedy decoding
  by recomputation (`hub_greedy_translate`).
- classifier: `TokenAndPositionEmbedding` + `TransformerEncoder` blocks,
  masked mean pooling, dropout, a softmax `Dense` head.
- gpt: `keras_hub.models.GPT2Backbone` inside
  `GPT2CausalLM(preprocessor=None)`.
"""

import math
import time

from benchmarks import baselines

HUB_JIT_COMPILE = True  # the default of each function below


def _fit(model, dataset, minutes, steps_per_epoch=None):
    from benchmarks.quality import _fit as fit

    return fit(model, dataset, minutes)


def translation(run, minutes, seed, valid, jit_compile=HUB_JIT_COMPILE):
    """Trains the KerasHub seq2seq like `run` (our model directory)."""
    import keras

    from benchmarks.quality import HubSeq2Seq, hub_greedy_translate
    from keras_transformer.data.translation import make_translation_dataset
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.metrics import corpus_bleu
    from keras_transformer.optimizers import transformer_adam

    keras.utils.set_random_seed(seed)
    config, settings, tokenizer = (
        run["config"],
        run["settings"],
        run["tokenizer"],
    )
    max_length = config["max_sequence_length"]
    dataset = make_translation_dataset(
        run["train"][0],
        run["train"][1],
        tokenizer,
        batch_size=settings["batch_size"],
        max_length=max_length,
        seed=seed,
        repeat=True,
    )
    hub = HubSeq2Seq(config)
    model = hub.build_model()
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"],
            warmup_steps=settings["warmup_steps"],
            scale=settings.get("learning_rate_scale", 1.0),
        ),
        loss=MaskedSparseCategoricalCrossentropy(label_smoothing=0.1),
        jit_compile=jit_compile,
    )
    steps, seconds, loss = _fit(model, dataset, minutes)
    hypotheses = hub_greedy_translate(hub, tokenizer, valid[0], max_length)
    scores = corpus_bleu(hypotheses, valid[1])
    return {
        "steps": steps,
        "train_seconds": seconds,
        "params": int(model.count_params()),
        "bleu": float(scores["bleu"]),
        "chrf": float(scores["chrf"]),
        "samples": _samples(valid, hypotheses),
    }


def _samples(valid, hypotheses, count=3):
    return [
        {"source": s, "reference": r, "hypothesis": h}
        for s, r, h in list(zip(valid[0], valid[1], hypotheses))[:count]
    ]


def classifier_model(config, num_classes, sequence_length):
    import keras
    import keras_hub

    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        config["vocabulary_size"],
        sequence_length,
        config["hidden_dim"],
        name="embedding",
    )(token_ids)
    x = keras.layers.LayerNormalization(epsilon=1e-12)(x)
    x = keras.layers.Dropout(config.get("dropout", 0.1))(x)
    mask = keras.ops.cast(padding_mask, "bool")
    for i in range(config["num_layers"]):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=config["intermediate_dim"],
            num_heads=config["num_heads"],
            dropout=config.get("dropout", 0.1),
            name=f"encoder_{i}",
        )(x, padding_mask=mask)
    weights = keras.ops.expand_dims(keras.ops.cast(padding_mask, x.dtype), -1)
    pooled = keras.ops.sum(x * weights, 1) / keras.ops.maximum(
        keras.ops.sum(weights, 1), 1.0
    )
    pooled = keras.layers.Dropout(0.1)(pooled)
    logits = keras.layers.Dense(num_classes, name="logits")(pooled)
    return keras.Model(
        {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "segment_ids": segment_ids,
        },
        logits,
        name="keras_hub_classifier",
    )


def classifier(run, minutes, seed, valid, jit_compile=HUB_JIT_COMPILE):
    """Trains a KerasHub-layer encoder classifier like `run`."""
    import keras
    import numpy as np

    from keras_transformer.data.bert import classification_dataset
    from keras_transformer.optimizers import bert_adamw

    keras.utils.set_random_seed(seed)
    config, settings, tokenizer = (
        run["config"],
        run["settings"],
        run["tokenizer"],
    )
    config = dict(config, vocabulary_size=tokenizer.vocabulary_size)
    names = run["class_names"]
    index = {name: i for i, name in enumerate(names)}
    texts, labels = run["train"]
    length = settings.get("sequence_length") or 128
    dataset = classification_dataset(
        texts,
        tokenizer,
        [index[label] for label in labels],
        sequence_length=length,
        batch_size=settings.get("batch_size") or 32,
        shuffle=True,
        seed=seed,
        repeat=True,
    )
    model = classifier_model(config, len(names), length)
    model.compile(
        optimizer=bert_adamw(
            config["hidden_dim"],
            learning_rate=settings.get("learning_rate") or 1e-3,
            warmup_steps=settings.get("warmup_steps") or 100,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    steps, seconds, _ = _fit(model, dataset, minutes)
    valid_data = classification_dataset(
        valid[0], tokenizer, sequence_length=length, batch_size=64
    )
    logits = model.predict(valid_data, verbose=0)
    predictions = [names[i] for i in np.argmax(logits, axis=-1)]
    scores = baselines.classification_scores(predictions, valid[1])
    return {
        "steps": steps,
        "train_seconds": seconds,
        "params": int(model.count_params()),
        **scores,
    }


def gpt(run, minutes, seed, valid, jit_compile=HUB_JIT_COMPILE):
    """Trains KerasHub's GPT-2 like `run`; bits per byte on `valid`."""
    import keras
    import keras_hub

    from keras_transformer.data import lm as lm_data
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.optimizers import transformer_adam

    keras.utils.set_random_seed(seed)
    config, settings, tokenizer = (
        run["config"],
        run["settings"],
        run["tokenizer"],
    )
    length = config["max_sequence_length"]
    batch_size = settings.get("batch_size") or 16
    windows = lm_data.pack_windows(
        lm_data.tokenize_texts(run["train"], tokenizer), length
    )
    dataset = lm_data.lm_dataset(
        windows, batch_size, shuffle=True, seed=seed, drop_remainder=True
    ).repeat()
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"],
        dropout=config.get("dropout", 0.1),
        max_sequence_length=length,
    )
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"],
            warmup_steps=settings.get("warmup_steps") or 200,
            scale=settings.get("learning_rate_scale") or 1.0,
            clipnorm=1.0,
        ),
        loss=MaskedSparseCategoricalCrossentropy(),
        weighted_metrics=[],
        jit_compile=jit_compile,
    )
    steps, seconds, _ = _fit(model, dataset, minutes)
    return {
        "steps": steps,
        "train_seconds": seconds,
        "params": int(model.count_params()),
        **lm_scores(model, tokenizer, valid, length, batch_size),
    }


def lm_scores(model, tokenizer, documents, length, batch_size):
    """Perplexity per token and bits per byte of `documents`."""
    from keras_transformer.data import lm as lm_data
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy

    data, _, tokens = lm_data.text_lm_dataset(
        documents, tokenizer, length, batch_size
    )
    loss_fn = MaskedSparseCategoricalCrossentropy()
    total, count = 0.0, 0
    start = time.monotonic()
    for inputs, labels in data:
        logits = model(inputs, training=False)
        mean = float(loss_fn(labels, logits))
        real = int((labels != 0).numpy().sum())
        total += mean * real
        count += real
    return {
        "perplexity": math.exp(total / count),
        "bits_per_byte": total / math.log(2) / baselines.lm_bytes(documents),
        "valid_tokens": int(tokens),
        "eval_seconds": time.monotonic() - start,
    }
