"""`keras-transformer export`: TF Serving layout, no silent overwrite,
atomic writes."""

import os
import shutil

import pytest

from keras_transformer import cli


def _export(capsys, model, output, *flags):
    code = cli.main(
        ["export", "--model", str(model), "--output", str(output), *flags]
    )
    out, err = capsys.readouterr()
    return code, out, err


def _existing_version(exports, tmp_path):
    """A copy of the classifier export as `NAME/1`, with a marker file."""
    version = tmp_path / "genre" / "1"
    shutil.copytree(exports["classifier"], version)
    (version / "MARKER").write_text("old")
    return version


def _leftovers(parent):
    return [n for n in os.listdir(parent) if n.startswith((".tmp-", ".old-"))]


@pytest.mark.parametrize("kind", ["classifier", "gpt", "translation"])
def test_existing_version_is_refused_without_overwrite(
    exports, model_dirs, tmp_path, capsys, kind
):
    version = _existing_version(exports, tmp_path)
    code, out, err = _export(capsys, model_dirs[kind], version)
    assert code == 2
    assert "already exists" in err and "--overwrite" in err
    assert str(version) in err and "Traceback" not in err
    assert (version / "MARKER").read_text() == "old"
    assert _leftovers(version.parent) == []


@pytest.mark.parametrize("version", ["latest", "0", "v1", "1.5", "-3"])
def test_non_integer_version_is_refused(model_dirs, tmp_path, capsys, version):
    output = tmp_path / "genre" / version
    code, _, err = _export(capsys, model_dirs["classifier"], output)
    assert code == 2
    assert "positive integer version" in err and "Traceback" not in err
    assert not output.exists()


def test_overwrite_replaces_the_version_atomically(
    exports, model_dirs, tmp_path, capsys
):
    version = _existing_version(exports, tmp_path)
    code, out, _ = _export(
        capsys, model_dirs["classifier"], version, "--overwrite"
    )
    assert code == 0 and out.strip() == str(version)
    assert not (version / "MARKER").exists()
    assert (version / "saved_model.pb").exists()
    assert (version / "variables").is_dir()
    assert _leftovers(version.parent) == []
    assert os.listdir(version.parent) == ["1"]


def test_failed_export_keeps_the_existing_version(
    exports, model_dirs, tmp_path, capsys, monkeypatch
):
    import tensorflow as tf

    version = _existing_version(exports, tmp_path)

    def fail(module, path, **kwargs):
        os.makedirs(os.path.join(path, "variables"), exist_ok=True)
        with open(os.path.join(path, "partial"), "w") as f:
            f.write("half written")
        raise OSError("No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(OSError, match="No space left"):
        cli.main(
            ["export", "--model", str(model_dirs["classifier"]),
             "--output", str(version), "--overwrite"]
        )  # fmt: skip
    assert (version / "MARKER").read_text() == "old"
    assert (version / "saved_model.pb").exists()
    assert _leftovers(version.parent) == []
