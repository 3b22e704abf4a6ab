"""A small TF Serving gRPC client for the exported keras_transformer models.

Builds a `tensorflow_serving.apis.predict_pb2.PredictRequest` from a model
name, a signature name and a dict of inputs (or from one of the REST bodies
in `serving/requests/`), and sends it to TF Serving's gRPC port. Needs
`pip install tensorflow-serving-api` (imported only when used).

Example (TF Serving started with `--port=8500 --model_name=genre
--model_base_path=/abs/path/saved_models/genre`):

    python serving/grpc_client.py --model-name genre \
        --body serving/requests/classifier.json
    python serving/grpc_client.py --model-name gpt --signature generate \
        --input prompt='["In the beginning"]' --input max_new_tokens=16 \
        --input temperature=0.8 --input top_k=40 --input top_p=0.9 \
        --input seed=7

From Python:

    from grpc_client import build_predict_request, predict
    request = build_predict_request(
        "genre", "serving_default", {"text": ["Blessed are the meek."]}
    )
    outputs = predict(request, "localhost:8500")  # {name: numpy array}
"""

import argparse
import json
import sys

# The dtype of every input name used by the exported signatures (see
# serving/README.md); a test checks them against the SavedModels.
INPUT_DTYPES = {
    "text": "string",
    "prompt": "string",
    "max_new_tokens": "int32",
    "temperature": "float32",
    "top_k": "int32",
    "top_p": "float32",
    "seed": "int64",
    "no_repeat_ngram_size": "int32",
    "repetition_penalty": "float32",
    "min_new_tokens": "int32",
    "stop": "string",
    "stop_token_ids": "int32",
    "length_penalty": "float32",
    "encoder_token_ids": "int32",
}


def inputs_from_body(body):
    """The `{input name: value}` dict of a TF Serving REST `:predict` body.

    Args:
        body: a dict with `instances` (row format: a list of
            `{name: value}` dicts) or `inputs` (columnar format: a dict of
            name -> list or scalar).

    Returns:
        `(signature_name, inputs)`.
    """
    signature_name = body.get("signature_name", "serving_default")
    if "instances" in body:
        rows = body["instances"]
        if not rows or not all(isinstance(row, dict) for row in rows):
            raise ValueError(
                "`instances` must be a non-empty list of {input: value} "
                f"objects. Received: instances={rows!r}"
            )
        inputs = {name: [row[name] for row in rows] for name in rows[0]}
    elif isinstance(body.get("inputs"), dict):
        inputs = dict(body["inputs"])
    else:
        raise ValueError(
            "A request body needs `instances` (a list of objects) or "
            f"`inputs` (an object). Received: keys={sorted(body)}"
        )
    return signature_name, inputs


def build_predict_request(model_name, signature_name, inputs, dtypes=None):
    """Builds a `PredictRequest`.

    Args:
        model_name: the model name TF Serving serves (`--model_name`).
        signature_name: e.g. `"serving_default"` or `"generate"`.
        inputs: dict of input name -> list / scalar / numpy array.
        dtypes: optional dict of input name -> dtype name, overriding
            `INPUT_DTYPES`.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    known = dict(INPUT_DTYPES, **(dtypes or {}))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, list):
            value = [v.encode("utf-8") if isinstance(v, str) else v
                     for v in value]  # fmt: skip
        dtype = known.get(name)
        request.inputs[name].CopyFrom(
            tf.make_tensor_proto(value, dtype=tf.dtypes.as_dtype(dtype)
                                 if dtype else None)
        )  # fmt: skip
    return request


def request_from_body(model_name, body, dtypes=None):
    """A `PredictRequest` equivalent to a REST `:predict` body."""
    signature_name, inputs = inputs_from_body(body)
    return build_predict_request(model_name, signature_name, inputs, dtypes)


def predict(request, target="localhost:8500", timeout=60.0):
    """Sends `request`; returns `{output name: numpy array}`."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _jsonable(array):
    if array.dtype == object:
        return [
            b.decode("utf-8", "replace") if isinstance(b, bytes) else b
            for b in array.reshape(-1).tolist()
        ]
    return array.tolist()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="localhost:8500")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--body", help="a REST :predict body (JSON file)")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an input as JSON, e.g. text='[\"hello\"]' (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.body:
        with open(args.body, encoding="utf-8") as f:
            request = request_from_body(args.model_name, json.load(f))
    else:
        inputs = {}
        for item in args.input:
            name, _, value = item.partition("=")
            inputs[name] = json.loads(value)
        request = build_predict_request(args.model_name, args.signature, inputs)
    outputs = predict(request, args.target)
    json.dump({k: _jsonable(v) for k, v in outputs.items()}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
