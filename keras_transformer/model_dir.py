"""The model directory: file names, one metadata schema, atomic writes.

Every application (translation, GPT, classifier, masked-LM pretraining)
writes the same layout:

    DIR/model.keras       the trained Keras model (best by validation)
    DIR/tokenizer.model   the SentencePiece model of its text
    DIR/metadata.json     the metadata below; written last, so its presence
                          marks a complete directory
    DIR/README.md         the model card (what, how trained, figures, use)
    DIR/run.json          the settings of the run, written when it starts;
                          a resumed run must ask for the same ones
    DIR/logs/             TensorBoard logs
    DIR/backup/           resume state while a run is unfinished

Metadata keys, the same for every application (`METADATA_KEYS`):

- `task`: "translation", "gpt", "classifier" or "bert-pretrain".
- `application`: the function in `keras_transformer.applications` that
  builds the model, e.g. "translation.transformer_seq2seq".
- `config`: that function's keyword arguments.
- `settings`: the training settings of the run (preset, batch size,
  warmup, seed, ...): the values `run.json` holds.
- `tokenizer`: {"file", "vocabulary_size", "type"}.
- `data`: where the data came from and how much of it there was.
- `inference`: what the inference objects need besides the model and the
  tokenizer (class names, maximum lengths).
- `train_seconds`, `steps`, `metrics` (validation and test figures).
- `parent`: what it was fine-tuned or averaged from, or None.
- `keras_transformer_version`, `git_commit` (None outside a checkout).

Every file is written to a temporary name and renamed into place, so a
killed job never leaves a half-written file where a good one was.
"""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.model"
CARD_FILE = "README.md"
RUN_FILE = "run.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"

TASKS = {
    "translation": "translation.transformer_seq2seq",
    "gpt": "gpt.gpt_lm",
    "classifier": "bert.bert_classifier",
    "bert-pretrain": "bert.bert_masked_lm",
}
METADATA_KEYS = (
    "task",
    "application",
    "config",
    "settings",
    "tokenizer",
    "data",
    "inference",
    "train_seconds",
    "steps",
    "metrics",
    "parent",
    "keras_transformer_version",
    "git_commit",
)


class ModelDirectoryError(ValueError):
    """A model directory is missing, incomplete or of another application."""


class ResumeMismatchError(ValueError):
    """A resumed run asks for other settings than the ones recorded."""


# ---------------------------------------------------------------------------
# Atomic writes.


def atomic_write_bytes(path, data):
    """Writes bytes to `path` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, obj):
    """Writes `obj` as indented JSON to `path`, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_save_model(model, path):
    """Saves a Keras model to `path` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(
        prefix=".tmp-", suffix=".keras", dir=directory
    )
    os.close(handle)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_directory(final_dir, overwrite=False):
    """Yields a temporary directory that replaces `final_dir` on success.

    On an exception the temporary directory is removed and `final_dir` is
    left as it was.

    Args:
        final_dir: str, the directory to create.
        overwrite: bool, default False. Replace an existing `final_dir`;
            otherwise an existing one is an error, also when another
            process creates it while this one writes.
    """
    final_dir = os.path.abspath(final_dir)
    if os.path.exists(final_dir) and not overwrite:
        raise FileExistsError(
            f"{final_dir} already exists; choose another path or pass "
            "overwrite=True (`--overwrite` on the command line)."
        )
    parent = os.path.dirname(final_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix=f".tmp-{os.path.basename(final_dir)}-", dir=parent
    )
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(final_dir) and not overwrite:
        # Created by someone else while we wrote: keep theirs.
        shutil.rmtree(tmp, ignore_errors=True)
        raise FileExistsError(
            f"{final_dir} was created while this copy was being written; "
            "it is left as it is."
        )
    old = None
    if os.path.exists(final_dir):
        old = tempfile.mkdtemp(prefix=".old-", dir=parent)
        os.rmdir(old)
        os.replace(final_dir, old)
    os.replace(tmp, final_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------
# Metadata.


def git_commit():
    """The commit of the checkout this package runs from, or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def make_metadata(
    task,
    *,
    config,
    settings,
    tokenizer,
    data,
    inference,
    train_seconds,
    steps,
    metrics,
    parent=None,
    application=None,
):
    """The metadata dict of a model directory, every key present.

    Args:
        task: str, one of `TASKS`.
        config: dict, the keyword arguments of the application function.
        settings: dict, the training settings of the run.
        tokenizer: dict, at least `vocabulary_size`.
        data: dict, where the data came from and how much there was.
        inference: dict, what the inference objects need (class names,
            maximum lengths).
        train_seconds: float or None, time spent in training steps.
        steps: int, optimizer steps taken.
        metrics: dict of final figures.
        parent: None (default), a str (the directory or preset this one
            was fine-tuned from) or a list of str (the members an average
            or ensemble was made of).
        application: None (default: the task's usual function, see
            `TASKS`) or the name of the function in
            `keras_transformer.applications` that built the model, e.g.
            "bert.ngram_classifier".

    Returns:
        A dict with exactly the keys of `METADATA_KEYS`.
    """
    from keras_transformer import __version__

    if task not in TASKS:
        raise ValueError(
            f"`task` must be one of {sorted(TASKS)}. Received: task={task!r}"
        )
    return {
        "task": task,
        "application": application or TASKS[task],
        "config": dict(config or {}),
        "settings": dict(settings or {}),
        "tokenizer": {"file": TOKENIZER_FILE, "type": "sentencepiece"}
        | dict(tokenizer or {}),
        "data": dict(data or {}),
        "inference": dict(inference or {}),
        "train_seconds": (
            None if train_seconds is None else round(float(train_seconds), 1)
        ),
        "steps": int(steps or 0),
        "metrics": dict(metrics or {}),
        "parent": list(parent) if isinstance(parent, (list, tuple)) else parent,
        "keras_transformer_version": __version__,
        "git_commit": git_commit(),
    }


def write_metadata(model_dir, metadata, final_dir=None):
    """Writes `metadata.json` and the model card `README.md`.

    The card first, the metadata last: its presence marks a complete
    directory.

    Args:
        model_dir: str, the model directory.
        metadata: dict from `make_metadata`.
        final_dir: None (default: `model_dir`) or str, the path the card's
            commands name, for a directory written in a temporary place
            (`atomic_directory`) and renamed afterwards.
    """
    missing = [k for k in METADATA_KEYS if k not in metadata]
    extra = [k for k in metadata if k not in METADATA_KEYS]
    if missing or extra:
        raise ValueError(
            "`metadata` must have exactly the keys of METADATA_KEYS. "
            f"Received: missing={missing}, extra={extra}"
        )
    from keras_transformer.model_card import model_card

    atomic_write_bytes(
        os.path.join(model_dir, CARD_FILE),
        model_card(metadata, final_dir or model_dir).encode("utf-8"),
    )
    write_json_atomic(os.path.join(model_dir, METADATA_FILE), metadata)


def read_metadata(model_dir, expected_tasks=None):
    """Reads a model directory's metadata with clear errors.

    Args:
        model_dir: str, the directory written by a `train` command.
        expected_tasks: None (default), a task name or a tuple of names;
            another task is an error.

    Returns:
        The metadata dict.

    Raises:
        ModelDirectoryError: missing, unfinished, invalid JSON, another
            task.
    """
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise ModelDirectoryError(
            f"Model directory not found: {model_dir}. Expected a directory "
            "written by `keras-transformer train`."
        )
    path = os.path.join(model_dir, METADATA_FILE)
    if not os.path.exists(path):
        raise ModelDirectoryError(
            f"{model_dir} is not a keras_transformer model directory "
            f"(no {METADATA_FILE}); was training interrupted before it "
            "finished? Run the same `train` command again to resume."
        )
    with open(path, encoding="utf-8") as f:
        try:
            metadata = json.load(f)
        except json.JSONDecodeError as error:
            raise ModelDirectoryError(
                f"{path} is not valid JSON: {error}"
            ) from None
    if isinstance(expected_tasks, str):
        expected_tasks = (expected_tasks,)
    task = metadata.get("task")
    if expected_tasks and task not in expected_tasks:
        raise ModelDirectoryError(
            f"{model_dir} holds a {task!r} model, but this needs one of "
            f"{', '.join(map(repr, expected_tasks))}."
        )
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise ModelDirectoryError(
            f"{path} lacks the keys {missing}: it was written by an older "
            "keras_transformer; train it again with this version."
        )
    return metadata


def check_files(model_dir, names=(MODEL_FILE, TOKENIZER_FILE)):
    """Raises `ModelDirectoryError` naming the first missing file."""
    for name in names:
        if not os.path.exists(os.path.join(model_dir, name)):
            raise ModelDirectoryError(
                f"{model_dir} has no {name}; was training interrupted?"
            )


def load_model(model_dir, metadata=None):
    """The directory's Keras model (uncompiled).

    `metadata` (already read) saves reading `metadata.json` again for its
    `inference.quantization` (int8 weights) and `inference.lora` (an
    adapters-only directory, rebuilt on its parent: `keras_transformer.lora`).
    """
    import keras

    import keras_transformer.layers  # noqa: F401  (registers the layers)

    path = os.path.join(model_dir, MODEL_FILE)
    if metadata is None:
        metadata = _read_metadata_quietly(model_dir)
    inference = metadata.get("inference") if metadata else None
    inference = inference if isinstance(inference, dict) else {}
    if _adapters_only(model_dir, inference):
        return _load_adapted_model(model_dir, inference["lora"])
    check_files(model_dir, (MODEL_FILE,))
    quantization = inference.get("quantization")
    if quantization:
        from keras_transformer._quantize import load_quantized_model

        return load_quantized_model(path, quantization)
    return keras.saving.load_model(path, compile=False)


def _adapters_only(model_dir, inference):
    """Whether the directory holds LoRA adapters only (no `model.keras`)."""
    lora = inference.get("lora")
    return (
        isinstance(lora, dict)
        and bool(lora.get("adapters"))
        and not os.path.exists(os.path.join(model_dir, MODEL_FILE))
    )


def _load_adapted_model(model_dir, entry):
    """The merged model of an adapters-only directory: its architecture
    and adapters on top of the parent directory's weights."""
    from keras_transformer import lora as lora_lib

    parent = entry["parent"]
    if not os.path.isdir(parent):
        raise ModelDirectoryError(
            f"{model_dir} holds LoRA adapters of {parent}, which is gone; "
            "restore it or retrain with lora_save='merged'."
        )
    check_files(model_dir, (lora_lib.ARCHITECTURE_FILE, entry["adapters"]))
    with open(
        os.path.join(model_dir, lora_lib.ARCHITECTURE_FILE), encoding="utf-8"
    ) as f:
        config = json.load(f)
    adapters = lora_lib.read_npz(os.path.join(model_dir, entry["adapters"]))
    return lora_lib.rebuild(config, load_model(parent), adapters, entry)


def _read_metadata_quietly(model_dir):
    """The directory's metadata dict, or None where there is none."""
    path = os.path.join(model_dir, METADATA_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    return metadata if isinstance(metadata, dict) else None


def load_tokenizer(model_dir):
    """The directory's `SubwordTokenizer`."""
    from keras_transformer.tokenizers import SubwordTokenizer

    check_files(model_dir, (TOKENIZER_FILE,))
    return SubwordTokenizer.load(os.path.join(model_dir, TOKENIZER_FILE))


def open_model_dir(model_dir, expected_tasks=None):
    """Reads metadata, model and tokenizer of a model directory.

    Args:
        model_dir: str, the directory.
        expected_tasks: None or the task name(s) accepted.

    Returns:
        `(metadata, model, tokenizer)`.
    """
    metadata = read_metadata(model_dir, expected_tasks)
    inference = metadata.get("inference")
    inference = inference if isinstance(inference, dict) else {}
    if _adapters_only(model_dir, inference):
        check_files(model_dir, (TOKENIZER_FILE,))
    else:
        check_files(model_dir)
    return (
        metadata,
        load_model(model_dir, metadata),
        load_tokenizer(model_dir),
    )


# ---------------------------------------------------------------------------
# Resuming.


def flag_name(name):
    """`batch_size` -> `--batch-size`, as the command line spells it."""
    return "--" + name.replace("_", "-")


def check_resume(model_dir, settings, force=False):
    """Records the run's settings, or checks them against a resumed run's.

    The first run of a directory writes `run.json`. A later run of the same
    directory (resuming, or training further) must ask for the same
    settings; each difference is named. `force=True` accepts the new
    settings and records them.

    Args:
        model_dir: str, the model directory.
        settings: dict of JSON-serializable training settings.
        force: bool, default False. Accept differing settings.

    Returns:
        The settings recorded before, or None on a first run.

    Raises:
        ResumeMismatchError: the settings differ and `force` is False.
    """
    path = os.path.join(model_dir, RUN_FILE)
    settings = json.loads(json.dumps(settings))  # tuples -> lists
    previous = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f).get("settings", {})
        names = sorted(set(previous) | set(settings))
        differences = [
            f"{flag_name(n)} was {previous.get(n)!r}, now {settings.get(n)!r}"
            for n in names
            if previous.get(n) != settings.get(n)
        ]
        if differences and not force:
            raise ResumeMismatchError(
                f"{model_dir} was trained with other settings: "
                + "; ".join(differences)
                + ". Use another output directory, repeat the recorded "
                "settings, or pass force=True (`--force`) to continue with "
                "the new ones."
            )
    os.makedirs(model_dir, exist_ok=True)
    write_json_atomic(path, {"settings": settings})
    return previous
