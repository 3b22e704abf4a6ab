"""Every command-line flag, declared once.

`FLAGS` maps a flag to its `argparse` arguments; the commands in
`keras_transformer.cli._parser` name the flags they take (and add them
with `_parser.add_flags`), so a flag has the same type, default and
behaviour on every command that has it.

Defaults: a value flag left out is None, and None is never passed on, so
the Python function's own default applies (`--batch-size` is 16 for GPT
and 32 for the classifier because `train_gpt` and `train_classifier` say
so). The command line repeats no Python default.

Each flag's `dest` is the name of the Python argument it sets; `names`
lists more Python names it stands for (`train_file`/`train_files`), so
an error message that names the Python argument can be rewritten to the
flag the user typed (`keras_transformer.cli._errors`).

This module imports no TensorFlow or Keras: `--help` must answer at once.
The choices below equal the library's (a test compares them).
"""

from keras_transformer.cli._decoding_flags import (  # noqa: F401 (SAMPLERS)
    DECODING_FLAGS,
    SAMPLERS,
)

# The library's choices, repeated here so `--help` need not import them.
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("none", "bfloat16", "float16")
ARCHITECTURES = ("auto", "bert", "ngram")
CLASS_BALANCE_MODES = ("auto", "none", "weighted", "logit_adjust")
POOLING_MODES = ("first", "mean")
AVERAGE_MODES = ("weights", "probabilities")
LORA_SAVE_MODES = ("merged", "adapters")
EXPORT_DTYPES = ("float32", "bfloat16", "float16")

# With --max-minutes and no --epochs, the time budget decides when to stop.
BUDGET_EPOCHS = 1000

TASK_DEFAULT = "(default: the task's)"


def _files(what):
    return dict(
        nargs="+",
        metavar="FILE",
        default=None,
        help=what,
    )


# flag -> argparse keyword arguments (+ "names": more Python names).
FLAGS = {
    # Where a command reads from and writes to.
    "--model": dict(
        dest="model_dir",
        required=True,
        metavar="DIR",
        help="a model directory written by `keras-transformer train`",
        names=("model", "path", "source", "model_dirs"),
    ),
    "--output": dict(
        dest="output",
        required=True,
        metavar="DIR",
        help="the model directory to write; an unfinished run there is "
        "resumed, a finished one trains further",
        names=("output_dir",),
    ),
    "--train-file": dict(
        dest="train_files",
        names=("train_file", "texts"),
        **_files(
            "training data: TSV for translation and the classifier, "
            "text for gpt and bert-pretrain; the bundled corpus when "
            "left out"
        ),  # fmt: skip
    ),
    "--valid-file": dict(
        dest="valid_files",
        names=("valid_file", "valid_texts"),
        **_files(
            "validation data; a hold-out of the training data when left out"
        ),  # fmt: skip
    ),
    "--test-file": dict(
        dest="test_files",
        names=("test_file",),
        **_files("test data, read once at the end"),
    ),
    "--export": dict(
        dest="export",
        metavar="DIR",
        default=None,
        help="after training, also export a SavedModel to DIR "
        "(.../NAME/VERSION)",
    ),
    "--overwrite": dict(
        dest="overwrite",
        action="store_true",
        help="replace an existing output",
    ),
    "--json": dict(
        dest="json",
        action="store_true",
        help="print the result (metadata or report) as JSON",
    ),
    # The run: model size, budget, optimization.
    "--preset": dict(
        dest="preset",
        metavar="NAME",
        default=None,
        help="model size: tiny, mini, small, base, ... (default: auto for "
        "translation, which chooses from the data and --max-minutes; small "
        "otherwise)",
    ),
    "--epochs": dict(
        dest="epochs",
        metavar="N",
        type=int,
        default=None,
        help="the most epochs (default: the task's; with --max-minutes, "
        "the time budget decides)",
    ),
    "--max-minutes": dict(
        dest="max_minutes",
        metavar="MINUTES",
        type=float,
        default=None,
        help="wall-clock budget: training stops after the step that "
        "crosses it, keeping the best model so far (default: none)",
    ),
    "--steps-per-epoch": dict(
        dest="steps_per_epoch",
        metavar="N",
        type=int,
        default=None,
        help="steps between validations (default: one pass over the data)",
    ),
    "--batch-size": dict(
        dest="batch_size",
        metavar="N",
        type=int,
        default=None,
        help=TASK_DEFAULT,
    ),
    "--vocabulary-size": dict(
        dest="vocabulary_size",
        metavar="N",
        type=int,
        default=None,
        help=f"SentencePiece pieces of a new tokenizer {TASK_DEFAULT}",
    ),
    "--sequence-length": dict(
        dest="sequence_length",
        metavar="N",
        type=int,
        default=None,
        help=f"tokens per example {TASK_DEFAULT}",
    ),
    "--learning-rate": dict(
        dest="learning_rate",
        metavar="RATE",
        type=float,
        default=None,
        help=f"peak learning rate {TASK_DEFAULT}",
    ),
    "--learning-rate-scale": dict(
        dest="learning_rate_scale",
        metavar="SCALE",
        type=float,
        default=None,
        help=f"scale of the Transformer schedule {TASK_DEFAULT}",
    ),
    "--warmup-steps": dict(
        dest="warmup_steps",
        metavar="N",
        type=int,
        default=None,
        help=f"learning-rate warmup {TASK_DEFAULT}",
    ),
    "--seed": dict(
        dest="seed",
        metavar="N",
        type=int,
        default=None,
        help="seed of weights, shuffling or sampling (default: 0 when "
        "training; random when sampling)",
    ),
    "--skip-bad-lines": dict(
        dest="skip_bad_lines",
        action="store_true",
        help="skip malformed lines of data files (counted in the metadata) "
        "instead of stopping at the first",
    ),
    "--document-per-file": dict(
        dest="document_per_file",
        action="store_true",
        help="each text file is one document, blank lines included (source "
        "code); by default documents are split at blank lines",
    ),
    "--force": dict(
        dest="force",
        action="store_true",
        help="resume even though the settings differ from the recorded ones "
        "(the new ones are recorded)",
    ),
    "--max-train-examples": dict(
        dest="max_train_examples",
        metavar="N",
        type=int,
        default=None,
        help="use only the first N training examples (pairs, lines, texts)",
        names=("max_train_pairs", "max_train_lines"),
    ),
    "--backup-every-steps": dict(
        dest="backup_every_steps",
        metavar="N",
        type=int,
        default=None,
        help="also save resume state every N steps (default: every epoch)",
    ),
    # Scale.
    "--strategy": dict(
        dest="strategy",
        default="auto",
        choices=STRATEGIES,
        help="tf.distribute strategy (auto: TPU if TPU_NAME is set, multi-"
        "worker if TF_CONFIG names several workers, mirrored on 2+ GPUs) "
        "(default: %(default)s)",
    ),
    "--tpu": dict(
        dest="tpu",
        metavar="ADDRESS",
        default=None,
        help="TPU name or address (default: none)",
    ),
    "--mixed-precision": dict(
        dest="mixed_precision",
        default="none",
        choices=PRECISIONS,
        help="compute dtype of the layers; weights stay float32 "
        "(default: %(default)s)",
    ),
    # The classifier and the encoder.
    "--pretrained": dict(
        dest="pretrained",
        default=None,
        metavar="DIR",
        help="a bert-pretrain directory, or 'bundled' for the pretrained "
        "small encoder shipped with the package",
    ),
    "--init-from": dict(
        dest="init_from",
        default=None,
        metavar="DIR",
        help="fine-tune a model directory of the same task: its tokenizer, "
        "architecture and weights are kept (the preset and vocabulary flags "
        "are then ignored); a classifier gets a new head when the labels "
        "differ",
    ),
    "--lora-rank": dict(
        dest="lora_rank",
        metavar="R",
        type=int,
        default=None,
        help="with --init-from: train rank-R LoRA adapters of every Dense "
        "and EinsumDense layer (and a new head) only; every other weight "
        "stays as it was",
    ),
    "--lora-alpha": dict(
        dest="lora_alpha",
        metavar="ALPHA",
        type=float,
        default=None,
        help="LoRA scale: the update is alpha/rank * A @ B (default: rank)",
    ),
    "--lora-save": dict(
        dest="lora_save",
        default=None,
        choices=LORA_SAVE_MODES,
        help="merged (default): an ordinary model with the adapters added "
        "into its kernels; adapters: only the trained variables, loaded on "
        "top of the --init-from directory, which must stay where it is",
    ),
    "--architecture": dict(
        dest="architecture",
        default=None,
        choices=ARCHITECTURES,
        help="the BERT encoder, a fastText-style bag of hashed n-grams of "
        "the same tokens, or auto: the n-gram model, then the encoder in "
        "the time left, keeping the better on validation macro-F1 or their "
        "probability average (default: auto)",
    ),
    "--class-balance": dict(
        dest="class_balance",
        default=None,
        choices=CLASS_BALANCE_MODES,
        help="balance imbalanced classes in the training loss: inverse "
        "frequency class weights, or logit adjustment (log class prior "
        "added to the logits in training only); auto: logit_adjust when "
        "the largest class has 3 times the examples of the smallest "
        "(default: auto)",
    ),
    "--pooling": dict(
        dest="pooling",
        default=None,
        choices=POOLING_MODES,
        help="[CLS] pooler or the mean over real tokens (default: first)",
    ),
    "--encoder-dropout": dict(
        dest="encoder_dropout",
        metavar="RATE",
        type=float,
        default=None,
        help="dropout inside the encoder (default: the preset's or the "
        "pretrained encoder's)",
    ),
    "--token-mask-rate": dict(
        dest="token_mask_rate",
        metavar="RATE",
        type=float,
        default=None,
        help="share of training pieces replaced by [MASK] in every batch, "
        "a regularizer (default: 0)",
    ),
    "--ema-momentum": dict(
        dest="ema_momentum",
        metavar="MOMENTUM",
        type=float,
        default=None,
        help="validate and save a moving average of the weights with this "
        "momentum, e.g. 0.999 (default: off)",
    ),
    "--layer-decay": dict(
        dest="layer_decay",
        metavar="DECAY",
        type=float,
        default=None,
        help="layer-wise learning-rate decay when fine-tuning, e.g. 0.8 "
        "(default: off)",
    ),
    "--mask-rate": dict(
        dest="mask_rate",
        metavar="RATE",
        type=float,
        default=None,
        help="share of pieces masked for masked-LM pretraining (default: 0.15)",
    ),
    "--output-dir": dict(
        dest="output_dir",
        default=None,
        metavar="DIR",
        help="where to write confusion_matrix.png (default: the model "
        "directory)",
    ),
    "--mode": dict(
        dest="mode",
        default=None,
        choices=AVERAGE_MODES,
        help="average the weights (one model; same encoder and architecture "
        "needed) or the class probabilities (an ensemble) (default: "
        "weights)",
    ),
    "--dtype": dict(
        dest="dtype",
        default=None,
        choices=EXPORT_DTYPES,
        help="weights and computation of the SavedModel: bfloat16 or "
        "float16 halve its size; probabilities stay float32 (default: the "
        "model's)",
    ),
}
FLAGS.update(DECODING_FLAGS)

# Deprecated spellings: alias -> the flag it stands for.
ALIASES = {
    "--beam-size": "--num-beams",
    "--max-train-pairs": "--max-train-examples",
}

# Flags every command of a kind takes.
TRAIN_FLAGS = (
    "--output",
    "--preset",
    "--epochs",
    "--max-minutes",
    "--steps-per-epoch",
    "--batch-size",
    "--vocabulary-size",
    "--warmup-steps",
    "--seed",
    "--skip-bad-lines",
    "--force",
    "--json",
    "--strategy",
    "--tpu",
    "--mixed-precision",
)
EVALUATE_FLAGS = ("--model", "--skip-bad-lines", "--json")

# Flags that only shape the command line's own work, never passed on.
CLI_ONLY = {
    "command",
    "task",
    "run",
    "leaf_parser",
    "verbose",
    "json",
    "export",
    "strategy",
    "tpu",
    "mixed_precision",
    "no_stream",
    "stream",
    "keep_newlines",
}
