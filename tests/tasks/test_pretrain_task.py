import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.data import load_bundled_genre, masked_lm
from keras_transformer.tasks import pretrain
from keras_transformer.tokenizers import SubwordTokenizer
from tests.tasks import bert_runs
from tests.tasks.bert_runs import TINY

# ---------------------------------------------------------------------------
# Masked-LM masking and its pipeline.


def _random_batch(rows=512, length=48, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, length + 1, size=rows)
    ids = rng.integers(10, 1000, size=(rows, length)).astype("int32")
    ids[:, 0] = 2
    ids[np.arange(rows), lengths - 1] = 3
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def test_mask_tokens_statistics_on_a_fixed_seed():
    ids = _random_batch()
    masked, positions, labels, weights = (
        t.numpy()
        for t in masked_lm.mask_tokens(
            tf.constant(ids),
            tf.constant([7, 11]),
            mask_token_id=4,
            vocabulary_size=1000,
            max_predictions=20,
        )
    )
    selectable = (ids != 0) & (ids != 2) & (ids != 3)
    used = weights > 0
    rows = np.broadcast_to(np.arange(ids.shape[0])[:, None], positions.shape)
    chosen = np.zeros_like(selectable)
    chosen[rows[used], positions[used]] = True
    # Never padding, [CLS] or [SEP]; about 15% of the real tokens.
    assert not (chosen & ~selectable).any()
    assert abs(chosen.sum() / selectable.sum() - 0.15) < 0.01
    # The labels are the original ids; unused slots are 0.
    np.testing.assert_array_equal(
        labels[used], ids[rows[used], positions[used]]
    )
    assert (labels[~used] == 0).all() and (positions[~used] == 0).all()
    # Tokens not chosen are untouched.
    np.testing.assert_array_equal(masked[~chosen], ids[~chosen])
    # 80% [MASK], 10% random, 10% kept.
    new = masked[rows[used], positions[used]]
    old = ids[rows[used], positions[used]]
    mask_share = (new == 4).mean()
    kept_share = (new == old).mean()
    random_share = ((new != 4) & (new != old)).mean()
    assert abs(mask_share - 0.8) < 0.03
    assert abs(kept_share - 0.1) < 0.02
    assert abs(random_share - 0.1) < 0.02
    assert (new[(new != 4) & (new != old)] >= 4).all()
    # The same seed gives the same masks.
    again = masked_lm.mask_tokens(
        tf.constant(ids),
        tf.constant([7, 11]),
        mask_token_id=4,
        vocabulary_size=1000,
        max_predictions=20,
    )[0].numpy()
    np.testing.assert_array_equal(again, masked)


def test_mask_tokens_caps_predictions_per_row():
    ids = _random_batch(rows=8, length=48)
    _, positions, _, weights = masked_lm.mask_tokens(
        tf.constant(ids), tf.constant([1, 2]), mask_token_id=4,
        vocabulary_size=1000, mask_rate=1.0, max_predictions=5,
    )  # fmt: skip
    assert positions.shape == (8, 5)
    selectable = ((ids != 0) & (ids != 2) & (ids != 3)).sum(axis=1)
    np.testing.assert_array_equal(
        weights.numpy().sum(axis=1), np.minimum(selectable, 5)
    )


def test_masked_lm_pipeline_produces_model_inputs():
    tokenizer = bert_runs.tokenizer()
    texts, _ = bert_runs.sample_verses("train", 40)
    batch = next(
        iter(masked_lm.masked_lm_dataset(texts, tokenizer, batch_size=8))
    )
    features, mask_ids, weights = batch
    assert set(features) == {
        "token_ids", "padding_mask", "segment_ids", "mask_positions"
    }  # fmt: skip
    assert mask_ids.shape == weights.shape == features["mask_positions"].shape
    # The prediction slots follow the batch width.
    width = features["token_ids"].shape[1]
    assert mask_ids.shape[1] == masked_lm.default_max_predictions(width)
    assert weights.numpy().sum() > 0


# ---------------------------------------------------------------------------
# The bert-pretrain directory.


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return bert_runs.fine_tuned(tmp_path_factory)


def test_pretrain_writes_a_model_directory_of_the_one_schema(runs):
    metadata = json.loads((runs.pretrained / "metadata.json").read_text())
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
    assert metadata["task"] == "bert-pretrain"
    assert metadata["application"] == "bert.bert_masked_lm"
    assert metadata["config"]["vocabulary_size"] == 200
    assert metadata["inference"] == {"sequence_length": 32}
    assert metadata["settings"]["train_files"] == runs.corpus
    assert metadata["settings"]["mask_rate"] == 0.15
    assert metadata["data"]["train"] == runs.corpus
    assert metadata["data"]["valid"] == "held out from train"
    assert metadata["data"]["train_examples"] == 285  # 300 less 5%
    assert metadata["steps"] == 3
    assert np.isfinite(metadata["metrics"]["val_loss"])
    assert "val_masked_accuracy" in metadata["metrics"]
    card = (runs.pretrained / "README.md").read_text()
    assert card.startswith("# bert-pretrain model")
    assert f"--pretrained {runs.pretrained}" in card


def test_resuming_with_other_settings_is_refused(runs):
    with pytest.raises(model_dir_lib.ResumeMismatchError) as error:
        pretrain.pretrain_bert(
            runs.pretrained,
            train_files=runs.corpus,
            **dict(TINY, mask_rate=0.2, seed=3, epochs=5),
        )
    message = str(error.value)
    assert "--mask-rate was 0.15, now 0.2" in message
    assert "--seed was 0, now 3" in message
    assert "--epochs" not in message  # a budget, not a setting
    metadata = json.loads((runs.pretrained / "metadata.json").read_text())
    assert metadata["steps"] == 3  # untouched


def test_arguments_are_checked_before_anything_is_written(tmp_path):
    bad = tmp_path / "bad"
    for kwargs, name in [
        (dict(mask_rate=1.0), "mask_rate"),
        (dict(mask_rate=0), "mask_rate"),
        (dict(sequence_length=2), "sequence_length"),
        (dict(batch_size=0), "batch_size"),
        (dict(learning_rate="fast"), "learning_rate"),
        (dict(texts=["a"], train_files=["a.txt"]), "train_files"),
        (dict(valid_texts=["a"], valid_files=["a.txt"]), "valid_files"),
    ]:
        with pytest.raises(ValueError, match=f"Received: {name}="):
            pretrain.pretrain_bert(bad, **kwargs)
    with pytest.raises(ValueError, match="preset"):
        pretrain.pretrain_bert(bad, preset="huge")
    assert not bad.exists()


def test_pretrain_on_texts_records_their_fingerprint(tmp_path):
    texts, _ = bert_runs.sample_verses("train", 120)
    options = dict(TINY, steps_per_epoch=1, vocabulary_size=150)
    metadata = pretrain.pretrain_bert(
        tmp_path / "mlm", texts=texts, valid_texts=texts[:16], **options
    )
    assert metadata["settings"]["texts"].startswith("120 texts, sha256 ")
    assert metadata["data"]["train"] == "texts"
    assert metadata["data"]["valid_examples"] == 16
    # Other texts are another run.
    with pytest.raises(model_dir_lib.ResumeMismatchError, match="--texts"):
        pretrain.pretrain_bert(
            tmp_path / "mlm", texts=texts[1:], valid_texts=texts[:16], **options
        )


def test_write_pretrained_directory_writes_the_one_schema(tmp_path):
    from keras_transformer.applications.bert import bert_masked_lm

    config = dict(vocabulary_size=200, num_layers=1, hidden_dim=16,
                  num_heads=2, intermediate_dim=32,
                  max_sequence_length=32)  # fmt: skip
    tokenizer_file = str(tmp_path / "sp.model")
    bert_runs.tokenizer().save(tokenizer_file)
    target = tmp_path / "encoder"
    written = pretrain.write_pretrained_directory(
        target,
        bert_masked_lm(config),
        tokenizer_file,
        config=config,
        sequence_length=32,
        metrics={"val_loss": 2.5},
        steps=7,
        overwrite=False,
    )
    assert written == str(target)
    metadata = model_dir_lib.read_metadata(target, "bert-pretrain")
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
    assert metadata["config"] == config
    assert metadata["inference"] == {"sequence_length": 32}
    assert metadata["tokenizer"]["vocabulary_size"] == 200
    assert metadata["steps"] == 7
    # The card names the final directory, not the temporary one.
    card = (target / "README.md").read_text()
    assert f"--pretrained {target} " in card and ".tmp-" not in card
    assert sorted(os.listdir(tmp_path)) == ["encoder", "sp.model"]
    with pytest.raises(FileExistsError, match="already exists"):
        pretrain.write_pretrained_directory(
            target,
            bert_masked_lm(config),
            tokenizer_file,
            config=config,
            sequence_length=32,
            overwrite=False,
        )


# ---------------------------------------------------------------------------
# The bundled encoder.


def test_bundled_encoder_tolerates_a_second_process_writing_it(
    tmp_path, monkeypatch
):
    # Two fine-tunes started together both write the bundled encoder; the
    # one that finishes second keeps the first one's complete directory.
    def other_process_won(directory, *args, overwrite=True, **kwargs):
        assert overwrite is False
        os.makedirs(directory)
        with open(os.path.join(directory, "metadata.json"), "w") as f:
            f.write('{"task": "bert-pretrain"}')
        raise FileExistsError(directory)

    monkeypatch.setattr(
        pretrain, "write_pretrained_directory", other_process_won
    )
    target = tmp_path / "encoder"
    assert pretrain.bundled_encoder_directory(target) == str(target)
    assert os.listdir(target) == ["metadata.json"]


def test_bundled_encoder_is_pretrained_and_starts_a_classifier(
    tmp_path, monkeypatch
):
    import keras

    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.metrics import MaskedAccuracy
    from keras_transformer.tasks.classifier import train_classifier

    monkeypatch.setenv("KERAS_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    directory = pretrain.bundled_encoder_directory()
    assert directory == str(tmp_path / "cache" / "bert_small_genre_mlm")
    meta = json.loads((tmp_path / "cache" / "bert_small_genre_mlm" /
                       "metadata.json").read_text())  # fmt: skip
    assert tuple(meta) == model_dir_lib.METADATA_KEYS
    assert meta["task"] == "bert-pretrain"
    assert meta["config"]["vocabulary_size"] == 10000
    assert meta["inference"] == {"sequence_length": 128}
    assert meta["settings"]["preset"] == "small"
    assert meta["steps"] == 20639
    assert meta["metrics"]["val_masked_accuracy"] == pytest.approx(0.6005)
    # The weights are pretrained: the MLM head recovers most masked pieces
    # of held-out verses (chance is 1 in 10,000; the run measured 60%).
    model = keras.saving.load_model(
        os.path.join(directory, "model.keras"), compile=False
    )
    model.compile(
        loss=MaskedSparseCategoricalCrossentropy(ignore_index=0),
        weighted_metrics=[MaskedAccuracy(ignore_index=0)],
    )
    tokenizer = SubwordTokenizer.load(
        os.path.join(directory, "tokenizer.model")
    )
    verses = load_bundled_genre("valid")[0][:256]
    data = masked_lm.masked_lm_dataset(verses, tokenizer, batch_size=64)
    accuracy = model.evaluate(data, verbose=0, return_dict=True)
    assert accuracy["masked_accuracy"] > 0.5, accuracy
    # A second call reuses the directory; "bundled" starts a classifier.
    stamp = os.path.getmtime(os.path.join(directory, "model.keras"))
    assert pretrain.bundled_encoder_directory() == directory
    assert os.path.getmtime(os.path.join(directory, "model.keras")) == stamp
    train = bert_runs.write_tsv(
        tmp_path / "train.tsv", *bert_runs.sample_verses("train", 64)
    )
    result = train_classifier(
        str(tmp_path / "clf"),
        train_file=train,
        pretrained="bundled",
        architecture="bert",
        epochs=1,
        steps_per_epoch=1,
        batch_size=8,
        verbose=0,
    )
    assert result["steps"] == 1
    meta = json.loads((tmp_path / "clf" / "metadata.json").read_text())
    assert meta["parent"] == directory
    assert meta["settings"]["pretrained"] == "bundled"
    assert meta["config"]["backbone"]["vocabulary_size"] == 10000
    # A directory written by an older version (another metadata schema) is
    # written again.
    old = {"task": "bert-pretrain", "backbone": meta["config"]["backbone"]}
    with open(os.path.join(directory, "metadata.json"), "w") as f:
        json.dump(old, f)
    assert pretrain.bundled_encoder_directory() == directory
    metadata = model_dir_lib.read_metadata(directory, "bert-pretrain")
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
