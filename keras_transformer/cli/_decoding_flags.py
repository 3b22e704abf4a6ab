"""The decoding flags of `translate` and `generate` (part of
`keras_transformer.cli._flags.FLAGS`; see that module for the rules).

Imports no TensorFlow or Keras.
"""

SAMPLERS = ("greedy", "random", "top_k", "top_p", "beam")

DECODING_FLAGS = {
    "--num-beams": dict(
        dest="num_beams",
        metavar="N",
        type=int,
        default=None,
        help="beams of beam search; 1 is greedy search (default: 1 for "
        "translation, 4 for the beam sampler)",
        names=("beam_size",),
    ),
    "--length-penalty": dict(
        dest="length_penalty",
        metavar="ALPHA",
        type=float,
        default=None,
        help="beam-search length penalty (default: 0.6)",
    ),
    "--no-repeat-ngram-size": dict(
        dest="no_repeat_ngram_size",
        metavar="N",
        type=int,
        default=None,
        help="against loops: never repeat an n-gram of N tokens in an "
        "output, e.g. 3; 1 forbids any repeated token (default: 0, off)",
    ),
    "--repetition-penalty": dict(
        dest="repetition_penalty",
        metavar="R",
        type=float,
        default=None,
        help="against loops: divide the positive logits of tokens already "
        "in the output by R and multiply the negative ones, e.g. 1.2 "
        "(default: 1.0, off)",
    ),
    "--min-new-tokens": dict(
        dest="min_new_tokens",
        metavar="N",
        type=int,
        default=None,
        help="no output ends before it has N tokens (default: 0, off)",
    ),
    "--stop": dict(
        dest="stop",
        metavar="TEXT",
        action="append",
        default=None,
        help="end an output before this text, which is removed (give it "
        "more than once for several; '\\n' is a line break)",
    ),
    "--stop-token-id": dict(
        dest="stop_token_ids",
        metavar="ID",
        type=int,
        action="append",
        default=None,
        help="end an output at this token id too, beside the end token "
        "(give it more than once for several, at most 16)",
    ),
    "--n-best": dict(
        dest="num_return_sequences",
        metavar="K",
        type=int,
        default=None,
        help="print the K best translations of each text (beam search; K "
        "at most --num-beams) or K samples (--sampler), as "
        "`INDEX<TAB>TRANSLATION` lines, INDEX the text's line from 0 "
        "(default: 1)",
    ),
    "--num-return-sequences": dict(
        dest="num_return_sequences",
        metavar="K",
        type=int,
        default=None,
        help="print K completions of each prompt (the K best beams of "
        "--sampler beam, or K samples) as `INDEX<TAB>COMPLETION` lines, "
        "INDEX the prompt's line from 0 (default: 1)",
    ),
    "--scores": dict(
        dest="return_scores",
        action="store_true",
        help="add each output's score, its summed log-probability (beam "
        "search: the length-penalized beam score), after a tab",
    ),
    "--stream": dict(
        dest="stream",
        action="store_true",
        help="print each translation as it is produced, one text after "
        "the other (greedy or --sampler; not beam search)",
    ),
    "--max-new-tokens": dict(
        dest="max_new_tokens",
        metavar="N",
        type=int,
        default=None,
        help="tokens to generate (default: 64, or half the model's "
        "positions if fewer)",
    ),
    "--sampler": dict(
        dest="sampler",
        default=None,
        choices=SAMPLERS,
        help="how the next token is chosen (default: greedy; for "
        "translation beam search when --num-beams > 1)",
    ),
    "--temperature": dict(
        dest="temperature",
        metavar="T",
        type=float,
        default=None,
        help="softmax temperature of the random samplers (default: 1.0)",
    ),
    "--top-k": dict(
        dest="top_k",
        metavar="K",
        type=int,
        default=None,
        help="k of the top_k sampler (default: 40)",
    ),
    "--top-p": dict(
        dest="top_p",
        metavar="P",
        type=float,
        default=None,
        help="p of the top_p sampler (default: 0.9)",
    ),
    "--keep-newlines": dict(
        dest="keep_newlines",
        action="store_true",
        help="print completions with their line breaks (code, poetry); by "
        "default a line break prints as a space, one output line per prompt",
    ),
    "--no-stream": dict(
        dest="no_stream",
        action="store_true",
        help="generate all prompts as one compiled batch instead of "
        "printing tokens as they come",
    ),
}
