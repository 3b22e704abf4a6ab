"""Data: bundled corpora, file loaders and tf.data pipelines."""

from keras_transformer.data.loaders import (
    GENRE_CLASS_NAMES,
    DataFormatError,
    load_bundled_genre,
    load_bundled_lm_text,
    load_bundled_translation,
    read_labeled_tsv,
    read_pairs_tsv,
    read_text_files,
    stdin_lines,
)

__all__ = [
    "GENRE_CLASS_NAMES",
    "DataFormatError",
    "load_bundled_genre",
    "load_bundled_lm_text",
    "load_bundled_translation",
    "read_labeled_tsv",
    "read_pairs_tsv",
    "read_text_files",
    "stdin_lines",
]
