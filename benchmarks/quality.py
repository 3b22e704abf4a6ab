"""Quality at an equal wall-clock budget: keras_transformer vs KerasHub.

Two pairs of models, each pair trained for the same number of minutes on
the bundled corpora with exactly the same tokenizer, `tf.data` pipeline,
loss, optimizer and learning-rate schedule; only the model layers differ.

- Translation (English-Spanish verses): our `transformer_seq2seq` with the
  `small` preset against a model of the same sizes built from KerasHub
  layers (`TokenAndPositionEmbedding` shared by source and target with a
  tied output projection, `TransformerEncoder` / `TransformerDecoder` with
  `normalize_first=True` and final layer normalizations, as in our pre-LN
  preset). Metric: corpus BLEU (sacrebleu) of greedy translations of the
  first `--test-sentences` bundled test pairs. Ours decodes with its cached
  `Translator`; KerasHub's model by full recomputation of the decoder on the
  growing prefix (quality, not speed, is compared here). Ours is also
  scored with beam search (width 4) on the same sentences.
- GPT (English LM): our `gpt_lm` with the `small` preset against
  `keras_hub.models.GPT2Backbone` of the same sizes inside
  `GPT2CausalLM(preprocessor=None)`. Metric: token-weighted perplexity on
  the bundled test books.

The two sides of a pair run at the same time in two subprocesses limited to
one thread each (`TF_NUM_INTRAOP_THREADS=1`, `TF_NUM_INTEROP_THREADS=1`),
so they share the same machine conditions; the SentencePiece tokenizer is
trained once, before, by the parent process.

    python -m benchmarks.quality [--task translation|gpt|both]
        [--minutes 8] [--test-sentences 300] [--tiny]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import common  # noqa: E402

SIDES = ("keras_transformer", "keras_hub")
TASKS = ("translation", "gpt")
SEED = 0

# Training settings: those of `train translation --preset small` and
# `train gpt --preset small` (see keras_transformer/tasks/).
SETTINGS = {
    "translation": {
        "full": {
            "preset": "small",
            "model": {},
            "batch_size": 32,
            "warmup_steps": 100,
            "learning_rate_scale": 0.5,
            "label_smoothing": 0.1,
            "max_train": None,
            "jit_compile": False,  # as `default_jit_compile()` on CPU
        },
        "tiny": {
            "preset": "tiny",
            "model": {"vocabulary_size": 128},
            "batch_size": 16,
            "warmup_steps": 30,
            "learning_rate_scale": 1.0,
            "label_smoothing": 0.1,
            "max_train": 300,
            "jit_compile": False,
        },
    },
    "gpt": {
        "full": {
            "preset": "small",
            "model": {},
            "batch_size": 16,
            "warmup_steps": 200,
            "learning_rate_scale": 0.5,
            "max_train": None,
            "max_test": None,
            "jit_compile": True,  # what "auto" gives `train gpt` on CPU
        },
        "tiny": {
            "preset": "tiny",
            "model": {
                "vocabulary_size": 128,
                "num_layers": 1,
                "hidden_dim": 16,
                "num_heads": 2,
                "intermediate_dim": 32,
                "max_sequence_length": 32,
            },
            "batch_size": 8,
            "warmup_steps": 30,
            "learning_rate_scale": 1.0,
            "max_train": 300,
            "max_test": 100,
            "jit_compile": False,
        },
    },
}


def _settings(task, tiny):
    settings = SETTINGS[task]["tiny" if tiny else "full"]
    from keras_transformer.applications.presets import get_preset

    config = get_preset(task, settings["preset"])
    config.update(settings["model"])
    return dict(settings, config=config)


# ---------------------------------------------------------------------------
# Translation.


def _translation_data(settings, test_sentences):
    from keras_transformer.data.loaders import load_bundled_translation

    sources, targets = load_bundled_translation("train")
    if settings["max_train"]:
        sources = sources[: settings["max_train"]]
        targets = targets[: settings["max_train"]]
    test_sources, test_targets = load_bundled_translation("test")
    return (
        sources,
        targets,
        test_sources[:test_sentences],
        test_targets[:test_sentences],
    )


class HubSeq2Seq:
    """An encoder-decoder built from KerasHub layers, sized like ours.

    One `TokenAndPositionEmbedding` (learned positions) serves source and
    target and its token table projects decoder states to logits (tied),
    like our `share_embeddings` / `tie_embeddings`; pre-LN blocks with a
    final layer normalization of each stack, like our `normalize_first`.
    """

    def __init__(self, config):
        import keras
        import keras_hub

        self.embedding = keras_hub.layers.TokenAndPositionEmbedding(
            config["vocabulary_size"],
            config["max_sequence_length"],
            config["hidden_dim"],
            tie_weights=True,
            mask_zero=True,
            name="token_and_position_embedding",
        )
        self.dropout = keras.layers.Dropout(config["dropout"])
        block = dict(
            intermediate_dim=config["intermediate_dim"],
            num_heads=config["num_heads"],
            dropout=config["dropout"],
            normalize_first=config["normalize_first"],
        )
        self.encoder_blocks = [
            keras_hub.layers.TransformerEncoder(**block, name=f"encoder_{i}")
            for i in range(config["num_encoder_layers"])
        ]
        self.decoder_blocks = [
            keras_hub.layers.TransformerDecoder(**block, name=f"decoder_{i}")
            for i in range(config["num_decoder_layers"])
        ]
        self.encoder_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, name="encoder_norm"
        )
        self.decoder_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, name="decoder_norm"
        )

    def build_model(self):
        """The trainable functional model (masks propagate from id 0)."""
        import keras

        encoder_ids = keras.Input(
            (None,), dtype="int32", name="encoder_token_ids"
        )
        decoder_ids = keras.Input(
            (None,), dtype="int32", name="decoder_token_ids"
        )
        x = self.dropout(self.embedding(encoder_ids))
        for block in self.encoder_blocks:
            x = block(x)
        x = self.encoder_norm(x)
        y = self.dropout(self.embedding(decoder_ids))
        for block in self.decoder_blocks:
            y = block(y, x)
        y = self.decoder_norm(y)
        logits = self.embedding.token_embedding(y, reverse=True)
        return keras.Model(
            {
                "encoder_token_ids": encoder_ids,
                "decoder_token_ids": decoder_ids,
            },
            logits,
            name="keras_hub_seq2seq",
        )

    def encode(self, encoder_ids):
        """Encoder states [B, S, D] and padding mask [B, S] (inference)."""
        mask = encoder_ids != 0
        x = self.embedding(encoder_ids)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=mask)
        return self.encoder_norm(x), mask

    def next_logits(self, decoder_ids, encoder_states, encoder_mask):
        """Logits [B, V] after the prefix `decoder_ids` [B, T], recomputed."""
        y = self.embedding(decoder_ids)
        for block in self.decoder_blocks:
            y = block(
                y,
                encoder_sequence=encoder_states,
                encoder_padding_mask=encoder_mask,
            )
        y = self.decoder_norm(y[:, -1])
        return self.embedding.token_embedding(y, reverse=True)


def hub_greedy_translate(hub, tokenizer, texts, max_length, batch_size=64):
    """Greedy translation by full recomputation of the decoder each step.

    Rows leave the batch once they emit the end token; at most
    `max_length - 1` tokens are generated, as with our `Translator`.
    """
    import numpy as np
    import tensorflow as tf

    from keras_transformer.data.translation import pad_batch

    ids = tokenizer.tokenize(tf.constant(list(texts), tf.string))
    ids = [
        row + [tokenizer.end_id] for row in ids[:, : max_length - 1].to_list()
    ]
    results = [None] * len(texts)
    for begin in range(0, len(ids), batch_size):
        rows = list(range(begin, min(begin + batch_size, len(ids))))
        states, mask = hub.encode(pad_batch([ids[i] for i in rows]))
        outputs = [[] for _ in rows]
        prefix = np.full((len(rows), 1), tokenizer.start_id, "int32")
        active = np.arange(len(rows))
        for _ in range(max_length - 1):
            logits = hub.next_logits(
                prefix,
                tf.gather(states, active),
                tf.gather(mask, active),
            )
            next_ids = np.argmax(np.asarray(logits), axis=-1).astype("int32")
            for row, token in zip(active, next_ids):
                outputs[row].append(int(token))
            keep = next_ids != tokenizer.end_id
            active = active[keep]
            prefix = np.concatenate([prefix, next_ids[:, None]], 1)[keep]
            if not len(active):
                break
        strings = tokenizer.detokenize(tf.constant(pad_batch(outputs)))
        for i, text in zip(rows, strings.numpy()):
            results[i] = text.decode("utf-8")
    return results


def run_translation_side(side, tokenizer_path, minutes, tiny, test_sentences):
    import keras
    from keras_transformer.applications.translation import (
        transformer_seq2seq,
    )

    from keras_transformer.data.translation import (
        count_target_tokens,
        make_translation_dataset,
    )
    from keras_transformer.inference import Translator
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.metrics import corpus_bleu
    from keras_transformer.optimizers import transformer_adam
    from keras_transformer.tokenizers import SubwordTokenizer

    settings = _settings("translation", tiny)
    config = settings["config"]
    keras.utils.set_random_seed(SEED)
    tokenizer = SubwordTokenizer.load(tokenizer_path)
    config["vocabulary_size"] = tokenizer.vocabulary_size
    max_length = config["max_sequence_length"]
    sources, targets, test_sources, test_targets = _translation_data(
        settings, test_sentences
    )
    dataset = make_translation_dataset(
        sources,
        targets,
        tokenizer,
        batch_size=settings["batch_size"],
        max_length=max_length,
        seed=SEED,
        repeat=True,
    )
    tokens_per_pair = count_target_tokens(targets, tokenizer, max_length) / len(
        targets
    )
    if side == "keras_transformer":
        model = transformer_seq2seq(**config)
    else:
        hub = HubSeq2Seq(config)
        model = hub.build_model()
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"],
            warmup_steps=settings["warmup_steps"],
            scale=settings["learning_rate_scale"],
        ),
        loss=MaskedSparseCategoricalCrossentropy(
            label_smoothing=settings["label_smoothing"]
        ),
        jit_compile=settings["jit_compile"],
    )
    steps, seconds, loss = _fit(model, dataset, minutes)
    start = time.monotonic()
    if side == "keras_transformer":
        translator = Translator(
            model, tokenizer, max_length=max_length, jit_compile=False
        )
        hypotheses = translator.translate(test_sources)
        beam = corpus_bleu(
            translator.translate(test_sources, num_beams=4), test_targets
        )
        extra = {
            "bleu_beam4": float(beam["bleu"]),
            "chrf_beam4": float(beam["chrf"]),
        }
    else:
        extra = {}  # no cached beam search on the KerasHub side
        hypotheses = hub_greedy_translate(
            hub, tokenizer, test_sources, max_length
        )
    scores = corpus_bleu(hypotheses, test_targets)
    return {
        "implementation": side,
        "params": int(model.count_params()),
        "steps": steps,
        "train_seconds": seconds,
        "target_tokens_per_s": (
            steps * settings["batch_size"] * tokens_per_pair / seconds
        ),
        "mean_train_loss": loss,
        "bleu": float(scores["bleu"]),
        "chrf": float(scores["chrf"]),
        "test_sentences": len(test_sources),
        "eval_seconds": time.monotonic() - start,
        **extra,
        "samples": [
            {"source": s, "reference": r, "hypothesis": h}
            for s, r, h in list(zip(test_sources, test_targets, hypotheses))[:3]
        ],
    }


# ---------------------------------------------------------------------------
# GPT.


def _lm_texts(settings):
    from keras_transformer.data.loaders import load_bundled_lm_text

    train = load_bundled_lm_text("train")
    test = load_bundled_lm_text("test")
    if settings["max_train"]:
        train = train[: settings["max_train"]]
    if settings["max_test"]:
        test = test[: settings["max_test"]]
    return train, test


def run_gpt_side(side, tokenizer_path, minutes, tiny):
    import keras
    from keras_transformer.applications.gpt import gpt_lm

    from keras_transformer.data import lm as lm_data
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.metrics import Perplexity
    from keras_transformer.optimizers import transformer_adam
    from keras_transformer.tokenizers import SubwordTokenizer

    settings = _settings("gpt", tiny)
    config = settings["config"]
    keras.utils.set_random_seed(SEED)
    tokenizer = SubwordTokenizer.load(tokenizer_path)
    config["vocabulary_size"] = tokenizer.vocabulary_size
    length = config["max_sequence_length"]
    batch_size = settings["batch_size"]
    train_texts, test_texts = _lm_texts(settings)
    windows = lm_data.pack_windows(
        lm_data.tokenize_texts(train_texts, tokenizer), length
    )
    dataset = lm_data.lm_dataset(
        windows, batch_size, shuffle=True, seed=SEED, drop_remainder=True
    ).repeat()
    test_data, _, test_tokens = lm_data.text_lm_dataset(
        test_texts, tokenizer, length, batch_size
    )
    if side == "keras_transformer":
        model = gpt_lm(**config)
        compile_kwargs = {}
    else:
        import keras_hub

        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=config["vocabulary_size"],
            num_layers=config["num_layers"],
            num_heads=config["num_heads"],
            hidden_dim=config["hidden_dim"],
            intermediate_dim=config["intermediate_dim"],
            dropout=config["dropout"],
            max_sequence_length=length,
        )
        model = keras_hub.models.GPT2CausalLM(
            backbone=backbone, preprocessor=None
        )
        compile_kwargs = {"weighted_metrics": []}
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"],
            warmup_steps=settings["warmup_steps"],
            scale=settings["learning_rate_scale"],
            clipnorm=1.0,
        ),
        loss=MaskedSparseCategoricalCrossentropy(),
        metrics=[Perplexity()],
        jit_compile=settings["jit_compile"],
        **compile_kwargs,
    )
    steps, seconds, loss = _fit(model, dataset, minutes)
    start = time.monotonic()
    results = model.evaluate(test_data, return_dict=True, verbose=0)
    return {
        "implementation": side,
        "params": int(model.count_params()),
        "steps": steps,
        "train_seconds": seconds,
        "tokens_per_s": steps * batch_size * length / seconds,
        "mean_train_loss": loss,
        "test_perplexity": float(results["perplexity"]),
        "test_tokens": int(test_tokens),
        "eval_seconds": time.monotonic() - start,
    }


# ---------------------------------------------------------------------------
# Shared.


def _fit(model, dataset, minutes):
    """Trains until the wall-clock budget.

    Returns:
        `(steps, seconds, loss)`, where `loss` is Keras' running mean of
        the training loss over the whole (single-epoch) run.
    """
    import keras

    from keras_transformer.training import TimeBudget

    start = time.monotonic()
    history = model.fit(
        dataset,
        epochs=1,
        steps_per_epoch=10**7,
        callbacks=[TimeBudget(minutes)],
        verbose=0,
    )
    seconds = time.monotonic() - start
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    loss = history.history.get("loss", [float("nan")])[-1]
    return steps, seconds, float(loss)


def _train_tokenizer(task, tiny, path):
    from keras_transformer.tokenizers import (
        SubwordTokenizer,
        train_sentencepiece,
    )

    settings = _settings(task, tiny)
    if task == "translation":
        sources, targets, _, _ = _translation_data(settings, 0)
        texts = sources + targets
    else:
        texts, _ = _lm_texts(settings)
    proto = train_sentencepiece(
        texts, settings["config"]["vocabulary_size"], seed=SEED
    )
    SubwordTokenizer(proto).save(path)


def _worker(args):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if args.task == "translation":
        result = run_translation_side(
            args.side,
            args.tokenizer,
            args.minutes,
            args.tiny,
            args.test_sentences,
        )
    else:
        result = run_gpt_side(
            args.side, args.tokenizer, args.minutes, args.tiny
        )
    with open(args.worker_output, "w") as f:
        json.dump(result, f, indent=2)


def run_pair(task, minutes, tiny, test_sentences, workdir):
    """Trains the tokenizer, then both sides at once in two subprocesses."""
    tokenizer_path = os.path.join(workdir, f"{task}_tokenizer.model")
    start = time.monotonic()
    _train_tokenizer(task, tiny, tokenizer_path)
    print(f"[{task}] tokenizer trained in {time.monotonic() - start:.0f} s")
    env = dict(
        os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1"
    )
    procs = {}
    for side in SIDES:
        output = os.path.join(workdir, f"{task}_{side}.json")
        log = open(os.path.join(workdir, f"{task}_{side}.log"), "w")
        command = [
            sys.executable,
            "-m",
            "benchmarks.quality",
            "--worker-side",
            side,
            "--worker-output",
            output,
            "--tokenizer",
            tokenizer_path,
            "--task",
            task,
            "--minutes",
            str(minutes),
            "--test-sentences",
            str(test_sentences),
            *(["--tiny"] if tiny else []),
        ]
        procs[side] = (
            subprocess.Popen(command, env=env, stdout=log, stderr=log),
            output,
            log,
        )
    print(f"[{task}] training both sides for {minutes} min at once ...")
    results = {}
    for side, (proc, output, log) in procs.items():
        code = proc.wait()
        log.close()
        if code != 0:
            with open(log.name) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(
                f"{task} worker {side} failed (exit {code}):\n{tail}"
            )
        with open(output) as f:
            results[side] = json.load(f)
    return results


def _summary(task, results):
    ours, hub = results["keras_transformer"], results["keras_hub"]
    if task == "translation":
        return {
            "bleu_difference": ours["bleu"] - hub["bleu"],
            "bleu_ratio": ours["bleu"] / hub["bleu"] if hub["bleu"] else None,
            "steps_ratio": ours["steps"] / max(hub["steps"], 1),
            "tokens_per_s_ratio": ours["target_tokens_per_s"]
            / hub["target_tokens_per_s"],
        }
    return {
        # Lower perplexity is better: > 1 means ours is better.
        "perplexity_ratio_keras_hub_over_ours": hub["test_perplexity"]
        / ours["test_perplexity"],
        "steps_ratio": ours["steps"] / max(hub["steps"], 1),
        "tokens_per_s_ratio": ours["tokens_per_s"] / hub["tokens_per_s"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", choices=(*TASKS, "both"), default="both")
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--test-sentences", type=int, default=300)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--worker-side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        raise ValueError(
            f"--minutes must be positive. Received: minutes={args.minutes}"
        )
    if args.worker_side:
        args.side = args.worker_side
        return _worker(args)

    tasks = TASKS if args.task == "both" else (args.task,)
    payload = {
        "minutes": args.minutes,
        "test_sentences": args.test_sentences,
        "threads_per_side": 1,
        "settings": {
            task: {
                k: v
                for k, v in _settings(task, args.tiny).items()
                if k != "model"
            }
            for task in tasks
        },
    }
    name = "quality" + ("_tiny" if args.tiny else "")
    with tempfile.TemporaryDirectory() as workdir:
        for task in tasks:
            results = run_pair(
                task, args.minutes, args.tiny, args.test_sentences, workdir
            )
            summary = _summary(task, results)
            payload[task] = {"rows": list(results.values()), **summary}
            metric = "bleu" if task == "translation" else "test_perplexity"
            speed = (
                "target_tokens_per_s"
                if task == "translation"
                else "tokens_per_s"
            )
            columns = ["implementation", "params", "steps", speed]
            columns += ["mean_train_loss", metric]
            if task == "translation":
                columns.append("chrf")
            common.print_table(
                f"Quality at equal budget: {task}, {args.minutes:g} min "
                "each, 1 thread each, run at the same time",
                list(results.values()),
                columns,
            )
            print("  ".join(f"{k}={_round(v)}" for k, v in summary.items()))
            # Written after every pair, so a failure keeps finished pairs.
            path = common.write_results(name, payload)
            print(f"wrote {path}")
    return payload


def _round(value):
    if isinstance(value, float) and math.isfinite(value):
        return round(value, 3)
    return value


if __name__ == "__main__":
    main()
