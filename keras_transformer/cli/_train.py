"""`keras-transformer train TASK` and `keras-transformer evaluate TASK`.

Each command calls the task runner of `keras_transformer.tasks` with the
flags the user gave (see `keras_transformer.cli._flags` for how defaults
are left to the runner), then prints a short summary, or with `--json`
the model directory's metadata (train) or the report (evaluate).
"""

import os

from keras_transformer.cli import _flags, _runtime

# task -> (module, function, how it takes data files: "one" or "many")
TRAIN = {
    "translation": ("keras_transformer.tasks.translation", "train_translation",
                    "one"),
    "gpt": ("keras_transformer.tasks.gpt", "train_gpt", "many"),
    "classifier": ("keras_transformer.tasks.classifier", "train_classifier",
                   "one"),
    "bert-pretrain": ("keras_transformer.tasks.pretrain", "pretrain_bert",
                      "many"),
}  # fmt: skip
EVALUATE = {
    "translation": ("keras_transformer.tasks.translation",
                    "evaluate_translation", "one"),
    "gpt": ("keras_transformer.tasks.gpt", "evaluate_gpt", "many"),
    "classifier": ("keras_transformer.tasks.classifier",
                   "evaluate_classifier", "one"),
}  # fmt: skip


def data_file_kwargs(kwargs, command, style):
    """Turns `--train-file` & co. into the runner's file arguments.

    Args:
        kwargs: dict of keyword arguments, changed in place:
            `{kind}_files` lists become `{kind}_file` paths for a runner
            reading one file of each kind (`style="one"`).
        command: str, e.g. "train translation" (for the error message).
        style: "one" or "many".

    Raises:
        ValueError: several files given where one is read.
    """
    for kind in ("train", "valid", "test"):
        paths = kwargs.pop(f"{kind}_files", None)
        if paths is None:
            continue
        if style == "many":
            kwargs[f"{kind}_files"] = list(paths)
        elif len(paths) == 1:
            kwargs[f"{kind}_file"] = paths[0]
        else:
            raise ValueError(
                f"`{command}` reads one --{kind}-file. Received: "
                f"--{kind}-file {' '.join(paths)}"
            )


def train_kwargs(args):
    """The runner's keyword arguments for a parsed `train` command."""
    kwargs = _runtime.python_kwargs(args, drop=("output",))
    data_file_kwargs(kwargs, f"train {args.task}", TRAIN[args.task][2])
    if "max_minutes" in kwargs and "epochs" not in kwargs:
        kwargs["epochs"] = _flags.BUDGET_EPOCHS  # The budget decides.
    return kwargs


def run_train(args):
    """Runs `keras-transformer train TASK`; prints the summary."""
    module_name, function, _ = TRAIN[args.task]
    kwargs = train_kwargs(args)
    module = _runtime.import_quietly(module_name, args.verbose)
    from keras_transformer import training

    with (
        _runtime.progress_on_stderr(),
        training.scale_scope(args.strategy, args.tpu, args.mixed_precision),
    ):
        metadata = getattr(module, function)(
            args.output, verbose="auto", **kwargs
        )
    exported = None
    if getattr(args, "export", None):
        from keras_transformer.export import export_model

        with _runtime.progress_on_stderr():
            exported = export_model(args.output, args.export)
    if args.json:
        _runtime.print_json(
            metadata if exported is None else {**metadata, "export": exported}
        )
    else:
        print(train_summary(metadata, args.output, exported), flush=True)
    return 0


def _figure(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def train_summary(metadata, output, exported=None):
    """A few lines saying what a training run did and where its model is.

    Args:
        metadata: dict, the model directory's metadata.
        output: str, the model directory.
        exported: str or None (default), the SavedModel written after.

    Returns:
        str.

    Example:
    >>> from keras_transformer.cli._train import train_summary
    >>> print(train_summary({"task": "gpt", "steps": 269,
    ...     "train_seconds": 600.0, "data": {"skipped_lines": 1},
    ...     "metrics": {"loss": 3.5, "val_loss": 3.25, "stopped_early": True,
    ...                 "tokens_per_second": 1500.0}}, "/runs/gpt"))
    Trained gpt for 269 steps in 10.0 minutes (the time budget stopped it).
      val_loss 3.25, tokens_per_second 1500
    Skipped 1 malformed line(s).
    Model directory: /runs/gpt
    """
    metrics = metadata.get("metrics") or {}
    seconds = metadata.get("train_seconds")
    line = f"Trained {metadata.get('task')} for {metadata.get('steps')} steps"
    if seconds is not None:
        line += f" in {seconds / 60:.1f} minutes"
    if metrics.get("stopped_early"):
        line += " (the time budget stopped it)"
    lines = [line + "."]
    keys = [
        key
        for key in metrics
        if key.startswith(("val_", "best_", "test_"))
        or key == "tokens_per_second"
    ] or [key for key in ("loss", "accuracy") if key in metrics]
    figures = [
        f"{key} {_figure(metrics[key])}"
        for key in keys
        if _figure(metrics[key]) is not None
    ]
    if figures:
        lines.append("  " + ", ".join(figures))
    lines += _per_class_lines(metrics)
    skipped = (metadata.get("data") or {}).get("skipped_lines")
    if skipped:
        lines.append(f"Skipped {skipped} malformed line(s).")
    lines.append(f"Model directory: {os.path.abspath(output)}")
    if exported:
        lines.append(f"Exported {exported}")
    return "\n".join(lines)


def _per_class_table(per_class):
    """Lines of precision, recall, F1 and support per class."""
    width = max(len(name) for name in per_class)
    lines = [f"{'':>{width}}  precision  recall      F1  support"]
    for name, f in per_class.items():
        lines.append(
            f"{name:>{width}}  {f['precision']:9.4f}  {f['recall']:6.4f}  "
            f"{f['f1']:6.4f}  {f['support']:7d}"
        )
    return lines


def _never_predicted_line(names, split):
    return (
        f"WARNING: the model never predicts {', '.join(names)} on the "
        f"{split} split (try --class-balance or --architecture ngram)."
    )


def _per_class_lines(metrics):
    """A classifier's per-class figures and never-predicted warnings."""
    lines = []
    for prefix, split in (("valid", "validation"), ("test", "test")):
        per_class = metrics.get(f"{prefix}_per_class")
        if not isinstance(per_class, dict) or not per_class:
            continue
        lines.append(
            f"  {split}: macro-F1 {metrics[f'{prefix}_macro_f1']:.4f}, "
            f"accuracy {metrics[f'{prefix}_accuracy']:.4f}"
        )
        lines += ["    " + line for line in _per_class_table(per_class)]
        if metrics.get(f"{prefix}_never_predicted"):
            lines.append(
                _never_predicted_line(
                    metrics[f"{prefix}_never_predicted"], split
                )
            )
    if metrics.get("auto_chosen"):
        scores = ", ".join(
            f"{key[len('auto_valid_macro_f1_') :]} {value:.4f}"
            for key, value in metrics.items()
            if key.startswith("auto_valid_macro_f1_")
        )
        lines.append(
            f"  architecture auto chose {metrics['auto_chosen']} "
            f"(validation macro-F1: {scores})"
        )
    return lines


def run_evaluate(args):
    """Runs `keras-transformer evaluate TASK`; prints the report."""
    module_name, function, style = EVALUATE[args.task]
    kwargs = _runtime.python_kwargs(args, drop=("model_dir",))
    data_file_kwargs(kwargs, f"evaluate {args.task}", style)
    if args.task == "translation":
        kwargs["verbose"] = _runtime.progress_verbose()
    module = _runtime.import_quietly(module_name, args.verbose)
    with _runtime.progress_on_stderr():
        report = getattr(module, function)(args.model_dir, **kwargs)
    if args.json:
        _runtime.print_json(report)
    else:
        print(REPORTS[args.task](report), flush=True)
    return 0


def _translation_report(report):
    beams = report.get("num_beams", report.get("beam_size", 1))
    return (
        f"BLEU {report['bleu']:.2f}  chrF {report['chrf']:.2f}  "
        f"({report['sentences']} sentences, "
        + ("greedy search" if beams == 1 else f"beam search of {beams}")
        + ")"
    )


def _gpt_report(report):
    return (
        f"perplexity {report['perplexity']:.3f} over {report['tokens']} "
        f"tokens ({report['data']})"
    )


def _classifier_report(report):
    names = report["class_names"]
    width = max(len(n) for n in names)
    lines = [
        f"examples  {report['examples']}",
        f"accuracy  {report['accuracy']:.4f}",
        f"macro-F1  {report['macro_f1']:.4f}",
        "confusion matrix (rows: true, columns: predicted)",
        " " * width + "".join(f" {i:>6d}" for i in range(len(names))),
    ]
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"{name:>{width}}" + "".join(f" {c:>6d}" for c in row))
    if report.get("per_class"):
        lines.append("per class")
        lines += _per_class_table(report["per_class"])
    if report.get("never_predicted"):
        lines.append(_never_predicted_line(report["never_predicted"], "test"))
    if report.get("png"):
        lines.append(f"wrote {report['png']}")
    return "\n".join(lines)


REPORTS = {
    "translation": _translation_report,
    "gpt": _gpt_report,
    "classifier": _classifier_report,
}
