"""Runs the `>>>` examples of every docstring, so they cannot rot."""

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _module_names():
    names = []
    for path in sorted((ROOT / "keras_transformer").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] in ("__init__", "__main__"):
            parts = parts[:-1]
        names.append(".".join(parts))
    for path in sorted((ROOT / "applications").glob("*.py")):
        stem = "" if path.stem == "__init__" else "." + path.stem
        names.append("keras_transformer.applications" + stem)
    return names


MODULES = _module_names()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    # Examples spell the full public path (`keras_transformer.layers...`).
    globs = dict(
        vars(module),
        keras_transformer=importlib.import_module("keras_transformer"),
    )
    for test in finder.find(module, name, globs=globs):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_examples_are_collected():
    total = 0
    for name in ("keras_transformer.tasks._common", "keras_transformer"):
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module, name):
            total += len([e for e in test.examples if not e.options])
    assert total >= 2  # the collection itself works
