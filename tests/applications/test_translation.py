import keras
import numpy as np
import pytest
from keras_transformer.applications.presets import get_preset
from keras_transformer.applications.translation import (
    Seq2SeqDecoder,
    transformer_seq2seq,
)

from keras_transformer.generation import BeamSampler, compile_decode, decode

VOCAB = 60
ENCODER_IDS = np.array(
    [[5, 6, 7, 8, 9, 3, 0, 0], [10, 11, 12, 3, 0, 0, 0, 0]], "int32"
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _model(**overrides):
    kwargs = dict(
        vocabulary_size=VOCAB,
        num_encoder_layers=2,
        num_decoder_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=24,
        dropout=0.0,
    )
    kwargs.update(overrides)
    model = transformer_seq2seq(**kwargs)
    # Large random embeddings make an untrained model's greedy output vary
    # from step to step, so decoding tests compare non-trivial sequences.
    rng = np.random.RandomState(0)
    for variable in model.variables:
        if "embedding" in variable.path and len(variable.shape) == 2:
            variable.assign(rng.normal(size=variable.shape).astype("float32"))
    return model


def _call(model, encoder_ids, decoder_ids):
    return _np(
        model(
            {"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids}
        )
    )


def _greedy_by_recomputation(model, encoder_ids, length):
    """Greedy decoding that reruns the full model for every new token."""
    out = np.zeros((len(encoder_ids), length), "int32")
    out[:, 0] = 2
    done = np.zeros(len(encoder_ids), bool)
    for i in range(1, length):
        logits = _call(model, encoder_ids, out[:, :i])
        token = logits[:, -1].argmax(-1)
        out[:, i] = np.where(done, 0, token)
        done |= token == 3
    return out


def test_shapes_dtypes_and_layer_names():
    model = _model()
    assert set(model.input) == {"encoder_token_ids", "decoder_token_ids"}
    logits = _call(model, ENCODER_IDS, np.array([[2, 4, 5], [2, 6, 0]]))
    assert logits.shape == (2, 3, VOCAB)
    assert logits.dtype == np.float32
    names = [layer.name for layer in model.layers]
    for name in ("token_embedding", "encoder_layer_1", "decoder_layer_1"):
        assert name in names


def test_mixed_precision_logits_are_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = _model()
    logits = model(
        {"encoder_token_ids": ENCODER_IDS, "decoder_token_ids": ENCODER_IDS}
    )
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.isfinite(_np(logits)).all()


@pytest.mark.parametrize("normalize_first", [False, True])
def test_padding_masks_come_from_id_zero(normalize_first):
    model = _model(normalize_first=normalize_first)
    decoder_ids = np.array([[2, 4, 5, 6], [2, 7, 0, 0]], "int32")
    base = _call(model, ENCODER_IDS, decoder_ids)
    # More padding on the encoder side changes nothing.
    longer = np.pad(ENCODER_IDS, [(0, 0), (0, 5)])
    np.testing.assert_allclose(
        _call(model, longer, decoder_ids), base, atol=1e-5
    )
    # Decoder padding after the real tokens changes no real position.
    padded = np.pad(decoder_ids, [(0, 0), (0, 3)])
    out = _call(model, ENCODER_IDS, padded)
    np.testing.assert_allclose(out[0, :4], base[0, :4], atol=1e-5)
    np.testing.assert_allclose(out[1, :2], base[1, :2], atol=1e-5)
    # The source padding is really masked: a real source token matters.
    changed = ENCODER_IDS.copy()
    changed[0, 0] = 40
    assert not np.allclose(_call(model, changed, decoder_ids)[0], base[0])


def _embedding_like(model, vocab, dim):
    return [
        v
        for v in model.variables
        if tuple(v.shape) in ((vocab, dim), (dim, vocab))
    ]


def test_tied_and_shared_embeddings_use_one_variable():
    tied = _model()
    assert len(_embedding_like(tied, VOCAB, 16)) == 1
    untied = _model(tie_embeddings=False)
    assert len(_embedding_like(untied, VOCAB, 16)) == 2
    unshared = _model(share_embeddings=False, tie_embeddings=False)
    assert len(_embedding_like(unshared, VOCAB, 16)) == 3
    assert tied.count_params() + VOCAB * 16 + VOCAB == untied.count_params()
    # The tied output projection reads the embedding table.
    table = tied.get_layer("token_embedding").token_embeddings
    before = _call(tied, ENCODER_IDS, ENCODER_IDS)
    table.assign(table * 2.0)
    assert not np.allclose(_call(tied, ENCODER_IDS, ENCODER_IDS), before)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"normalize_first": True, "position": "learned"},
        {"share_embeddings": False, "tie_embeddings": False},
    ],
)
def test_cached_greedy_equals_full_recomputation(overrides):
    model = _model(**overrides)
    decoder = Seq2SeqDecoder(model)
    cached = _np(decoder.generate(ENCODER_IDS, max_length=12))
    expected = _greedy_by_recomputation(model, ENCODER_IDS, 12)
    np.testing.assert_array_equal(cached, expected)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_cached_step_logits_equal_full_forward(normalize_first):
    model = _model(normalize_first=normalize_first)
    decoder = Seq2SeqDecoder(model)
    target = np.random.RandomState(3).randint(4, VOCAB, size=(2, 9))
    target[:, 0] = 2
    full = _call(model, ENCODER_IDS, target)  # [B, T, V]
    cache = decoder.initial_cache(ENCODER_IDS, max_length=9)
    for i in range(9):
        logits, cache = decoder.step_fn(target[:, i], i, cache)
        np.testing.assert_allclose(_np(logits), full[:, i], atol=1e-4)


def test_xla_compiled_decode_matches_eager():
    model = _model()
    decoder = Seq2SeqDecoder(model)
    eager = _np(decoder.generate(ENCODER_IDS, max_length=12))
    decode_fn = compile_decode(
        decoder.step_fn, "greedy", stop_token_ids=[3], variables=model.variables
    )
    token_ids, cache = decoder.prepare(ENCODER_IDS, 12)
    compiled = _np(decode_fn(token_ids, None, cache, start_index=1))
    np.testing.assert_array_equal(compiled, eager)


def test_beam_one_equals_greedy_and_wider_beam_scores_higher():
    model = _model()
    decoder = Seq2SeqDecoder(model)
    greedy = _np(decoder.generate(ENCODER_IDS, max_length=12))
    beam_one = _np(
        decoder.generate(ENCODER_IDS, max_length=12, sampler=BeamSampler(1))
    )
    np.testing.assert_array_equal(beam_one, greedy)

    def run(sampler):
        token_ids, cache = decoder.prepare(ENCODER_IDS, 12)
        return decode(
            decoder.step_fn,
            token_ids,
            None,
            cache,
            sampler,
            start_index=1,
            stop_token_ids=[3],
            return_scores=True,
        )

    _, greedy_scores = run("greedy")
    _, beam_scores = run(BeamSampler(4))
    assert np.all(_np(beam_scores) >= _np(greedy_scores) - 1e-4)


def test_keras_round_trip(tmp_path):
    model = _model(normalize_first=True)
    path = str(tmp_path / "seq2seq.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    decoder_ids = np.array([[2, 4, 5], [2, 6, 0]], "int32")
    np.testing.assert_allclose(
        _call(restored, ENCODER_IDS, decoder_ids),
        _call(model, ENCODER_IDS, decoder_ids),
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        _np(Seq2SeqDecoder(restored).generate(ENCODER_IDS, 10)),
        _np(Seq2SeqDecoder(model).generate(ENCODER_IDS, 10)),
    )


def test_fit_lowers_the_loss():
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy

    model = _model()
    model.compile(
        keras.optimizers.Adam(1e-2),
        MaskedSparseCategoricalCrossentropy(0.1),
        jit_compile=False,
    )
    x = {"encoder_token_ids": ENCODER_IDS, "decoder_token_ids": ENCODER_IDS}
    history = model.fit(x, ENCODER_IDS, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_presets_build_and_bad_arguments():
    tiny = transformer_seq2seq(**get_preset("translation", "tiny"))
    assert tiny.count_params() == 13248
    assert get_preset("translation", "base")["hidden_dim"] == 512
    with pytest.raises(ValueError, match="num_heads=3"):
        _model(num_heads=3)
    with pytest.raises(ValueError, match="hidden_dim=0"):
        _model(hidden_dim=0)
    with pytest.raises(ValueError, match="max_length=99"):
        Seq2SeqDecoder(_model()).generate(ENCODER_IDS, max_length=99)
    with pytest.raises(ValueError, match="Received"):
        Seq2SeqDecoder(keras.Sequential([keras.layers.Dense(2)]))
