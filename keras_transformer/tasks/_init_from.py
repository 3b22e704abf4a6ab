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
    fine-tuning): the exact-resume callback and the adapters' saver."""
    if lora is None:
        return {}
    resume, on_best = lora_lib.lora_callbacks(output_dir, backup_every_steps)
    return {"lora_callbacks": (resume, on_best)}


def finish(output_dir, lora):
    """After the metadata is written: the final form of a LoRA directory.

    Merged: `model.keras` rewritten without adapter layers (the merge is
    already in its kernels). Adapters: only the trained variables and the
    architecture stay, on top of the parent (`inference["lora"]["parent"]`).
    """
    if lora is None:
        return
    path = os.path.join(output_dir, model_dir_lib.MODEL_FILE)
    if not os.path.exists(path):
        return  # already an adapters directory (a finished rerun)
    import keras

    import keras_transformer.layers  # noqa: F401  (registers the layers)

    model = keras.saving.load_model(path, compile=False)
    if lora["save"] == "adapters":
        lora_lib.write_adapters_directory(
            output_dir,
            model,
            os.path.join(output_dir, lora_lib.ADAPTERS_FILE),
        )
    else:
        model_dir_lib.atomic_save_model(lora_lib.merged(model), path)


def inference_entry(lora, parent_dir):
    """`inference["lora"]` as recorded: the parent for adapters-only."""
    if lora is None:
        return None
    entry = dict(lora)
    if entry["save"] == "adapters":
        entry["parent"] = parent_dir
        entry["adapters"] = lora_lib.ADAPTERS_FILE
    return entry
