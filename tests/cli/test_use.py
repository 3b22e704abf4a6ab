"""`translate`, `classify`, `generate`: one output line per input line;
`export` and `average-classifiers` print the path they wrote."""

import json

import pytest

from tests.inference import model_dirs as builders

SENTENCES = ["And God said, let there be light.", "The king went to the city."]


@pytest.fixture(scope="module")
def translator(cli_model_dirs):
    from keras_transformer.inference import Translator

    return Translator.from_dir(cli_model_dirs["translation"])


def test_translate_matches_the_python_api(cli, cli_model_dirs, translator):
    model = cli_model_dirs["translation"]
    run = cli("translate", "--model", model, *SENTENCES)
    assert run.code == 0, run
    assert run.out.splitlines() == translator.translate(SENTENCES)
    assert any(run.out.split())  # the scrambled model says something
    run = cli("translate", "--model", model, "--num-beams", "2",
              stdin="\n".join(SENTENCES) + "\n")  # fmt: skip
    assert run.out.splitlines() == translator.translate(SENTENCES, num_beams=2)


def test_translate_keeps_blank_lines_aligned(cli, cli_model_dirs, translator):
    model = cli_model_dirs["translation"]
    stdin = f"{SENTENCES[0]}\n\n   \n{SENTENCES[1]}\n"
    run = cli("translate", "--model", model, stdin=stdin)
    assert run.code == 0, run
    lines = run.out.split("\n")
    assert lines[-1] == "" and len(lines) == 5, run.out
    assert lines[1] == "" and lines[2] == ""
    assert lines[0] == translator.translate(SENTENCES[0])
    assert lines[3] == translator.translate(SENTENCES[1])
    run = cli("translate", "--model", model, "", "   ")
    assert run.code == 0 and run.out == "\n\n", run


def test_beam_size_still_works_with_a_warning(cli, cli_model_dirs, translator):
    run = cli("translate", "--model", cli_model_dirs["translation"],
              "--beam-size", "2", SENTENCES[0])  # fmt: skip
    assert run.code == 0, run
    assert run.out.splitlines() == [
        translator.translate(SENTENCES[0], num_beams=2)
    ]
    assert "--beam-size is deprecated" in run.err and "--num-beams" in run.err


def _check_classify_lines(out, texts, classifier):
    lines = out.splitlines()
    assert len(lines) == len(texts), out
    for line, (label, probability) in zip(lines, classifier.classify(texts)):
        assert line.split("\t") == [label, f"{probability:.4f}"]


def test_classify_answers_every_line_blank_ones_included(cli, cli_model_dirs):
    from keras_transformer.inference import TextClassifier

    model = cli_model_dirs["classifier"]
    classifier = TextClassifier.from_dir(model)
    run = cli("classify", "--model", model, SENTENCES[0], "", "  ")
    assert run.code == 0, run
    _check_classify_lines(run.out, [SENTENCES[0], "", "  "], classifier)
    run = cli("classify", "--model", model, stdin="a\n\nb\n")
    assert run.code == 0, run
    _check_classify_lines(run.out, ["a", "", "b"], classifier)
    run = cli("classify", "--model", model, stdin="")
    assert run.code == 0 and run.out == "", run


def test_generate_keeps_blank_lines_aligned(cli, cli_model_dirs):
    from keras_transformer.inference import TextGenerator

    model = cli_model_dirs["gpt"]
    generator = TextGenerator.from_dir(model)
    common = ("generate", "--model", model, "--max-new-tokens", "4")
    stdin = "In the beginning\n\nAnd God said\n"
    streamed = cli(*common, stdin=stdin)
    assert streamed.code == 0, streamed
    lines = streamed.out.splitlines()
    assert len(lines) == 3, streamed.out
    assert lines[0].startswith("In the beginning")
    assert lines[2].startswith("And God said")
    batch = cli(*common, "--no-stream", stdin=stdin)
    assert batch.code == 0, batch
    # Greedy streaming runs the same steps as the compiled batch.
    expected = generator.generate(
        ["In the beginning", "", "And God said"], 4, return_full_text=True
    )
    assert batch.out.splitlines() == [" ".join(t.split("\n")) for t in expected]
    assert [line.strip() for line in lines] == [
        line.strip() for line in batch.out.splitlines()
    ]
    run = cli(*common, "")
    assert run.code == 0 and len(run.out.splitlines()) == 1, run


def test_generate_samplers_and_seed(cli, cli_model_dirs):
    model = cli_model_dirs["gpt"]
    common = ("generate", "--model", model, "--max-new-tokens", "5")
    first = cli(*common, "--sampler", "top_k", "--top-k", "5", "--seed", "3",
                "In the beginning")  # fmt: skip
    again = cli(*common, "--sampler", "top_k", "--top-k", "5", "--seed", "3",
                "In the beginning")  # fmt: skip
    assert first.code == 0 and first.out == again.out, (first, again)
    beam = cli(*common, "--sampler", "beam", "--num-beams", "2",
               stdin="one\ntwo\n")  # fmt: skip
    assert beam.code == 0, beam
    lines = beam.out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("two")
    run = cli(*common[:3], "--max-new-tokens", "1000", "x")
    assert run.code == 2, run
    assert "--max-new-tokens 1000" in run.last_error_line


def test_export_prints_the_path_and_refuses_an_existing_one(
    cli, cli_model_dirs, tmp_path
):
    output = tmp_path / "saved_models" / "genre" / "1"
    run = cli("export", "--model", cli_model_dirs["classifier"],
              "--output", output)  # fmt: skip
    assert run.code == 0, run
    assert run.out.strip() == str(output)
    assert (output / "saved_model.pb").exists()
    run = cli("export", "--model", cli_model_dirs["classifier"],
              "--output", output)  # fmt: skip
    assert run.code == 2 and "already exists" in run.last_error_line, run


def test_average_classifiers_prints_the_new_directory(
    cli, cli_tokenizer, tmp_path
):
    first, second = (
        builders.classifier_dir(tmp_path / f"seed{seed}", cli_tokenizer, seed)
        for seed in (0, 1)
    )
    for directory in (first, second):  # as `train classifier` writes it
        path = directory / "metadata.json"
        metadata = json.loads(path.read_text())
        metadata["inference"].setdefault("architecture", "bert")
        path.write_text(json.dumps(metadata))
    pair = tmp_path / "pair"
    run = cli("average-classifiers", "--mode", "probabilities", "--model",
              first, "--model", second, "--output", pair)  # fmt: skip
    assert run.code == 0, run
    assert run.out.strip() == str(pair)
    metadata = json.loads((pair / "metadata.json").read_text())
    assert metadata["task"] == "classifier"
    run = cli("classify", "--model", pair, "Blessed are the meek.")
    assert run.code == 0 and len(run.out.splitlines()) == 1, run
    run = cli("average-classifiers", "--model", first, "--output",
              tmp_path / "one")  # fmt: skip
    assert run.code == 2 and "at least two" in run.last_error_line, run


def test_repetition_flags(cli, cli_model_dirs, translator):
    model = cli_model_dirs["translation"]
    flags = ("--no-repeat-ngram-size", "2", "--repetition-penalty", "1.3")
    run = cli("translate", "--model", model, *flags, *SENTENCES)
    assert run.code == 0, run
    assert run.out.splitlines() == translator.translate(
        SENTENCES, no_repeat_ngram_size=2, repetition_penalty=1.3
    )
    from keras_transformer.inference import TextGenerator

    gpt = cli_model_dirs["gpt"]
    generator = TextGenerator.from_dir(gpt)
    expected = generator.generate(
        ["In the beginning"],
        max_new_tokens=6,
        return_full_text=True,
        no_repeat_ngram_size=2,
        repetition_penalty=1.3,
    )
    common = ("generate", "--model", gpt, "--max-new-tokens", "6", *flags)
    streamed = cli(*common, "In the beginning")
    batch = cli(*common, "--no-stream", "In the beginning")
    assert batch.code == 0 and streamed.code == 0, (batch, streamed)
    assert batch.out.splitlines() == expected
    assert streamed.out.strip() == batch.out.strip()
    bad = cli("translate", "--model", model, "--repetition-penalty", "0", "x")
    assert bad.code == 2, bad
    assert "--repetition-penalty 0" in bad.last_error_line
