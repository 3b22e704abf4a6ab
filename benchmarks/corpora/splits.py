"""The split rule, the cross-split deduplication, the caps and the writers.

The rule, the same for every corpus:

1. Each row has a stable key (a file path, a msgid, a source package
   name). `u = sha256(corpus name + NUL + key)` read as a fraction in
   [0, 1): `u < test_fraction` is test, `u < test_fraction +
   valid_fraction` is valid, the rest is train. Rows sharing a key share a
   split, so every message, package or file sits in one split only.
2. Each split is put in order of `(u, row)`, and exact duplicates are
   removed: within a split, and across splits (a valid row whose dedup key
   -- the source sentence, the classified text, the document -- is in
   train is dropped; a test row whose key is in train or valid is dropped).
3. Caps, taking rows in that order: train 100,000 rows (5 MB for an LM
   corpus), valid and test 2,000 rows (200 KB for an LM corpus); the rows
   past a cap are left out.

So the same raw material always gives byte-identical files.
"""

import hashlib
import os

TRAIN_ROWS, EVAL_ROWS = 100_000, 2_000
TRAIN_BYTES, EVAL_BYTES = 5_000_000, 200_000
SPLITS = ("train", "valid", "test")


def key_fraction(name, key):
    """The key's position in [0, 1): the first 8 bytes of a SHA-256.

    Example:
    >>> 0 <= key_fraction("corpus", "key") < 1
    True
    """
    digest = hashlib.sha256(f"{name}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(name, key, valid_fraction, test_fraction):
    """ "train", "valid" or "test" for one key (step 1 of the rule).

    Args:
        name: the corpus name (salts the hash).
        key: the row's stable key.
        valid_fraction: the share of keys that go to valid.
        test_fraction: the share of keys that go to test.

    Returns:
        The split name.

    Example:
    >>> split_of("c", "k", 0.0, 0.0)
    'train'
    """
    for argument, value in (
        ("valid_fraction", valid_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0 <= value < 1:
            raise ValueError(
                f"`{argument}` must be in [0, 1). Received: {argument}={value}"
            )
    u = key_fraction(name, key)
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"


def row_size(row):
    """Bytes of a row as written (UTF-8, with its separator)."""
    if isinstance(row, str):
        return len(row.encode("utf-8")) + 2
    return len("\t".join(row).encode("utf-8")) + 1


def assign(
    name,
    rows,
    dedup_key,
    valid_fraction,
    test_fraction,
    by_bytes=False,
    caps=None,
):
    """Applies the split rule to `(key, row)` pairs.

    Args:
        name: the corpus name.
        rows: an iterable of `(key, row)`; a row is a tuple of strings (a
            TSV line) or a string (a document).
        dedup_key: a function from a row to what makes two rows the same.
        valid_fraction: the share of keys in valid.
        test_fraction: the share of keys in test.
        by_bytes: caps count bytes (LM corpora) instead of rows.
        caps: `{split: cap}` overriding the defaults.

    Returns:
        `{split: [(key, row), ...]}` in file order.

    Example:
    >>> rows = [(str(i), ("a%d" % (i % 5), "b")) for i in range(20)]
    >>> out = assign("x", rows, lambda r: r[0], 0.2, 0.2)
    >>> sum(len(v) for v in out.values())
    5
    """
    if by_bytes:
        limits = {"train": TRAIN_BYTES, "valid": EVAL_BYTES, "test": EVAL_BYTES}
    else:
        limits = {"train": TRAIN_ROWS, "valid": EVAL_ROWS, "test": EVAL_ROWS}
    limits.update(caps or {})
    grouped = {split: [] for split in SPLITS}
    for key, row in rows:
        split = split_of(name, key, valid_fraction, test_fraction)
        grouped[split].append((key_fraction(name, key), key, row))
    seen, result = set(), {}
    for split in SPLITS:
        kept, used = [], 0
        for _, key, row in sorted(grouped[split], key=lambda t: (t[0], t[2])):
            identity = dedup_key(row)
            if identity in seen:
                continue
            size = row_size(row) if by_bytes else 1
            if used + size > limits[split]:
                if by_bytes:
                    continue  # a smaller document may still fit
                break
            seen.add(identity)
            used += size
            kept.append((key, row))
        result[split] = kept
    return result


def document_line_text(document):
    """A document as one blank-line-free block (blank lines removed).

    The LM files separate documents by blank lines, so a document's own
    blank lines are dropped there (its file under `*_files/` keeps them).

    Example:
    >>> document_line_text("a\\n\\n  \\nb\\n")
    'a\\nb'
    """
    return "\n".join(line for line in document.splitlines() if line.strip())


def write_split(directory, split, application, rows, files=False):
    """Writes one split; returns `{"rows", "bytes", "file"}`.

    Translation rows go to `SPLIT.tsv` (`source<TAB>target`), classifier rows
    to `SPLIT.tsv` (`label<TAB>text`), LM documents to `SPLIT.txt` (blank
    line between documents) and, with `files=True`, one file per document
    under `SPLIT_files/KEY`.
    """
    if application == "gpt":
        path = os.path.join(directory, f"{split}.txt")
        text = "\n\n".join(document_line_text(row) for _, row in rows) + "\n"
        if files:
            root = os.path.join(directory, f"{split}_files")
            for key, row in rows:
                target = os.path.normpath(os.path.join(root, key))
                if not target.startswith(root + os.sep):
                    raise ValueError(
                        f"A file key leaves the folder. Received: key={key}"
                    )
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w", encoding="utf-8", newline="") as f:
                    f.write(row)
    else:
        path = os.path.join(directory, f"{split}.tsv")
        for _, row in rows:
            if any("\t" in cell or "\n" in cell for cell in row):
                raise ValueError(
                    f"A TSV cell holds a tab or newline. Received: row={row!r}"
                )
        text = "".join("\t".join(row) + "\n" for _, row in rows)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return {
        "rows": len(rows),
        "bytes": len(text.encode("utf-8")),
        "file": os.path.basename(path),
    }
