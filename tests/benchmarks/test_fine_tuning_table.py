"""The fine-tuning table of docs/smaller_models.md: the commands each
system runs, the table's rows, and the docs equal to the results file."""

import json
import os

from benchmarks import common, fine_tuning


class _Args:
    minutes = 3
    seed = 0
    lora_rank = 4


_CORPUS = {"train": "/c/train.tsv", "valid": "/c/valid.tsv"}


def test_each_system_differs_from_scratch_only_by_its_flags():
    def command(system):
        return fine_tuning.system_command(
            "classifier", system, _CORPUS, "/p", "/out", _Args
        )

    scratch = command("scratch")
    assert scratch[2:6] == [
        "keras_transformer",
        "train",
        "classifier",
        "--max-minutes",
    ]
    assert "--init-from" not in scratch and "--architecture" not in scratch
    assert command("scratch-bert") == scratch + ["--architecture", "bert"]
    assert command("full") == scratch + ["--init-from", "/p"]
    assert command("lora") == scratch + [
        "--init-from", "/p", "--lora-rank", "4"
    ]  # fmt: skip
    assert scratch[scratch.index("--train-file") + 1] == "/c/train.tsv"
    assert scratch[scratch.index("--valid-file") + 1] == "/c/valid.tsv"


def test_table_rows_name_system_trainable_parameters_and_figures():
    results = {
        "git_commit": "abcdef123",
        "parent_minutes": 3,
        "minutes": 3,
        "seed": 0,
        "lora_rank": 8,
        "rows": [
            {
                "app": "gpt",
                "corpus": "deb-descriptions",
                "system": "lora",
                "trainable_parameters": 198656,
                "steps": 120,
                "bits_per_byte": 1.23456,
                "perplexity": 80.0,
            }  # fmt: skip
        ],
    }
    lines = fine_tuning.table_markdown(results).splitlines()
    assert lines[2] == (
        "| gpt | deb-descriptions | lora | 198,656 | 120 | "
        "bits_per_byte 1.235, perplexity 80 |"
    )
    assert "`abcdef1`" in lines[-1] and "rank 8" in lines[-1]


def test_docs_table_equals_the_results_file():
    path = os.path.join(common.RESULTS_DIR, "fine_tuning.json")
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    assert {row["system"] for row in results["rows"]} >= {
        "scratch", "full", "lora"
    }  # fmt: skip
    with open(fine_tuning.DOCS, encoding="utf-8") as f:
        text = f.read()
    inside = text.split(fine_tuning.BEGIN)[1].split(fine_tuning.END)[0]
    assert inside.strip() == fine_tuning.table_markdown(results).strip()


def test_a_rerun_of_one_application_keeps_the_others_rows(tmp_path):
    old = {
        "git_commit": "1111111aaaa",
        "parent_minutes": 3,
        "minutes": 3,
        "lora_rank": 8,
        "seed": 0,
        "eval_rows": 500,
        "rows": [
            {"app": "gpt", "corpus": "g", "system": "lora"},
            {"app": "classifier", "corpus": "c", "system": "full"},
        ],
    }
    path = tmp_path / "fine_tuning.json"
    path.write_text(json.dumps(old))

    class Args:
        parent_minutes, minutes, lora_rank, seed, eval_rows = 3, 3, 8, 0, 500

    kept = fine_tuning.kept_rows(["classifier"], Args, str(path))
    assert kept == [
        {
            "app": "gpt",
            "corpus": "g",
            "system": "lora",
            "git_commit": "1111111aaaa",
        }
    ]
    Args.minutes = 5  # other settings: nothing is kept
    assert fine_tuning.kept_rows(["classifier"], Args, str(path)) == []
    table = fine_tuning.table_markdown(
        {**old, "rows": kept + [{"app": "classifier", "corpus": "c",
                                 "system": "full", "git_commit": "2222222b"}]}
    )  # fmt: skip
    assert "`1111111` (gpt); `2222222` (classifier)" in table
