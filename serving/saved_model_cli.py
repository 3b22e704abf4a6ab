"""`saved_model_cli` with TensorFlow Text's ops registered.

The exported models tokenize in the graph with TensorFlow Text's
SentencePiece ops, which the stock `saved_model_cli` does not load, so its
`run` command stops with "Op type not registered 'SentencepieceOp'". This
wrapper imports `tensorflow_text` first and then hands every argument to
the real tool, which then loads the SavedModel the way TF Serving's C++
loader does (a TF1 session that restores the variables):

    python serving/saved_model_cli.py run --dir saved_models/genre/1 \
        --tag_set serve --signature_def serving_default \
        --input_exprs 'text=["Blessed are the meek"]'

`show` needs no wrapper (it reads the protocol buffer only).
"""

import sys

import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
from tensorflow.python.tools import saved_model_cli

if __name__ == "__main__":
    sys.argv[0] = "saved_model_cli"
    saved_model_cli.main()
