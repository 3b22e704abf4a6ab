"""The model card (`README.md`) written into every model directory.

Made from the metadata alone (see `keras_transformer.model_dir`), so the
card always says what the directory holds: what the model is, how it was
trained, its figures, and how to load, serve and fine-tune it.
"""

import json

_WHAT = {
    "translation": (
        "A Transformer encoder-decoder translation model (source text in, "
        "target text out)."
    ),
    "gpt": "A GPT-style decoder-only language model (prompt in, text out).",
    "classifier": "A text classifier (text in, label and probabilities out).",
    "bert-pretrain": (
        "A BERT-style encoder pretrained with a masked-language-model "
        "objective; fine-tune it with `train classifier --pretrained`."
    ),
}
_USE = {
    "translation": 'keras-transformer translate --model DIR "Some text."',
    "gpt": 'keras-transformer generate --model DIR "A prompt"',
    "classifier": 'keras-transformer classify --model DIR "Some text."',
    "bert-pretrain": (
        "keras-transformer train classifier --pretrained DIR "
        "--train-file labels.tsv --output runs/classifier"
    ),
}
_PYTHON = {
    "translation": 'model(["Some text."])  # a Translator',
    "gpt": 'model(["A prompt"])  # a TextGenerator',
    "classifier": 'model(["Some text."])  # a TextClassifier',
    "bert-pretrain": "model  # the pretrained encoder's masked-LM model",
}
_TRAIN_TASK = {
    "translation": "translation",
    "gpt": "gpt",
    "classifier": "classifier",
    "bert-pretrain": "bert-pretrain",
}


def _value(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value) + "`"
    return f"`{value}`" if value is not None else "-"


def _table(rows):
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {_value(v)} |" for k, v in rows]
    return "\n".join(lines)


def model_card(metadata, model_dir="DIR"):
    """The text of a model card for `metadata`.

    Args:
        metadata: dict with the keys of `model_dir.METADATA_KEYS`.
        model_dir: str, the directory's path as shown in the commands.

    Returns:
        Markdown text.

    Example:
    >>> from keras_transformer import model_dir
    >>> card = model_card(model_dir.make_metadata("gpt", config={},
    ...     settings={}, tokenizer={"vocabulary_size": 50}, data={},
    ...     inference={}, train_seconds=1.0, steps=2, metrics={}))
    >>> card.splitlines()[0]
    '# gpt model'
    """
    task = metadata["task"]
    minutes = metadata.get("train_seconds")
    trained = (
        f"{metadata['steps']} steps in {minutes / 60:.1f} minutes of "
        "training steps"
        if minutes is not None
        else f"{metadata['steps']} steps"
    )
    parts = [
        f"# {task} model",
        "",
        _WHAT.get(task, task),
        "",
        f"Built by `keras_transformer.applications.{metadata['application']}`"
        f"; trained for {trained} with keras_transformer "
        f"{metadata['keras_transformer_version']}"
        + (
            f" (commit {metadata['git_commit'][:12]})"
            if metadata.get("git_commit")
            else ""
        )
        + (
            f", starting from `{metadata['parent']}`"
            if metadata["parent"]
            else ""
        )
        + ".",
        "",
        "## Figures",
        "",
        _table(sorted(metadata["metrics"].items()))
        if metadata["metrics"]
        else "None recorded.",
        "",
        "## Data",
        "",
        _table(sorted(metadata["data"].items())) if metadata["data"] else "-",
        "",
        "## Model and training settings",
        "",
        _table(
            sorted(metadata["config"].items())
            + sorted(metadata["settings"].items())
        ),
        "",
        "## Use it",
        "",
        "```bash",
        _USE[task].replace("DIR", model_dir),
        f"keras-transformer export --model {model_dir} "
        "--output saved_models/NAME/1   # for TF Serving",
        "```",
        "",
        "```python",
        "import keras_transformer",
        f'model = keras_transformer.load("{model_dir}")',
        _PYTHON[task],
        "```",
        "",
        "Train further on more data: run `keras-transformer train "
        f"{_TRAIN_TASK[task]} --output {model_dir}` again with the same "
        "settings (it resumes), or `--force` to change them.",
        "",
    ]
    return "\n".join(parts)
