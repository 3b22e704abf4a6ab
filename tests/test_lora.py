"""Fine-tuning a directory (`init_from`) fully or with LoRA adapters: only
the adapters (and a new head) train, every other weight stays bitwise the
parent's, the merged update has the adapters' rank, adapters-only
directories load on their parent to the merged model's outputs, a resumed
LoRA run continues from its adapters, and bad arguments are named."""

import json

import keras
import numpy as np
import pytest

import keras_transformer
from keras_transformer import lora as lora_lib
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.data.loaders import (
    load_bundled_genre,
    load_bundled_lm_text,
    load_bundled_translation,
)

RANK = 2


@pytest.fixture(scope="module")
def parents(tmp_path_factory):
    from tests.inference.model_dirs import build_model_dirs

    return build_model_dirs(tmp_path_factory.mktemp("lora_parents"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora_data")
    sources, targets = load_bundled_translation("train")
    pairs = root / "pairs.tsv"
    pairs.write_text(
        "".join(f"{s}\t{t}\n" for s, t in zip(sources[:48], targets[:48])),
        encoding="utf-8",
    )
    text = root / "text.txt"
    text.write_text("\n\n".join(load_bundled_lm_text("train")[:80]))
    texts, labels, _ = load_bundled_genre("train")
    labeled = root / "labeled.tsv"
    step = max(1, len(texts) // 150)  # every genre, not the first book's
    rows = list(zip(labels, texts))[::step][:150]
    labeled.write_text(
        "".join(f"{label}\t{t}\n" for label, t in rows), encoding="utf-8"
    )
    return {"translation": pairs, "gpt": text, "classifier": labeled}


def _train(task, output, init_from, data, **kwargs):
    common = dict(
        init_from=str(init_from), epochs=1, steps_per_epoch=3, verbose=0,
    )  # fmt: skip
    common.update(kwargs)
    if task == "translation":
        from keras_transformer.tasks.translation import train_translation

        return train_translation(
            str(output), train_file=str(data["translation"]), **common
        )
    if task == "gpt":
        from keras_transformer.tasks.gpt import train_gpt

        return train_gpt(
            str(output), train_files=[str(data["gpt"])], batch_size=4, **common
        )
    from keras_transformer.tasks.classifier import train_classifier

    return train_classifier(
        str(output), train_file=str(data["classifier"]), batch_size=8,
        **common,
    )  # fmt: skip


def _adapted_kernels(parent_dir):
    """Paths of the kernels LoRA adapts in the parent's model."""
    model = model_dir_lib.load_model(parent_dir)
    lora_lib.enable_lora(model, RANK)
    return {
        v.path.rsplit("/", 1)[0] + "/kernel"
        for v in model.variables
        if v.path.endswith("lora_kernel_a")
    }


def _values(model):
    return {
        v.path: keras.ops.convert_to_numpy(v)
        for v in model.variables
        if "seed_generator" not in v.path  # counter-named dropout states
    }


def _check_only_adapted_kernels_moved(parent_dir, child, rank=RANK, head=()):
    before = _values(model_dir_lib.load_model(parent_dir))
    after = _values(child)
    adapted = _adapted_kernels(parent_dir)
    assert adapted and set(before) == set(after)
    moved = 0
    for path, value in before.items():
        if path.split("/")[0] in head:
            continue
        if path in adapted:
            # Keras: A is kernel.shape[:-1] + (r,), B is (r, last axis).
            delta = (after[path] - value).reshape(-1, value.shape[-1])
            if np.abs(delta).max() > 0:
                moved += 1
                # W + (alpha / r) A @ B: the update has rank r at most.
                singular = np.linalg.svd(delta, compute_uv=False)
                # (float32 rounding of W + d leaves ~1e-4 of noise)
                assert (singular > 1e-2 * singular[0]).sum() <= rank, path
        else:
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    assert moved > 0  # the adapters trained


def test_enable_lora_trains_the_adapters_and_the_named_head_only():
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(6, name="body"),
            keras.layers.LayerNormalization(name="norm"),
            keras.layers.Dense(3, name="head"),
        ],
        name="net",
    )
    summary = lora_lib.enable_lora(model, 2, train_layers=("head",))
    assert summary["adapted_layers"] == 1
    names = sorted(v.path for v in model.trainable_variables)
    assert names == [
        "net/body/lora_kernel_a",
        "net/body/lora_kernel_b",
        "net/head/bias",
        "net/head/kernel",
    ]
    # 8*2 + 2*6 adapter entries, 6*3 + 3 head entries.
    assert summary["trainable_parameters"] == 16 + 12 + 21
    assert not model.get_layer("head").lora_enabled


@pytest.mark.parametrize("task", ["translation", "gpt", "classifier"])
def test_lora_trains_adapters_only_and_saves_them_merged(
    parents, data, tmp_path, task
):
    parent = parents[task]
    metadata = _train(task, tmp_path / "child", parent, data, lora_rank=RANK)
    assert metadata["parent"] == str(parent)
    lora = metadata["inference"]["lora"]
    assert lora["rank"] == RANK and lora["save"] == "merged"
    assert 0 < lora["trainable_parameters"] < 0.5 * lora["parameters"]
    # The tokenizer is the parent's, byte for byte.
    name = model_dir_lib.TOKENIZER_FILE
    assert (tmp_path / "child" / name).read_bytes() == (
        parent / name
    ).read_bytes()
    # The merged model is an ordinary one: no adapter variables.
    child = model_dir_lib.load_model(tmp_path / "child")
    assert not any("lora" in v.path for v in child.variables)
    head = ("logits",) if task == "classifier" else ()
    _check_only_adapted_kernels_moved(parent, child, head=head)
    keras_transformer.load(tmp_path / "child")  # serves as any directory


def test_classifier_with_new_labels_gets_a_new_head(parents, data, tmp_path):
    parent = parents["classifier"]
    metadata = _train(
        "classifier", tmp_path / "child", parent, data, lora_rank=RANK
    )
    names = metadata["inference"]["class_names"]
    assert (
        names != model_dir_lib.read_metadata(parent)["inference"]["class_names"]
    )
    assert metadata["inference"]["lora"]["train_layers"] == ["logits"]
    child = model_dir_lib.load_model(tmp_path / "child")
    assert child.get_layer("logits").kernel.shape[-1] == len(names)
    probabilities = keras_transformer.load(tmp_path / "child").predict_proba(
        ["In the beginning God created the heaven and the earth."]
    )
    assert np.asarray(probabilities).shape == (1, len(names))


def test_adapters_only_directory_loads_to_the_merged_model(
    parents, data, tmp_path
):
    parent = parents["gpt"]
    _train("gpt", tmp_path / "merged", parent, data, lora_rank=RANK, seed=3)
    metadata = _train(
        "gpt", tmp_path / "adapters", parent, data, lora_rank=RANK, seed=3,
        lora_save="adapters",
    )  # fmt: skip
    directory = tmp_path / "adapters"
    assert not (directory / model_dir_lib.MODEL_FILE).exists()
    assert (directory / lora_lib.ADAPTERS_FILE).exists()
    assert metadata["inference"]["lora"]["parent"] == str(parent)
    with np.load(directory / lora_lib.ADAPTERS_FILE) as adapters:
        assert adapters.files and all("lora_kernel" in k for k in adapters)
        stored = sum(adapters[k].size for k in adapters.files)
    assert stored == metadata["inference"]["lora"]["trainable_parameters"]
    tokens = {
        "token_ids": np.array([[1, 5, 9, 14, 3, 7]], dtype="int32"),
        "padding_mask": np.ones((1, 6), dtype="int32"),
    }
    merged = model_dir_lib.load_model(tmp_path / "merged")
    rebuilt = model_dir_lib.load_model(directory)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(rebuilt(tokens)),
        keras.ops.convert_to_numpy(merged(tokens)),
        rtol=1e-4,
        atol=1e-4,
    )
    text = keras_transformer.load(directory).generate("In the", 4)
    assert isinstance(text, str)


def test_resumed_lora_run_continues_from_its_adapters(parents, data, tmp_path):
    parent, output = parents["gpt"], tmp_path / "child"
    _train("gpt", output, parent, data, lora_rank=RANK)
    first = _values(model_dir_lib.load_model(output))
    # Train further: the same settings, a larger budget.
    _train("gpt", output, parent, data, lora_rank=RANK, epochs=2)
    state = model_dir_lib.read_metadata(output)
    assert state["steps"] == 6
    second = model_dir_lib.load_model(output)
    # A Keras restore would have merged the first epoch into the frozen
    # kernels and zeroed both factors (whose gradients are then zero):
    # the update would have stopped, or its rank grown past r.
    assert any(
        np.abs(v - first[k]).max() > 0 for k, v in _values(second).items()
    )
    _check_only_adapted_kernels_moved(parent, second)


def test_full_fine_tuning_moves_every_kind_of_weight(parents, data, tmp_path):
    parent = parents["translation"]
    metadata = _train("translation", tmp_path / "child", parent, data)
    assert metadata["parent"] == str(parent)
    assert "lora" not in metadata["inference"]
    assert metadata["config"] == model_dir_lib.read_metadata(parent)["config"]
    before = _values(model_dir_lib.load_model(parent))
    after = _values(model_dir_lib.load_model(tmp_path / "child"))
    changed = [k for k in before if np.abs(before[k] - after[k]).max() > 0]
    assert any("embedding" in k for k in changed)
    assert any("gamma" in k or "beta" in k for k in changed)


def test_bad_fine_tuning_arguments_are_named(parents, data, tmp_path):
    from keras_transformer.quantization import quantize_model_dir
    from keras_transformer.tasks.gpt import train_gpt

    text = [str(data["gpt"])]
    with pytest.raises(ValueError, match="`lora_rank` and `lora_alpha` need"):
        train_gpt(str(tmp_path / "a"), train_files=text, lora_rank=2)
    with pytest.raises(ValueError, match="lora_rank"):
        train_gpt(
            str(tmp_path / "a"), train_files=text,
            init_from=str(parents["gpt"]), lora_rank=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="lora_save"):
        train_gpt(
            str(tmp_path / "a"), train_files=text,
            init_from=str(parents["gpt"]), lora_rank=2, lora_save="both",
        )  # fmt: skip
    with pytest.raises(model_dir_lib.ModelDirectoryError, match="translation"):
        train_gpt(
            str(tmp_path / "a"), train_files=text,
            init_from=str(parents["translation"]),
        )  # fmt: skip
    with pytest.raises(FileNotFoundError, match="init_from"):
        train_gpt(
            str(tmp_path / "a"), train_files=text,
            init_from=str(tmp_path / "missing"),
        )  # fmt: skip
    quantized = quantize_model_dir(parents["gpt"], tmp_path / "gpt8")
    with pytest.raises(ValueError, match="quantized"):
        train_gpt(str(tmp_path / "a"), train_files=text, init_from=quantized)


def test_cli_fine_tunes_with_lora(parents, data, tmp_path, capsys):
    from keras_transformer.cli import main

    output = tmp_path / "cli"
    code = main(
        [
            "train", "gpt", "--output", str(output),
            "--train-file", str(data["gpt"]),
            "--init-from", str(parents["gpt"]), "--lora-rank", "2",
            "--lora-alpha", "4", "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "4", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    metadata = json.loads(capsys.readouterr().out)
    assert metadata["inference"]["lora"]["alpha"] == 4.0
    assert metadata["settings"]["init_from"] == str(parents["gpt"])
