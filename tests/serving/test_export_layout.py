"""Export: TF Serving layout, no silent overwrite, atomic writes; through
`keras-transformer export` and through `keras_transformer.export`."""

import os
import shutil

import pytest

from keras_transformer.export import ExportError, export_model


def _cli_main(argv):
    # Imported here: the API tests below do not need the command line.
    from keras_transformer import cli

    return cli.main(argv)


def _export(capsys, model, output, *flags):
    code = _cli_main(
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


def _fail_saving(monkeypatch):
    import tensorflow as tf

    def fail(module, path, **kwargs):
        os.makedirs(os.path.join(path, "variables"), exist_ok=True)
        with open(os.path.join(path, "partial"), "w") as f:
            f.write("half written")
        raise OSError("No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", fail)


# ---------------------------------------------------------------------------
# The command line.


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
    version = _existing_version(exports, tmp_path)
    _fail_saving(monkeypatch)
    code, _, err = _export(
        capsys, model_dirs["classifier"], version, "--overwrite"
    )
    # Reported, not raised (the status for an OSError is the CLI's call).
    assert code in (1, 2) and "No space left on device" in err
    assert (version / "MARKER").read_text() == "old"
    assert (version / "saved_model.pb").exists()
    assert _leftovers(version.parent) == []


# ---------------------------------------------------------------------------
# The Python API: the same rules.


@pytest.mark.parametrize("kind", ["classifier", "gpt", "translation"])
def test_api_refuses_an_existing_version(exports, model_dirs, tmp_path, kind):
    version = _existing_version(exports, tmp_path)
    with pytest.raises(ExportError, match="already exists") as error:
        export_model(str(model_dirs[kind]), version)
    assert str(version) in str(error.value)
    assert "overwrite=True" in str(error.value)
    assert (version / "MARKER").read_text() == "old"
    assert _leftovers(version.parent) == []


@pytest.mark.parametrize("version", ["latest", "0", "v1", "1.5", "-3"])
def test_api_refuses_a_non_integer_version(model_dirs, tmp_path, version):
    output = tmp_path / "genre" / version
    with pytest.raises(ExportError, match="positive integer version"):
        export_model(str(model_dirs["classifier"]), output)
    assert not output.exists()


def test_api_overwrite_and_failed_export(
    exports, model_dirs, tmp_path, monkeypatch
):
    version = _existing_version(exports, tmp_path)
    path = export_model(str(model_dirs["classifier"]), version, overwrite=True)
    assert path == str(version)
    assert not (version / "MARKER").exists()
    assert (version / "saved_model.pb").exists()
    assert os.listdir(version.parent) == ["1"]
    (version / "MARKER").write_text("old")
    _fail_saving(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        export_model(str(model_dirs["classifier"]), version, overwrite=True)
    assert (version / "MARKER").read_text() == "old"
    assert (version / "saved_model.pb").exists()
    assert _leftovers(version.parent) == []
