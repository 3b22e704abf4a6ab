"""`translate`, `generate`, `classify`, `export`, `average-classifiers`.

`translate`, `generate` and `classify` read their texts from the command
line, else from the lines of standard input, and print one output line per
input line, blank lines included: a blank text translates to an empty
line, a blank prompt is continued from nothing, a blank text is classified
like any other.
"""

import os

from keras_transformer.cli import _runtime

INFERENCE = "keras_transformer.inference"


def run_translate(args):
    """Runs `keras-transformer translate`: one translation per line (K
    lines `INDEX<TAB>TRANSLATION` with `--n-best K`; `<TAB>SCORE` added
    with `--scores`)."""
    inference = _runtime.import_quietly(INFERENCE, args.verbose)
    translator = inference.Translator.from_dir(args.model_dir)
    texts = _runtime.input_texts(args.texts)
    options = _runtime.python_kwargs(
        args, drop=("model_dir", "texts", *_SAMPLER_FLAGS)
    )
    if options.get("stop"):
        options["stop"] = [_unescape(s) for s in options["stop"]]
    if args.sampler:
        from keras_transformer.inference import generator as generator_lib

        options["sampler"] = generator_lib.make_sampler(
            args.sampler, **_sampler_options(args)
        )
    if args.stream:
        return _stream_translations(translator, texts, options)
    with _runtime.progress_on_stderr():
        outputs = translator.translate(
            texts, verbose=_runtime.progress_verbose(), **options
        )
    _print_outputs(outputs, options)
    return 0


_SAMPLER_FLAGS = ("sampler", "temperature", "top_k", "top_p")


def _stream_translations(translator, texts, options):
    """`translate --stream`: each translation printed as it comes."""
    unsupported = {"num_return_sequences", "return_scores", "length_penalty"}
    given = sorted(unsupported & set(options))
    if given or options.get("num_beams", 1) != 1:
        raise ValueError(
            "`--stream` prints one greedy or sampled translation per text; "
            "it does not combine with --num-beams, --length-penalty, "
            f"--n-best or --scores. Received: {given or ['--num-beams']}"
        )
    options.pop("num_beams", None)
    for text in texts:
        pieces = iter(translator.stream(text, **options))
        first = next(pieces, "")  # Bad settings raise before any output.
        print(_runtime.one_line(first), end="", flush=True)
        for piece in pieces:
            print(_runtime.one_line(piece), end="", flush=True)
        print(flush=True)
    return 0


def _print_outputs(outputs, options, show=None):
    """Prints one line per output: `TEXT`, `TEXT<TAB>SCORE`, or with K
    outputs per input K lines `INDEX<TAB>TEXT[<TAB>SCORE]`."""
    show = show if callable(show) else _runtime.one_line
    count = options.get("num_return_sequences") or 1
    scores = options.get("return_scores")

    def line(item):
        if scores:
            text, score = item
            return f"{show(text)}\t{score:.4f}"
        return show(item)

    for index, output in enumerate(outputs):
        if count == 1:
            print(line(output), flush=True)
        else:
            for item in output:
                print(f"{index}\t{line(item)}", flush=True)


def run_classify(args):
    """Runs `keras-transformer classify`: `label<TAB>probability` lines."""
    inference = _runtime.import_quietly(INFERENCE, args.verbose)
    classifier = inference.TextClassifier.from_dir(args.model_dir)
    texts = _runtime.input_texts(args.texts)
    with _runtime.progress_on_stderr():
        answers = classifier.classify(
            texts, verbose=_runtime.progress_verbose()
        )
    for label, probability in answers:
        print(f"{label}\t{probability:.4f}", flush=True)
    return 0


def _sampler_options(args):
    options = {
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "num_beams": args.num_beams,
    }
    return {k: v for k, v in options.items() if v is not None}


def _repetition_options(args):
    """The decoding controls given: repetition, minimum length, stops."""
    options = {
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "repetition_penalty": args.repetition_penalty,
        "min_new_tokens": args.min_new_tokens,
        "stop": args.stop and [_unescape(s) for s in args.stop],
        "stop_token_ids": args.stop_token_ids,
    }
    return {k: v for k, v in options.items() if v is not None}


def _unescape(text):
    r"""`\n`, `\t` and `\\` typed on a command line, as the characters."""
    out, i = [], 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _ESCAPES:
            out.append(_ESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\\\": "\\"}


def run_generate(args):
    """Runs `keras-transformer generate`: one continued prompt per line.

    Tokens are printed as they come (one prompt after the other) unless
    `--no-stream` or the beam sampler asks for one compiled batch. Line
    breaks print as spaces unless `--keep-newlines` (code, poetry).
    """
    inference = _runtime.import_quietly(INFERENCE, args.verbose)
    from keras_transformer.inference import generator as generator_lib

    generator = inference.TextGenerator.from_dir(args.model_dir)
    max_new_tokens = args.max_new_tokens
    if max_new_tokens is None:
        max_new_tokens = min(64, generator.max_sequence_length // 2)
    name = args.sampler or "greedy"
    sampler = generator_lib.make_sampler(name, **_sampler_options(args))
    prompts = _runtime.input_texts(args.prompts)
    show = str if args.keep_newlines else _runtime.one_line
    repetition = _repetition_options(args)
    n_best = {
        "num_return_sequences": args.num_return_sequences or 1,
        "return_scores": args.return_scores,
    }
    if args.no_stream or name == "beam" or n_best != _ONE_UNSCORED:
        with _runtime.progress_on_stderr():
            texts = generator.generate(
                prompts,
                max_new_tokens=max_new_tokens,
                sampler=sampler,
                seed=args.seed,
                return_full_text=True,
                verbose=_runtime.progress_verbose(),
                **repetition,
                **n_best,
            )
        _print_outputs(texts, n_best, show)
        return 0
    for prompt in prompts:
        pieces = iter(
            generator.stream(
                prompt,
                max_new_tokens=max_new_tokens,
                sampler=sampler,
                seed=args.seed,
                **repetition,
            )
        )
        first = next(pieces, "")  # Bad settings raise before any output.
        text = _prompt_as_read(generator, prompt, max_new_tokens) + first
        print(show(text), end="", flush=True)
        for piece in pieces:
            print(show(piece), end="", flush=True)
        print(flush=True)
    return 0


_ONE_UNSCORED = {"num_return_sequences": 1, "return_scores": False}


def _prompt_as_read(generator, prompt, max_new_tokens):
    """The prompt as the model reads it (clipped to leave room for the new
    tokens, unknown characters as the tokenizer shows them)."""
    from keras_transformer.inference.generator import encode_prompts

    ids = encode_prompts(generator.tokenizer, [prompt])[0]
    room = generator.max_sequence_length - max_new_tokens
    return generator.detokenize([ids[-room:]])[0]


def run_export(args):
    """Runs `keras-transformer export`; prints the export path."""
    export = _runtime.import_quietly("keras_transformer.export", args.verbose)
    with _runtime.progress_on_stderr():
        path = export.export_model(
            args.model_dir,
            args.output,
            overwrite=args.overwrite,
            dtype=args.dtype,
        )
    print(path, flush=True)
    return 0


def run_quantize(args):
    """Runs `keras-transformer quantize`; prints the new directory."""
    quantization = _runtime.import_quietly(
        "keras_transformer.quantization", args.verbose
    )
    with _runtime.progress_on_stderr():
        output = quantization.quantize_model_dir(
            args.model_dir, args.output, overwrite=args.overwrite
        )
    print(os.path.abspath(output), flush=True)
    return 0


def run_average(args):
    """Runs `keras-transformer average-classifiers`; prints the new path."""
    ensemble = _runtime.import_quietly(
        "keras_transformer.tasks.ensemble", args.verbose
    )
    options = {"mode": args.mode} if args.mode else {}
    with _runtime.progress_on_stderr():
        output = ensemble.average_classifiers(
            args.model_dir, args.output, overwrite=args.overwrite, **options
        )
    print(os.path.abspath(output), flush=True)
    return 0
