"""The documented serving contract (serving/README.md, serving/requests/,
serving/grpc_client.py) matches the exported SavedModels."""

import importlib.util
import json
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.paths import REQUESTS, SERVING_DIR

HEADING = re.compile(r"^### Model `(\w+)`, signature `(\w+)`")
ROW = re.compile(r"^\| (input|output) \| `(\w+)` \| `(DT_\w+)` \| `([^`]*)` \|")
CLI_SIGNATURE = re.compile(r"^signature_def\['(\w+)'\]:")
CLI_TENSOR = re.compile(r"^\s+(inputs|outputs)\['(\w+)'\] tensor_info:")
CLI_FIELD = re.compile(r"^\s+(dtype|shape): (.*)$")


def documented_signatures():
    """{model: {signature: {(direction, name): (dtype, shape)}}}."""
    tables = {}
    current = None
    text = (SERVING_DIR / "README.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            model, signature = heading.groups()
            current = tables.setdefault(model, {}).setdefault(signature, {})
            continue
        row = ROW.match(line)
        if row and current is not None:
            direction, name, dtype, shape = row.groups()
            current[(direction, name)] = (dtype, shape)
        elif line.startswith("#"):
            current = None
    return tables


def parse_saved_model_cli(output):
    """{signature: {(direction, name): (dtype, shape)}}, `__*` skipped."""
    signatures = {}
    current = tensor = None
    for line in output.splitlines():
        if line.startswith("Concrete Functions"):
            break
        match = CLI_SIGNATURE.match(line)
        if match:
            name = match.group(1)
            current = None if name.startswith("__") else {}
            if current is not None:
                signatures[name] = current
            continue
        match = CLI_TENSOR.match(line)
        if match and current is not None:
            direction = match.group(1)[:-1]  # inputs -> input
            tensor = current.setdefault((direction, match.group(2)), {})
            continue
        match = CLI_FIELD.match(line)
        if match and current is not None and tensor is not None:
            tensor[match.group(1)] = match.group(2).strip()
    return {
        name: {k: (v["dtype"], v["shape"]) for k, v in table.items()}
        for name, table in signatures.items()
    }


def _shape_matches(documented, actual):
    """`(-1, C)` matches `(-1, 6)`: letters stand for any size."""
    pattern = re.escape(documented)
    pattern = re.sub(r"[A-Z]", r"\\d+", pattern)
    return re.fullmatch(pattern, actual) is not None


def _client():
    spec = importlib.util.spec_from_file_location(
        "grpc_client", SERVING_DIR / "grpc_client.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_parse():
    tables = documented_signatures()
    assert set(tables) >= {"classifier", "gpt", "translation"}
    assert set(tables["gpt"]) == {"serving_default", "generate", "beam_search"}
    assert tables["classifier"]["serving_default"][
        ("output", "probabilities")
    ] == ("DT_FLOAT", "(-1, C)")


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_saved_model_cli_matches_readme(saved_model_cli_output, kind):
    shown = parse_saved_model_cli(saved_model_cli_output[kind])
    documented = documented_signatures()[kind]
    assert "serving_default" in shown
    # Every signature documented, every documented signature exported.
    assert set(shown) == set(documented)
    for signature, tensors in documented.items():
        # Same names both ways, same dtypes, compatible shapes.
        assert set(tensors) == set(shown[signature]), signature
        for key, (dtype, shape) in tensors.items():
            actual_dtype, actual_shape = shown[signature][key]
            assert dtype == actual_dtype, (signature, key)
            assert _shape_matches(shape, actual_shape), (signature, key)


def test_every_request_body_is_checked():
    files = {p.name for p in (SERVING_DIR / "requests").glob("*.json")}
    tested = {name for names in REQUESTS.values() for name in names}
    assert files == tested


@pytest.mark.parametrize(
    "kind,body_name",
    [
        (kind, name)
        for kind, names in sorted(REQUESTS.items())
        for name in names
    ],
)
def test_request_bodies_build_predict_requests_matching_signatures(
    battery, kind, body_name
):
    client = _client()
    path = SERVING_DIR / "requests" / body_name
    body = json.loads(path.read_text(encoding="utf-8"))
    request = client.request_from_body(kind, body)
    signature = body.get("signature_name", "serving_default")
    assert request.model_spec.name == kind
    assert request.model_spec.signature_name == signature
    expected = battery[kind]["signatures"][signature]["inputs"]
    sent = {
        name: tf.dtypes.as_dtype(proto.dtype).name
        for name, proto in request.inputs.items()
    }
    assert sent == expected
    # The same body, fed to the loaded signature in a fresh process,
    # answers with the documented outputs, one row per instance.
    outputs = battery[kind]["requests"][str(path)]
    documented = documented_signatures()[kind][signature]
    assert {("output", name) for name in outputs} == {
        key for key in documented if key[0] == "output"
    }
    text_input = next(k for k in ("text", "prompt") if k in expected)
    rows = len(request.inputs[text_input].string_val)
    for entry in outputs.values():
        assert entry["shape"][0] == rows
        assert entry.get("invalid_utf8", 0) == 0


def test_client_dtypes_match_every_signature(battery):
    client = _client()
    for result in battery.values():
        for table in result["signatures"].values():
            for name, dtype in table["inputs"].items():
                assert client.INPUT_DTYPES[name] == dtype, name


def test_client_builds_scalar_and_batch_tensors():
    client = _client()
    request = client.build_predict_request(
        "gpt", "generate", {"prompt": ["é", "🙂"], "seed": 7, "top_p": 0.9}
    )
    prompt = tf.make_ndarray(request.inputs["prompt"])
    assert [s.decode() for s in prompt] == ["é", "🙂"]
    assert request.inputs["seed"].dtype == tf.int64.as_datatype_enum
    assert tf.make_ndarray(request.inputs["seed"]).shape == ()
    with pytest.raises(ValueError, match="instances"):
        client.inputs_from_body({"instances": ["bare"]})


def test_client_round_trip_through_a_grpc_server(exports, battery):
    """`predict` against an in-process PredictionService serving the export
    (a stand-in for TF Serving) gives the fresh-process answers."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    client = _client()
    loaded = tf.saved_model.load(str(exports["classifier"]))

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            function = loaded.signatures[request.model_spec.signature_name]
            inputs = {
                k: tf.constant(tf.make_ndarray(v))
                for k, v in request.inputs.items()
            }
            response = predict_pb2.PredictResponse()
            for name, value in function(**inputs).items():
                response.outputs[name].CopyFrom(
                    tf.make_tensor_proto(value.numpy())
                )
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        Service(), server
    )
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        path = SERVING_DIR / "requests" / "classifier.json"
        request = client.request_from_body(
            "classifier", json.loads(path.read_text(encoding="utf-8"))
        )
        outputs = client.predict(request, f"localhost:{port}", timeout=60)
    finally:
        server.stop(None)
    expected = battery["classifier"]["requests"][str(path)]
    assert [s.decode() for s in outputs["label"]] == (
        expected["label"]["values"]
    )
    np.testing.assert_allclose(
        outputs["probabilities"], expected["probabilities"]["values"], atol=1e-5
    )
