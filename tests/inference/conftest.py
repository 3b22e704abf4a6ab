"""Session fixtures: tiny model directories of every task (random weights,
no training; see `tests/inference/model_dirs.py`)."""

import pytest

from tests.inference import model_dirs as builders


@pytest.fixture(scope="session")
def tokenizer():
    return builders.train_tokenizer()


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, tokenizer):
    """{"translation", "gpt", "classifier": model directory (a Path)}."""
    root = tmp_path_factory.mktemp("inference_models")
    return builders.build_model_dirs(root, tokenizer)


@pytest.fixture(scope="session")
def ensemble_dirs(tmp_path_factory, model_dirs, tokenizer):
    """(ensemble directory, [member directories])."""
    root = tmp_path_factory.mktemp("ensemble")
    second = builders.classifier_dir(root / "member_1", tokenizer, seed=1)
    members = [model_dirs["classifier"], second]
    return builders.ensemble_dir(root / "ensemble", members), members
