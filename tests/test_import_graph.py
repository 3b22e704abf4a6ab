"""The package's import graph: no cycles, no import up to tasks/cli, no
module over the size limit.

Function-level imports count: a lazy import is still a dependency.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_transformer"
MAX_LINES = 500


def _modules():
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    for path in sorted((ROOT / "applications").rglob("*.py")):
        parts = ["keras_transformer", "applications"]
        if path.stem != "__init__":
            parts.append(path.stem)
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _resolve(name):
    # `from keras_transformer.x import y` may name module x.y or object y.
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module, path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        module if path.name == "__init__.py" else module.rpartition(".")[0]
    )
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("keras_transformer"):
                target = _resolve(name)
                if target and target != module:
                    found.add(target)
    # A package's parent `__init__` is not a dependency of the package.
    return {t for t in found if not module.startswith(t + ".")}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_no_import_cycle():
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(
        " -> ".join(c) for c in cycles
    )


def _layer(module):
    if module == "keras_transformer.__main__":  # `python -m`: the CLI
        return "keras_transformer.cli"
    for top in ("keras_transformer.cli", "keras_transformer.tasks"):
        if module == top or module.startswith(top + "."):
            return top
    return None


def test_nothing_below_imports_tasks_or_cli():
    bad = []
    for module, targets in GRAPH.items():
        for target in targets:
            layer = _layer(target)
            if layer is None:
                continue
            allowed = _layer(module) == "keras_transformer.cli" or (
                _layer(module) == layer == "keras_transformer.tasks"
            )
            if not allowed:
                bad.append(f"{module} -> {target}")
    assert not bad, "imports up to tasks/cli: " + ", ".join(sorted(bad))


def test_the_graph_sees_imports():
    # The walker must find real edges, or the two tests above pass vacuously.
    assert (
        "keras_transformer.model_dir"
        in GRAPH["keras_transformer.tasks._common"]
    )
    assert (
        "keras_transformer.training" in GRAPH["keras_transformer.tasks._common"]
    )


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith("keras_transformer."))
)
def test_module_size(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines (limit {MAX_LINES})"


def test_import_registers_the_layers_but_the_command_line_does_not():
    import subprocess
    import sys

    code = (
        "import sys; sys.argv[0] = {!r}; import keras_transformer, keras; "
        "names = ['TokenAndPositionEmbedding', 'TransformerSchedule', "
        "'MaskedSparseCategoricalCrossentropy', 'Perplexity', "
        "'ScaledRateAdamW']; "
        "print(all(keras.saving.get_registered_object("
        "'keras_transformer>' + n) for n in names), "
        "'tensorflow' in sys.modules)"
    )
    for program, expected in (
        ("script.py", "True True"),
        ("-m", "False False"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code.format(program)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")[-2]
        if program == "-m":  # `import keras` above imports TF; layers not
            expected = "False True"
        assert out == expected, (program, out)
