"""Combining classifier directories: weight averages and ensembles.

`average_classifiers` writes one ordinary classifier directory (task
"classifier", see `keras_transformer.model_dir`) from two or more:
`keras_transformer.load`, `evaluate_classifier` and `export` work on it
unchanged. Its metadata lists the members: `parent` holds their
directories, and for an ensemble `inference["members"]` too, with their
architectures and configs in `config["members"]`.
"""

import os

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.tasks import _bert

TASK = "classifier"
AVERAGE_MODES = ("weights", "probabilities")


def average_classifiers(model_dirs, output, overwrite=False, mode="weights"):
    """Combines classifiers into one classifier directory.

    Two ways (`mode`):
    - `"weights"`: the mean of their weights, a "model soup" (Wortsman et
      al., 2022). Needs classifiers fine-tuned from the same pretrained
      encoder with the same architecture; the result is one model of the
      same size. Check it on validation data: soups of models whose heads
      started from different random weights can be worse than each member
      (on the genre task they were; see the README).
    - `"probabilities"`: an ensemble (`applications.bert.bert_ensemble`)
      whose output is the mean of the members' class probabilities; the
      members may differ in size or architecture (an n-gram model joins a
      fine-tuned encoder) but must share the tokenizer, the class list and
      the sequence length. Classifying costs the sum of the members. On the
      genre task two fine-tunes averaged this way gain about half a point
      of test accuracy over one.

    Args:
        model_dirs: list of str, two or more classifier directories.
        output: str, the new classifier directory (written atomically).
        overwrite: bool, default False. Replace an existing `output`.
        mode: str, default "weights". One of `AVERAGE_MODES`.

    Returns:
        The output directory, str.

    Example:
    >>> from keras_transformer.tasks.ensemble import average_classifiers
    >>> average_classifiers(["runs/seed0", "runs/seed1"], "runs/pair",
    ...                     mode="probabilities")  # doctest: +SKIP
    'runs/pair'
    """
    import numpy as np

    from keras_transformer.applications.bert import bert_ensemble

    # Check the arguments and the members.
    if mode not in AVERAGE_MODES:
        raise ValueError(
            f"`mode` must be one of {AVERAGE_MODES}. Received: mode={mode!r}"
        )
    model_dirs = [os.path.abspath(os.fspath(d)) for d in model_dirs]
    if len(model_dirs) < 2:
        raise ValueError(
            "Averaging needs at least two classifier directories. "
            f"Received: model_dirs={model_dirs}"
        )
    members = [model_dir_lib.read_metadata(d, TASK) for d in model_dirs]
    _check_members(model_dirs, members, mode)

    # The combined model.
    models = [model_dir_lib.load_model(d) for d in model_dirs]
    first = members[0]
    inference = dict(first["inference"])
    if mode == "weights":
        model = models[0]
        model.set_weights(
            [
                np.mean(values, axis=0)
                for values in zip(*(m.get_weights() for m in models))
            ]
        )
        config = first["config"]
    else:
        model = bert_ensemble(models)
        config = {
            "members": [
                {"architecture": m["inference"].get("architecture")}
                | m["config"]
                for m in members
            ]
        }
        inference.update(architecture="ensemble", members=model_dirs)

    # The directory.
    seconds = [m["train_seconds"] for m in members]
    metadata = model_dir_lib.make_metadata(
        TASK,
        config=config,
        settings={"mode": mode, "model_dirs": model_dirs},
        tokenizer=first["tokenizer"],
        data=_shared_entries([m["data"] for m in members]),
        inference=inference,
        train_seconds=None if None in seconds else sum(seconds),
        steps=sum(m["steps"] for m in members),
        metrics={},
        parent=model_dirs,
        application=(
            "bert.bert_ensemble"
            if mode == "probabilities"
            else first["application"]
        ),
    )
    return _bert.write_directory(
        output,
        model,
        os.path.join(model_dirs[0], model_dir_lib.TOKENIZER_FILE),
        metadata,
        overwrite,
    )


def _without_dropout(value):
    """A config with every `dropout` entry removed (it shapes no weight)."""
    if isinstance(value, dict):
        return {
            k: _without_dropout(v) for k, v in value.items() if k != "dropout"
        }
    if isinstance(value, list):
        return [_without_dropout(v) for v in value]
    return value


def _architecture(metadata):
    """What must agree for weights to be averaged."""
    inference = metadata["inference"]
    return (
        inference.get("architecture"),
        _without_dropout(metadata["config"]),
        inference["class_names"],
        inference["sequence_length"],
    )


def _interface(metadata):
    """What must agree for probabilities to be averaged."""
    inference = metadata["inference"]
    return inference["class_names"], inference["sequence_length"]


def _check_members(model_dirs, members, mode):
    """Raises `ValueError` naming the first member that cannot join."""
    same, what, why = {
        "weights": (
            _architecture,
            "architecture, class list, pooling or sequence length",
            "only classifiers fine-tuned from the same encoder can be "
            "averaged (mode 'probabilities' takes different architectures).",
        ),
        "probabilities": (
            _interface,
            "class list or sequence length",
            "ensemble members must classify the same classes from the same "
            "inputs.",
        ),
    }[mode]
    tokenizers = []
    for directory in model_dirs:
        model_dir_lib.check_files(directory)
        path = os.path.join(directory, model_dir_lib.TOKENIZER_FILE)
        with open(path, "rb") as f:
            tokenizers.append(f.read())
    for directory, metadata, tokenizer in zip(
        model_dirs[1:], members[1:], tokenizers[1:]
    ):
        if same(metadata) != same(members[0]):
            raise ValueError(
                f"{directory} has another {what} than {model_dirs[0]}; {why}"
            )
        if tokenizer != tokenizers[0]:
            raise ValueError(
                f"{directory} has another tokenizer than {model_dirs[0]}; "
                "only classifiers fine-tuned from the same encoder can be "
                "averaged."
            )


def _shared_entries(entries):
    """The items of the first dict that every other dict has too."""
    return {
        key: value
        for key, value in entries[0].items()
        if all(other.get(key) == value for other in entries[1:])
    }
