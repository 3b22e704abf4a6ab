import json
import os
import pathlib
import subprocess
import sys

import pytest

from keras_transformer.training import distribution_strategy

SCRIPT = pathlib.Path(__file__).with_name("mirrored_step.py")
ROOT = pathlib.Path(__file__).parents[2]


def _run(mode):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # long: run with -m slow
def test_mirrored_two_cpus_matches_one_device():
    single = _run("single")
    mirrored = _run("mirrored")
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    # Same per-token loss, before and after a step, and the same weights.
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=1e-4)
    assert mirrored["kernel_sum"] == pytest.approx(
        single["kernel_sum"], rel=1e-5
    )


def test_strategy_selection(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="strategy='bogus'"):
        distribution_strategy("bogus")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribution_strategy("auto")


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_two_processes_agree():
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        env = dict(
            os.environ, PYTHONPATH=str(ROOT), TF_CONFIG=json.dumps(tf_config)
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPT.with_name("multi_worker.py"))],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["multi_worker"] for r in results)
    assert results[0]["replicas"] == 2
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"])
    assert results[0]["loss"] == pytest.approx(results[1]["loss"])
    assert results[0]["loss"][-1] < results[0]["loss"][0]
