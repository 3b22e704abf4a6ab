"""Fine-tuning a model directory (`init_from`), fully or with LoRA.

Every training runner of translation, GPT and the classifier takes
- `init_from`: str or None (default), a directory of the same task;
- `lora_rank`: int or None (default). With `init_from`, train rank-R LoRA
  adapters of every Dense and EinsumDense layer (and a new classifier
  head) only; every other weight stays bitwise as it was;
- `lora_alpha`: float or None (default: `lora_rank`), the LoRA scale;
- `lora_save`: "merged" (default: an ordinary model, the adapters added
  into the kernels) or "adapters" (only the trained variables, loaded on
  top of `init_from`, which must stay where it is).

The run keeps the parent's tokenizer (copied into the new
directory), its architecture and its weights, compiles a fresh optimizer
and trains on the user's data; the metadata's `parent` names the
directory. With `lora_rank` only adapters (and a new classification head)
train; see `keras_transformer.lora`.
"""

import logging
import os
import shutil

from keras_transformer import lora as lora_lib
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.tasks import _common

logger = logging.getLogger(__name__)


def check_arguments(init_from, lora_rank, lora_alpha, lora_save):
    """Raises `ValueError` naming a bad fine-tuning argument."""
    _common.check_positive(
        integers=[("lora_rank", lora_rank)],
        numbers=[("lora_alpha", lora_alpha)],
    )
    if lora_save not in lora_lib.LORA_SAVE_MODES:
        raise ValueError(
            f"`lora_save` must be one of {lora_lib.LORA_SAVE_MODES}. "
            f"Received: lora_save={lora_save!r}"
        )
    if init_from is None and (lora_rank is not None or lora_alpha is not None):
        raise ValueError(
            "`lora_rank` and `lora_alpha` need `init_from` (the model whose "
            f"weights the adapters adapt). Received: lora_rank={lora_rank!r}"
        )
    if lora_rank is None and lora_save != "merged":
        raise ValueError(
            "`lora_save='adapters'` needs `lora_rank`. Received: "
            f"lora_save={lora_save!r}"
        )


def resolve(init_from, task):
    """`(absolute directory, metadata)` of the parent, or `(None, None)`.

    Raises:
        FileNotFoundError: `init_from` is not a directory.
        ModelDirectoryError: it is not a finished directory of `task`.
        ValueError: it is quantized (fine-tune the float original).
    """
    if init_from is None:
        return None, None
    directory = os.path.abspath(os.fspath(init_from))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"`init_from` must be a model directory. Received: "
            f"init_from={init_from!r}"
        )
    metadata = model_dir_lib.read_metadata(directory, task)
    if metadata["inference"].get("quantization"):
        raise ValueError(
            f"{directory} is quantized "
            f"({metadata['inference']['quantization']}); fine-tune its float "
            f"original ({metadata.get('parent')}) and quantize the result."
        )
    model_dir_lib.check_files(directory, (model_dir_lib.TOKENIZER_FILE,))
    return directory, metadata


def copy_tokenizer(parent_dir, output_dir):
    """The parent's tokenizer becomes the run's (a resumed run keeps its
    copy)."""
    target = os.path.join(output_dir, model_dir_lib.TOKENIZER_FILE)
    if not os.path.exists(target):
        os.makedirs(output_dir, exist_ok=True)
        tmp = target + ".tmp"
        shutil.copyfile(
            os.path.join(parent_dir, model_dir_lib.TOKENIZER_FILE), tmp
        )
        os.replace(tmp, target)


def adapt(model, settings, train_layers=()):
    """Enables LoRA when `settings["lora_rank"]` is set.

    Returns:
        The `inference["lora"]` entry of the metadata (with the trainable
        parameter count), or None for full fine-tuning.
    """
    rank = settings.get("lora_rank")
    if rank is None:
        return None
    alpha = settings.get("lora_alpha")
    summary = lora_lib.enable_lora(model, rank, alpha, train_layers)
    logger.info(
        "LoRA rank %d: %d adapted layers; %d of %d parameters train (%.2f%%).",
        rank,
        summary["adapted_layers"],
        summary["trainable_parameters"],
        summary["parameters"],
        100 * summary["trainable_parameters"] / summary["parameters"],
    )
    return {
        "rank": int(rank),
        "alpha": float(alpha if alpha is not None else rank),
        "train_layers": list(train_layers),
        "save": settings.get("lora_save") or "merged",
        **summary,
    }


def run_fit_options(lora, output_dir, backup_every_steps=None):
    """`run_fit` keyword arguments of a LoRA run (none for full
    fine-tuning): the exact-resume callback, and the best epoch's
    adapters saved with each best model."""
    if lora is None:
        return {}
    resume = LoraResume(
        os.path.join(output_dir, model_dir_lib.BACKUP_DIR), backup_every_steps
    )

    def on_best(model):
        model_dir_lib.atomic_write_bytes(
            os.path.join(output_dir, lora_lib.ADAPTERS_FILE),
            lora_lib.npz_bytes(
                lora_lib.variable_values(model.trainable_variables)
            ),
        )

    return {"lora_callbacks": (resume, on_best)}


def parent_model(parent_dir, settings):
    """The parent directory's model, LoRA adapters added when asked:
    `(model, lora)` (see `adapt`)."""
    model = model_dir_lib.load_model(parent_dir)
    return model, adapt(model, settings)


def finish(output_dir, lora, metadata=None):
    """After the metadata is written: the final form of a LoRA directory.

    Merged: `model.keras` rewritten without adapter layers (the merge is
    already in its kernels). Adapters: only the trained variables and the
    architecture stay, on top of the parent (`inference["lora"]["parent"]`).

    Returns:
        `metadata`, for the runner to return.
    """
    path = os.path.join(output_dir, model_dir_lib.MODEL_FILE)
    if lora is None or not os.path.exists(path):
        return metadata  # full fine-tuning, or a finished rerun
    import keras

    import keras_transformer.layers  # noqa: F401  (registers the layers)

    model = keras.saving.load_model(path, compile=False)
    if lora["save"] == "adapters":
        # The best epoch's adapters are saved (`lora_callbacks`); the
        # architecture goes beside them, then the merged model goes (the
        # metadata already names the adapters: the directory loads at
        # every point).
        config = lora_lib.strip_lora(keras.saving.serialize_keras_object(model))
        model_dir_lib.write_json_atomic(
            os.path.join(output_dir, lora_lib.ARCHITECTURE_FILE), config
        )
        os.remove(path)
    else:
        model_dir_lib.atomic_save_model(lora_lib.merged(model), path)
    return metadata


def record(entries, lora, parent_dir):
    """Puts the parent and the LoRA entry into a runner's metadata entries
    (`entries["inference"]` must exist)."""
    entries["parent"] = parent_dir
    if lora is not None:
        entries["inference"]["lora"] = inference_entry(lora, parent_dir)


def inference_entry(lora, parent_dir):
    """`inference["lora"]` as recorded: the parent for adapters-only."""
    if lora is None:
        return None
    entry = dict(lora)
    if entry["save"] == "adapters":
        entry["parent"] = parent_dir
        entry["adapters"] = lora_lib.ADAPTERS_FILE
    return entry


def classifier_architecture(parent_dir, parent, architecture, pretrained):
    """The architecture of an `init_from` run: the parent's."""
    kept = parent["inference"].get("architecture") or {
        "bert.bert_classifier": "bert",
        "bert.ngram_classifier": "ngram",
    }.get(parent.get("application"))
    if kept not in ("bert", "ngram"):
        raise ValueError(
            f"{parent_dir} is a {kept!r} classifier; `init_from` takes a "
            "'bert' or 'ngram' one (an 'auto' run keeps both in its "
            "`candidates/` directory)."
        )
    if architecture not in ("auto", kept):
        raise ValueError(
            f"`architecture` must be {kept!r} (or 'auto') to fine-tune "
            f"{parent_dir}. Received: architecture={architecture!r}"
        )
    if pretrained is not None:
        raise ValueError(
            "`init_from` and `pretrained` exclude each other: the parent "
            f"classifier has its encoder. Received: pretrained={pretrained!r}"
        )
    return kept


def _backbone(config):
    """The encoder's kwargs in a classifier config (either spelling of
    `bert_classifier`'s first argument)."""
    return config.get("backbone") or config["backbone_or_kwargs"]


def classifier_from_parent(parent_dir, parent, class_names, settings, loss):
    """The parent classifier, compiled afresh: `(model, config, lora)`.

    With other labels than the parent's (or another order), a new model of
    the parent's architecture gets every weight but the `logits` layer's.
    """
    from keras_transformer.applications.bert import (
        bert_classifier,
        ngram_classifier,
    )
    from keras_transformer.tasks import _bert

    source = model_dir_lib.load_model(parent_dir, parent)
    config = dict(parent["config"])
    ngram = settings["architecture"] == "ngram"
    if list(class_names) == list(parent["inference"]["class_names"]):
        model, head = source, ()
    else:
        config["num_classes"] = len(class_names)
        if ngram:
            model = ngram_classifier(**config)
        else:
            model = bert_classifier(
                _backbone(config),
                config["num_classes"],
                dropout=config.get("dropout", 0.1),
                pooling=config.get("pooling", "first"),
            )
        for layer in model.layers:
            if layer.name != "logits" and layer.weights:
                layer.set_weights(source.get_layer(layer.name).get_weights())
        head = ("logits",)
        logger.info(
            "The labels differ from %s's %s: a new output layer for %s.",
            parent_dir,
            parent["inference"]["class_names"],
            list(class_names),
        )
    lora = adapt(model, settings, head)
    hidden = (
        config["embedding_dim"] if ngram else _backbone(config)["hidden_dim"]
    )
    _bert._compile_classifier(model, hidden, settings, loss)
    return model, config, lora


def _lora_resume_class():
    import keras

    class LoraResume(keras.callbacks.Callback):
        """Keeps the exact model and optimizer variables of a LoRA run
        beside its Keras backup (`lora.STATE_FILE`), and puts them back
        when a run resumes: Keras' own backup merges each adapter into
        its kernel and zeroes both factors on reload."""

        def __init__(self, backup_dir, save_every_steps=None):
            super().__init__()
            self.path = os.path.join(backup_dir, lora_lib.STATE_FILE)
            self.save_every_steps = save_every_steps
            self._restored = False
            self._batches = 0

        def on_train_batch_end(self, batch, logs=None):
            # At the steps `AtomicBackupAndRestore` backs up at too.
            self._batches += 1
            if self.save_every_steps and (
                self._batches % self.save_every_steps == 0
            ):
                self._save()

        def on_epoch_begin(self, epoch, logs=None):
            # After `BackupAndRestore.on_train_begin` has loaded its
            # (merged) weights and optimizer state.
            if self._restored or not os.path.exists(self.path):
                self._restored = True
                return
            values = lora_lib.read_npz(self.path)
            for part, variables in self._parts():
                for variable in lora_lib.weights_of(variables):
                    key = f"{part}/{variable.path}"
                    if key in values:
                        variable.assign(values[key])
            self._restored = True

        def on_epoch_end(self, epoch, logs=None):
            self._save()

        def _parts(self):
            return (
                ("model", self.model.variables),
                ("optimizer", self.model.optimizer.variables),
            )

        def _save(self):
            arrays = {}
            for part, variables in self._parts():
                values = lora_lib.variable_values(variables)
                arrays.update({f"{part}/{k}": v for k, v in values.items()})
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            model_dir_lib.atomic_write_bytes(
                self.path, lora_lib.npz_bytes(arrays)
            )

    return LoraResume


def LoraResume(backup_dir, save_every_steps=None):  # noqa: N802
    """The exact-resume callback of a LoRA run (its class is built on
    first use: importing this module imports no Keras)."""
    return _lora_resume_class()(backup_dir, save_every_steps)
