"""Fails loudly, naming the attribute, when Keras changes a private API
that keras_transformer/_keras_private.py uses; and checks that no other
module reaches into Keras internals."""

import pathlib
import re

import keras
import pytest

from keras_transformer import _keras_private

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_private_api_still_exists():
    _keras_private.check()  # raises RuntimeError naming what is gone


def test_private_apis_behave_as_used():
    masked = keras.layers.Embedding(5, 2, mask_zero=True)(
        keras.ops.convert_to_tensor([[1, 0, 2]])
    )
    assert keras.ops.convert_to_numpy(
        _keras_private.implicit_mask(masked)
    ).tolist() == [[True, False, True]]
    model = keras.Sequential([keras.layers.Dense(1)])
    _keras_private.detach_strategy(model)
    assert getattr(model, _keras_private.STRATEGY_ATTRIBUTE) is None
    callback = keras.callbacks.BackupAndRestore("/tmp/unused-backup")
    epoch, batch, weights, state = _keras_private.backup_state(callback)
    assert weights.endswith(".weights.h5") and state.endswith(".json")
    with _keras_private.scalar_safe_multi_worker_reduce():
        from keras.src.backend.tensorflow import trainer

        assert trainer.reduce_per_replica.__name__ == "reduce_per_replica"


def test_keras_version_is_within_the_pin():
    major, minor = (int(x) for x in keras.__version__.split(".")[:2])
    assert (major, minor) == (3, 15), (
        "pyproject pins keras<3.16 while private APIs are used; re-check "
        "_keras_private.py before widening the pin"
    )


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for p in (ROOT / "keras_transformer").rglob("*.py")
        if p.name != "_keras_private.py"
    )
    + sorted((ROOT / "applications").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_other_module_uses_private_keras(path):
    text = path.read_text(encoding="utf-8")
    pattern = (
        r"keras\.src|\._distribute_strategy|\._keras_mask|[\"']_keras_mask"
        r"|reduce_per_replica"
    )
    assert not re.search(pattern, text), (
        f"{path.name} uses a private Keras API; move it to _keras_private.py"
    )
