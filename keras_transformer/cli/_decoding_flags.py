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
        help="how the next token is chosen (default: greedy)",
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
