"""Build the small corpora bundled in `keras_transformer/data/bundled/`.

The corpora come from two public-domain SWORD Bible modules packaged by
Debian:

- `sword-text-web` (module `engWEB2015eb`): the World English Bible.
- `sword-text-sparv` (module `spaRV1909eb`): the Reina-Valera 1909.

Run it from the repository root with the `.deb` files (no `dpkg` needed, the
packages are unpacked in Python) or with already extracted modules:

```
python -m tools.build_corpora \
    --web-deb sword-text-web_426.0-1_all.deb \
    --sparv-deb sword-text-sparv_2.60-1_all.deb
python -m tools.build_corpora \
    --web-dir /usr/share/sword --sparv-dir /usr/share/sword
```

It writes, deterministically (gzip with `mtime=0`, sorted inputs, splits by
a hash of the verse key):

- `translation_en_es.tsv.gz`: `split<TAB>key<TAB>english<TAB>spanish`, the
  verse pairs with at most `--max-words` words on each side.
- `genre_verses.tsv.gz`: `split<TAB>key<TAB>label<TAB>text`, every English
  verse of the 66-book Protestant canon labelled with its book's genre.
- `english_lm_{train,valid,test}.txt.gz`: one English verse per line, split
  by whole books (`LM_VALID_BOOKS`, `LM_TEST_BOOKS`), so no verse, chapter or
  book context leaks from the evaluation splits into training.
- `PROVENANCE.md`: sources, command, counts and a naive-Bayes baseline.

Cleaning. The modules store OSIS XML. pysword's `clean=True` drops the tags
but glues the words on both sides of a footnote together ("Godcreated"), and
it keeps the note text. `clean_osis` instead removes `<note>` elements (with
their text), editorial headings and speaker labels, keeps the words of every
other element, and puts a space where a removed note separated two words.
The last verse of Revelation in the WEB module also carries the WEB glossary
after the end-of-book marker; that tail is cut. The RV1909 prints the first
word of each chapter in capitals ("EN el principio"); `fix_drop_cap` restores
the usual casing, choosing between "Jehová" and "fueron" by how the word is
written elsewhere in the text.

Alignment. Verse keys (`Book.chapter.verse`) align the two translations
except where the RV1909 numbers verses differently
(`RV1909_MISNUMBERED_CHAPTERS`), in chapters where it merged two verses or
moved one to the next chapter (found by `chapters_missing_verses`), and in
the Psalms, where it folds the title into verse 1; those verses are left out
of the translation pairs (not out of the English corpora).

The WEB module uses the NRSVA versification and contains the deuterocanon;
only the 66 books of `CANON_BOOKS` are read.
"""

import argparse
import collections
import functools
import gzip
import hashlib
import io
import logging
import math
import os
import re
import tarfile
import tempfile
import time

from keras_transformer.data.loaders import GENRE_CLASS_NAMES

logger = logging.getLogger(__name__)

WEB_MODULE = "engWEB2015eb"
SPARV_MODULE = "spaRV1909eb"
WEB_PACKAGE = "sword-text-web"
SPARV_PACKAGE = "sword-text-sparv"

# The 66 books of the Protestant canon, OSIS names, in canonical order.
CANON_BOOKS = (
    # Law.
    "Gen", "Exod", "Lev", "Num", "Deut",
    # History.
    "Josh", "Judg", "Ruth", "1Sam", "2Sam", "1Kgs", "2Kgs", "1Chr", "2Chr",
    "Ezra", "Neh", "Esth",
    # Wisdom.
    "Job", "Ps", "Prov", "Eccl", "Song",
    # Prophets.
    "Isa", "Jer", "Lam", "Ezek", "Dan", "Hos", "Joel", "Amos", "Obad",
    "Jonah", "Mic", "Nah", "Hab", "Zeph", "Hag", "Zech", "Mal",
    # Gospels and Acts.
    "Matt", "Mark", "Luke", "John", "Acts",
    # Epistles and Revelation.
    "Rom", "1Cor", "2Cor", "Gal", "Eph", "Phil", "Col", "1Thess", "2Thess",
    "1Tim", "2Tim", "Titus", "Phlm", "Heb", "Jas", "1Pet", "2Pet", "1John",
    "2John", "3John", "Jude", "Rev",
)  # fmt: skip

# First book of each genre, in the order of `GENRE_CLASS_NAMES`.
_GENRE_FIRST_BOOKS = ("Gen", "Josh", "Job", "Isa", "Matt", "Rom")


def _book_genres():
    genres = {}
    starts = [CANON_BOOKS.index(book) for book in _GENRE_FIRST_BOOKS]
    ends = starts[1:] + [len(CANON_BOOKS)]
    for label, start, end in zip(GENRE_CLASS_NAMES, starts, ends):
        for book in CANON_BOOKS[start:end]:
            genres[book] = label
    return genres


BOOK_GENRES = _book_genres()

# Chapters where the RV1909 module numbers verses differently from the WEB.
RV1909_MISNUMBERED_CHAPTERS = frozenset(
    [
        ("Num", 13),
        ("Num", 30),
        ("1Sam", 24),
        ("2Chr", 33),
        ("Job", 39),
        ("Job", 40),
        ("Hos", 12),
        ("Jonah", 2),
    ]
)

# Whole books held out of the language-model corpus (about 5% of the verses
# each, mixing genres, short and long books).
LM_VALID_BOOKS = (
    "Ruth", "Eccl", "Joel", "Jonah", "Nah", "Mark", "Phil", "Titus", "1Pet",
)  # fmt: skip
LM_TEST_BOOKS = (
    "Esth", "Song", "Lam", "Amos", "Mic", "Hab", "John", "Col", "Jas",
)  # fmt: skip

SPLITS = ("train", "valid", "test")

# --- Cleaning ---------------------------------------------------------------

# Elements removed together with their text.
_DROPPED_ELEMENT = re.compile(
    r"<(note|speaker)\b[^>]*?(?:/>|>.*?</\1\s*>)", re.DOTALL
)
# Titles that are not part of the verse (canonical psalm titles are kept).
_TITLE_ELEMENT = re.compile(r"<title\b([^>]*)>(.*?)</title\s*>", re.DOTALL)
# Closing marker of a book; anything after it is appended material.
_BOOK_END = re.compile(r'<div\b[^>]*\beID="[^"]*"[^>]*\btype="book"[^>]*/>')
_BOOK_END_ALT = re.compile(r'<div\b[^>]*\btype="book"[^>]*\beID="[^"]*"[^>]*/>')
# Elements that separate lines or blocks: they become whitespace.
_BLOCK_TAG = re.compile(
    r"</?(?:l|lg|lb|div|p|chapter|list|item|milestone|title|table|row|cell)"
    r"\b[^>]*>"
)
_ANY_TAG = re.compile(r"<[^>]*>")
# Two word elements with nothing between them (the RV1909 wraps words added
# by the translators in `<transChange>`, often right against a `<w>`).
_WORD_JOINT = re.compile(r"</(?:w|transChange)>(?=<(?:w|transChange)\b)")
_NOTE_MARK = "\x00"
_JOINT_MARK = "\x01"
# Spanish object pronouns written attached to a verb ("díjole", "tómalo").
SPANISH_ENCLITICS = frozenset(
    ["me", "te", "se", "le", "les", "lo", "los", "la", "las", "nos", "os"]
)
# Words that precede a pronoun without taking it as a suffix.
_NOT_A_HOST = frozenset(
    ["no", "ni", "y", "e", "o", "u", "que", "como", "si", "ya", "a", "á",
     "cuando", "donde", "quien", "quién", "yo", "tú", "él", "ella", "ello",
     "así", "entonces", "también", "aun", "aún", "mas", "pues", "porque",
     "se", "lo", "la", "le", "me", "te", "nos", "os", "les", "los", "las"]
)  # fmt: skip
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"'}


def _replace_title(match):
    if 'canonical="true"' in match.group(1):
        return " " + match.group(2) + " "
    return " "


def _join_words(text, enclitics):
    """Turn the joints between adjacent word elements into spaces.

    A joint before one of `enclitics` that follows a verb-like word is
    removed instead ("díjo" + "le" -> "díjole"): not after a function word,
    a word ending in "s", or a capitalized word inside a sentence (a name).
    """

    def join(match):
        host, pronoun = match.group(1), match.group(2)
        before = match.string[: match.start()].rstrip()
        sentence_start = not before or before[-1] in '.:;?!¿¡“"'
        is_host = (
            host.lower() not in _NOT_A_HOST
            and not host.endswith("s")
            and (sentence_start or not host[0].isupper())
        )
        return host + ("" if is_host else " ") + pronoun

    if enclitics:
        alternatives = "|".join(sorted(enclitics))
        pattern = rf"(?<!\w)(\w+){_JOINT_MARK}({alternatives})(?!\w)"
        text = re.sub(pattern, join, text)
    return text.replace(_JOINT_MARK, " ")


def clean_osis(markup, enclitics=()):
    """Turn one verse of OSIS markup into plain text.

    Footnotes and cross-references (`<note>`) and speaker labels are removed
    with their text; a removed note between two words leaves one space, and
    none before punctuation. Non-canonical titles are removed, canonical
    (psalm) titles keep their words. Line and paragraph markers become
    spaces; every other tag is dropped and its words kept. Two word elements
    (`<w>`, `<transChange>`) with nothing between them are two words, except
    for an enclitic pronoun after a verb. Anything after the end-of-book
    marker is cut. Whitespace is collapsed.

    Args:
        markup: str, the raw OSIS text of one verse.
        enclitics: collection of lowercase pronouns that attach to a
            preceding verb when their elements touch (`SPANISH_ENCLITICS`
            for the RV1909); empty for English.

    Returns:
        The plain text, stripped; `""` for a verse with no words.

    Example:

    >>> clean_osis('<w>God</w><note placement="foot">Elohim</note><w>made</w>')
    'God made'
    """
    for pattern in (_BOOK_END, _BOOK_END_ALT):
        end = pattern.search(markup)
        if end:
            markup = markup[: end.start()]
    text = _WORD_JOINT.sub(lambda m: m.group(0) + _JOINT_MARK, markup)
    text = _DROPPED_ELEMENT.sub(_NOTE_MARK, text)
    text = _TITLE_ELEMENT.sub(_replace_title, text)
    text = _BLOCK_TAG.sub(" ", text)
    text = _ANY_TAG.sub("", text)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    # A note between two words stood for a space; elsewhere it stood for
    # nothing ("Christ,<note/> the", "word<note/>.").
    text = re.sub(r"(?<=[^\s\x00])\x00+(?=[\w“‘\"'(\[¿¡])", " ", text)
    text = text.replace(_NOTE_MARK, "")
    text = _join_words(text, enclitics)
    return " ".join(text.split())


_CAPS_WORD = re.compile(r"^([^\w]*)(\w+)(.*)$", re.DOTALL)


def fix_drop_cap(text, word_counts):
    """Restore the casing of a chapter's first word printed in capitals.

    The RV1909 starts each chapter with a word in capitals ("EN el
    principio", "Y FUERON acabados", "¡OH Jehová"). If the first or second
    word is in capitals (two letters or more), the first word becomes
    capitalized ("En") and a second word takes the casing it has most often
    elsewhere in `word_counts` ("fueron", but "Jehová").

    Args:
        text: str, the text of a verse that starts a chapter.
        word_counts: mapping from a word (as written) to its frequency in
            the rest of the text.

    Returns:
        The text with the drop-cap word recased.

    Example:

    >>> fix_drop_cap("Y FUERON acabados", {"fueron": 9, "Fueron": 1})
    'Y fueron acabados'
    """
    words = text.split(" ")
    for position in (0, 1):
        if position >= len(words):
            break
        match = _CAPS_WORD.match(words[position])
        if not match:
            continue
        prefix, word, suffix = match.groups()
        if len(word) < 2 or not word.isupper() or word.isdigit():
            continue
        lower, title = word.lower(), word.capitalize()
        if position == 0 and prefix in ("", "¡", "¿", "“", '"', "("):
            recased = title
        else:
            is_name = word_counts.get(title, 0) > word_counts.get(lower, 0)
            recased = title if is_name else lower
        words[position] = prefix + recased + suffix
        break
    return " ".join(words)


def split_for_key(key, valid_percent=5, test_percent=5):
    """Assign a verse key to a split by a stable hash.

    Args:
        key: str, a verse key such as `"Gen.1.1"`.
        valid_percent: int, percentage of keys in `"valid"`.
        test_percent: int, percentage of keys in `"test"`.

    Returns:
        `"train"`, `"valid"` or `"test"`; the same key always gets the same
        split, on every machine and Python version.

    Example:

    >>> split_for_key("Gen.1.1") in ("train", "valid", "test")
    True
    """
    if not 0 <= valid_percent + test_percent <= 100:
        raise ValueError(
            "`valid_percent + test_percent` must be in [0, 100]. "
            f"Received: valid_percent={valid_percent}, "
            f"test_percent={test_percent}"
        )
    digest = hashlib.md5(key.encode("utf-8")).hexdigest()
    bucket = int(digest[:8], 16) % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + valid_percent:
        return "valid"
    return "train"


def lm_split_for_book(book):
    """Return the language-model split of a book (whole-book split).

    Args:
        book: str, an OSIS book name such as `"Ruth"`.

    Returns:
        `"valid"` for `LM_VALID_BOOKS`, `"test"` for `LM_TEST_BOOKS`, else
        `"train"`.

    Example:

    >>> lm_split_for_book("Ruth")
    'valid'
    """
    if book in LM_VALID_BOOKS:
        return "valid"
    if book in LM_TEST_BOOKS:
        return "test"
    return "train"


# --- Reading the modules ----------------------------------------------------


def extract_deb(deb_path, destination):
    """Unpack the data archive of a Debian package, in pure Python.

    Args:
        deb_path: path of a `.deb` file (an `ar` archive holding
            `data.tar.{xz,gz,bz2}`).
        destination: directory to unpack into.

    Returns:
        `destination`.

    Example:

    >>> extract_deb(
    ...     "sword-text-web_426.0-1_all.deb", "/tmp/web")  # doctest: +SKIP
    '/tmp/web'
    """
    with open(deb_path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError(
                f"Not a Debian package (no ar header). Received: "
                f"deb_path={deb_path}"
            )
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name = header[:16].decode("ascii").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            payload = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    raise ValueError(
                        "zstd-compressed .deb files are not supported; "
                        "extract with `dpkg-deb -x` and use --web-dir/"
                        f"--sparv-dir. Received: deb_path={deb_path}"
                    )
                with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
                    tar.extractall(destination, filter="data")
                return destination
    raise ValueError(
        f"No data.tar member in the package. Received: deb_path={deb_path}"
    )


def find_sword_root(directory, module):
    """Find the SWORD data path (the folder holding `mods.d/`) of a module.

    Args:
        directory: an extracted package root or a SWORD data path.
        module: str, the module name, e.g. `"engWEB2015eb"`.

    Returns:
        The folder containing `mods.d/<module>.conf`.

    Example:

    >>> find_sword_root("/tmp/web", "engWEB2015eb")  # doctest: +SKIP
    '/tmp/web/usr/share/sword'
    """
    conf_name = module.lower() + ".conf"
    for root, _, files in sorted(os.walk(directory)):
        if os.path.basename(root) == "mods.d":
            if conf_name in [name.lower() for name in files]:
                return os.path.dirname(root)
    raise FileNotFoundError(
        f"SWORD module {module} not found: no mods.d/{conf_name} under "
        f"{os.fspath(directory)!r}."
    )


def read_module_verses(directory, module, books=CANON_BOOKS):
    """Read the raw OSIS markup of every verse of a SWORD module.

    pysword decompresses the whole book block again for every verse; the
    block is cached here (one book at a time), which makes reading a Bible
    take seconds instead of minutes.

    Args:
        directory: an extracted package root or a SWORD data path.
        module: str, the module name.
        books: the OSIS names of the books to read, in order.

    Returns:
        A list of `(book, chapter, verse, markup)` tuples in canonical order.

    Example:

    >>> verses = read_module_verses(
    ...     "/usr/share/sword", "engWEB2015eb")  # doctest: +SKIP
    """
    from pysword.modules import SwordModules

    sword_root = find_sword_root(directory, module)
    modules = SwordModules(sword_root)
    found = modules.parse_modules()
    if module not in found:
        raise ValueError(
            f"Module not found in {sword_root}. Received: module={module}"
        )
    bible = modules.get_bible_from_module(module)
    if hasattr(bible, "_decompressed_text"):
        bible._decompressed_text = functools.lru_cache(maxsize=2)(
            bible._decompressed_text
        )
    structure = bible.get_structure()
    by_name = {}
    for testament_books in structure.get_books().values():
        for book in testament_books:
            by_name[book.osis_name] = book
    verses = []
    for osis_name in books:
        if osis_name not in by_name:
            raise ValueError(
                f"Book missing from module {module}. Received: book={osis_name}"
            )
        book = by_name[osis_name]
        keys = [
            (chapter, verse)
            for chapter in range(1, book.num_chapters + 1)
            for verse in range(1, book.chapter_lengths[chapter - 1] + 1)
        ]
        texts = list(bible.get_iter(books=book.osis_name, clean=False))
        if len(texts) != len(keys):
            raise ValueError(
                f"{module} {osis_name}: {len(texts)} texts for "
                f"{len(keys)} verses. Received: book={osis_name}"
            )
        for (chapter, verse), markup in zip(keys, texts):
            verses.append((osis_name, chapter, verse, markup or ""))
    return verses


def clean_verses(raw_verses, spanish=False):
    """Clean raw verses into an ordered `{key: text}` dict.

    Args:
        raw_verses: list of `(book, chapter, verse, markup)`.
        spanish: bool, clean as the RV1909: attach enclitic pronouns and
            apply `fix_drop_cap` to the first verse of each chapter.

    Returns:
        A dict from `"Book.chapter.verse"` to the plain text, without the
        verses that are empty after cleaning.

    Example:

    >>> clean_verses([("Gen", 1, 1, "<w>In</w> the beginning")])
    {'Gen.1.1': 'In the beginning'}
    """
    texts = {}
    for book, chapter, verse, markup in raw_verses:
        text = clean_osis(markup, SPANISH_ENCLITICS if spanish else ())
        if text:
            texts[f"{book}.{chapter}.{verse}"] = text
    if spanish:
        counts = collections.Counter()
        for key, text in texts.items():
            if not key.endswith(".1"):
                counts.update(re.findall(r"\w+", text))
        for key, text in texts.items():
            if key.endswith(".1"):
                texts[key] = fix_drop_cap(text, counts)
    return texts


def keep_translation_pair(key):
    """Whether a verse key is usable as an English-Spanish pair.

    Args:
        key: str, `"Book.chapter.verse"`.

    Returns:
        False for chapters the RV1909 numbers differently and for the first
        verse of each psalm (where the RV1909 folds in the title).

    Example:

    >>> keep_translation_pair("Ps.23.1"), keep_translation_pair("Ps.23.2")
    (False, True)
    """
    book, chapter, verse = key.split(".")
    if (book, int(chapter)) in RV1909_MISNUMBERED_CHAPTERS:
        return False
    return not (book == "Ps" and verse == "1")


def chapters_missing_verses(english, spanish):
    """Find chapters where the Spanish lacks a verse the English has.

    Such a verse was merged into its neighbour ("Acts.19.40" in the RV1909
    holds the WEB's 19:40 and 19:41) or moved to the next chapter, so the
    pairs near it may be misaligned; the whole chapter is left out.

    Args:
        english: dict from verse key to English text.
        spanish: dict from verse key to Spanish text.

    Returns:
        A sorted list of `(book, chapter)` tuples.

    Example:

    >>> chapters_missing_verses({"Acts.19.41": "x"}, {})
    [('Acts', 19)]
    """
    chapters = set()
    for key in english:
        if key not in spanish:
            book, chapter, _ = key.split(".")
            chapters.add((book, int(chapter)))
    return sorted(chapters)


# --- Baseline ---------------------------------------------------------------


def _words(text):
    return re.findall(r"\w+", text.lower())


def naive_bayes_accuracy(train_texts, train_labels, test_texts, test_labels):
    """Accuracy of a multinomial naive-Bayes word classifier.

    Lowercased `\\w+` words, add-one smoothing, class priors from the
    training labels.

    Args:
        train_texts: list of str.
        train_labels: list of labels.
        test_texts: list of str.
        test_labels: list of labels.

    Returns:
        The accuracy on the test examples, a float in [0, 1].

    Example:

    >>> naive_bayes_accuracy(["a a", "b b"], [0, 1], ["a", "b"], [0, 1])
    1.0
    """
    classes = sorted(set(train_labels))
    word_counts = {label: collections.Counter() for label in classes}
    doc_counts = collections.Counter(train_labels)
    for text, label in zip(train_texts, train_labels):
        word_counts[label].update(_words(text))
    vocabulary = set()
    for counts in word_counts.values():
        vocabulary.update(counts)
    log_prior = {
        label: math.log(doc_counts[label] / len(train_labels))
        for label in classes
    }
    denominators = {
        label: sum(word_counts[label].values()) + len(vocabulary)
        for label in classes
    }
    correct = 0
    for text, label in zip(test_texts, test_labels):
        words = [word for word in _words(text) if word in vocabulary]
        best = max(
            classes,
            key=lambda c: (
                log_prior[c]
                + sum(
                    math.log((word_counts[c][word] + 1) / denominators[c])
                    for word in words
                )
            ),
        )
        correct += best == label
    return correct / max(len(test_labels), 1)


# --- Writing ----------------------------------------------------------------


def write_gzip_lines(path, lines):
    """Write lines as deterministic gzip (no name, `mtime=0`), atomically.

    Args:
        path: destination file path.
        lines: iterable of str without newlines.

    Returns:
        The number of bytes written.

    Example:

    >>> write_gzip_lines("/tmp/x.txt.gz", ["a", "b"])  # doctest: +SKIP
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
            ) as f:
                for line in lines:
                    f.write(line.encode("utf-8") + b"\n")
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise
    return os.path.getsize(path)


def _package_version(deb_path, fallback):
    if not deb_path:
        return fallback
    match = re.search(r"_([^_]+)_[^_]+\.deb$", os.path.basename(deb_path))
    return match.group(1) if match else fallback


def build_corpora(web_dir, sparv_dir, output_dir, max_words=30):
    """Build every bundled corpus file from the two extracted modules.

    Args:
        web_dir: extracted `sword-text-web` package or SWORD data path.
        sparv_dir: extracted `sword-text-sparv` package or SWORD data path.
        output_dir: directory to write the files into.
        max_words: int, longest verse (whitespace words, either side) kept
            in the translation pairs.

    Returns:
        A dict of statistics: counts per file and split, file sizes and the
        naive-Bayes genre accuracy.

    Example:

    >>> stats = build_corpora(
    ...     "/tmp/web", "/tmp/sparv", "/tmp/out")  # doctest: +SKIP
    """
    if max_words < 1:
        raise ValueError(
            f"`max_words` must be at least 1. Received: max_words={max_words}"
        )
    os.makedirs(output_dir, exist_ok=True)
    english = clean_verses(read_module_verses(web_dir, WEB_MODULE))
    spanish = clean_verses(
        read_module_verses(sparv_dir, SPARV_MODULE), spanish=True
    )
    logger.info(
        "Read %d English, %d Spanish verses", len(english), len(spanish)
    )
    stats = {
        "english_verses": len(english),
        "spanish_verses": len(spanish),
        "max_words": max_words,
    }
    sizes = {}

    # Translation pairs.
    pair_counts = collections.Counter()
    pair_lines = []
    unequal_chapters = set(chapters_missing_verses(english, spanish))
    stats["unequal_chapters"] = sorted(unequal_chapters)
    for key, source in english.items():
        target = spanish.get(key)
        if target is None or not keep_translation_pair(key):
            continue
        book, chapter, _ = key.split(".")
        if (book, int(chapter)) in unequal_chapters:
            continue
        pair_counts["aligned"] += 1
        if len(source.split()) > max_words or len(target.split()) > max_words:
            continue
        split = split_for_key(key)
        pair_counts[split] += 1
        pair_lines.append(f"{split}\t{key}\t{source}\t{target}")
    name = "translation_en_es.tsv.gz"
    sizes[name] = write_gzip_lines(os.path.join(output_dir, name), pair_lines)
    stats["translation"] = dict(pair_counts)

    # Genre classification.
    genre_lines = []
    genre_data = {split: ([], []) for split in SPLITS}
    for key, text in english.items():
        label = BOOK_GENRES[key.split(".")[0]]
        split = split_for_key(key)
        genre_data[split][0].append(text)
        genre_data[split][1].append(label)
        genre_lines.append(f"{split}\t{key}\t{label}\t{text}")
    name = "genre_verses.tsv.gz"
    sizes[name] = write_gzip_lines(os.path.join(output_dir, name), genre_lines)
    stats["genre"] = {
        split: dict(collections.Counter(genre_data[split][1]))
        for split in SPLITS
    }
    train_texts, train_labels = genre_data["train"]
    stats["naive_bayes"] = {
        split: naive_bayes_accuracy(
            train_texts, train_labels, *genre_data[split]
        )
        for split in ("valid", "test")
    }

    # Language-model text, split by whole books.
    lm_lines = {split: [] for split in SPLITS}
    for key, text in english.items():
        lm_lines[lm_split_for_book(key.split(".")[0])].append(text)
    stats["lm"] = {}
    for split in SPLITS:
        name = f"english_lm_{split}.txt.gz"
        path = os.path.join(output_dir, name)
        sizes[name] = write_gzip_lines(path, lm_lines[split])
        stats["lm"][split] = {
            "lines": len(lm_lines[split]),
            "words": sum(len(line.split()) for line in lm_lines[split]),
            "characters": sum(len(line) for line in lm_lines[split]),
        }
    stats["sizes"] = sizes
    return stats


def _chapter_list(chapters):
    return ", ".join(f"{book} {chapter}" for book, chapter in sorted(chapters))


def provenance_markdown(stats, command, versions, seconds):
    """Render the `PROVENANCE.md` text for a build.

    Args:
        stats: the dict returned by `build_corpora`.
        command: str, the command line that built the files.
        versions: dict from Debian package name to version.
        seconds: float, how long the build took.

    Returns:
        The Markdown text.

    Example:

    >>> text = provenance_markdown(
    ...     stats, "python -m ...", {}, 5.0)  # doctest: +SKIP
    """
    pairs = stats["translation"]
    extra_chapters = sorted(
        set(stats["unequal_chapters"]) - RV1909_MISNUMBERED_CHAPTERS
    )
    lines = [
        "# Bundled corpora: provenance",
        "",
        "Small extracts for demos and tests, built by",
        "`tools/build_corpora.py` (read its docstring for the",
        "cleaning rules). Public domain, like their sources.",
        "",
        "## Sources",
        "",
        f"- Debian package `{WEB_PACKAGE}` version "
        f"`{versions.get(WEB_PACKAGE, '?')}`, SWORD module `{WEB_MODULE}`: "
        "the World English Bible (public domain; https://eBible.org/web/).",
        f"- Debian package `{SPARV_PACKAGE}` version "
        f"`{versions.get(SPARV_PACKAGE, '?')}`, SWORD module "
        f"`{SPARV_MODULE}`: the Reina-Valera 1909 (public domain).",
        "",
        "The English text here is **derived from the WEB**: footnotes, "
        "headings and speaker labels were removed and verses were selected "
        "and split, so, "
        "as the WEB's publishers ask of altered text, it is not called the "
        '"World English Bible". The Spanish first word of each chapter was '
        "recased from capitals.",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
        f"Build time: {seconds:.1f} s (2-core machine). Output is "
        "deterministic: gzip with mtime 0, splits by the md5 of the verse key "
        "(`Gen.1.1`): bucket < 5 test, < 10 valid, else train.",
        "",
        "## Files and counts",
        "",
        "| file | train | valid | test | bytes |",
        "|---|---:|---:|---:|---:|",
        f"| translation_en_es.tsv.gz | {pairs.get('train', 0)} | "
        f"{pairs.get('valid', 0)} | {pairs.get('test', 0)} | "
        f"{stats['sizes']['translation_en_es.tsv.gz']} |",
    ]
    genre_totals = {
        split: sum(stats["genre"][split].values()) for split in SPLITS
    }
    lines.append(
        f"| genre_verses.tsv.gz | {genre_totals['train']} | "
        f"{genre_totals['valid']} | {genre_totals['test']} | "
        f"{stats['sizes']['genre_verses.tsv.gz']} |"
    )
    for split in SPLITS:
        name = f"english_lm_{split}.txt.gz"
        cells = ["", "", ""]
        cells[SPLITS.index(split)] = str(stats["lm"][split]["lines"])
        lines.append(
            f"| {name} | {' | '.join(cells)} | {stats['sizes'][name]} |"
        )
    lines += [
        "",
        f"- `translation_en_es.tsv.gz`: `split<TAB>key<TAB>english<TAB>"
        f"spanish`. {pairs.get('aligned', 0)} verses align after dropping "
        "the RV1909's differently numbered chapters "
        f"({_chapter_list(RV1909_MISNUMBERED_CHAPTERS)}), the chapters where "
        "the RV1909 lacks a verse the WEB has (merged or moved verses: "
        f"{_chapter_list(extra_chapters)}) and the first verse "
        "of every psalm; the file keeps the pairs with at most "
        f"{stats['max_words']} words on each side.",
        "- `genre_verses.tsv.gz`: `split<TAB>key<TAB>label<TAB>text`, every "
        "English verse of the 66-book Protestant canon (no deuterocanon). "
        "Labels: law (Gen-Deut), history (Josh-Esth), wisdom (Job-Song), "
        "prophets (Isa-Mal), gospels_acts (Matt-Acts), epistles_revelation "
        "(Rom-Rev).",
        "- `english_lm_*.txt.gz`: one English verse per line, split by whole "
        f"books. Valid: {', '.join(LM_VALID_BOOKS)}. Test: "
        f"{', '.join(LM_TEST_BOOKS)}. Train: the other books.",
        "",
        "Genre labels per split:",
        "",
        "| split | " + " | ".join(GENRE_CLASS_NAMES) + " |",
        "|---|" + "---:|" * len(GENRE_CLASS_NAMES),
    ]
    for split in SPLITS:
        counts = stats["genre"][split]
        lines.append(
            f"| {split} | "
            + " | ".join(str(counts.get(c, 0)) for c in GENRE_CLASS_NAMES)
            + " |"
        )
    lines += ["", "Language-model splits:", ""]
    lines += ["| split | lines | words | characters |", "|---|---:|---:|---:|"]
    for split in SPLITS:
        lm = stats["lm"][split]
        lines.append(
            f"| {split} | {lm['lines']} | {lm['words']} | {lm['characters']} |"
        )
    nb = stats["naive_bayes"]
    lines += [
        "",
        "## Baseline",
        "",
        "Genre task, multinomial naive Bayes on lowercased words (add-one "
        "smoothing), trained on the train split: "
        f"**{100 * nb['test']:.1f}%** test accuracy, "
        f"{100 * nb['valid']:.1f}% valid.",
        "",
    ]
    return "\n".join(lines)


def _unpack(deb_path, directory, temp_root, name):
    if directory:
        return directory
    if not deb_path:
        raise ValueError(
            f"Give --{name}-deb or --{name}-dir. Received: {name}_deb=None"
        )
    destination = os.path.join(temp_root, name)
    os.makedirs(destination)
    return extract_deb(deb_path, destination)


def main(argv=None):
    """Command-line entry point: build the bundled corpora.

    Args:
        argv: list of str arguments (defaults to `sys.argv[1:]`).

    Returns:
        The statistics dict of `build_corpora`.

    Example:

    >>> main(["--web-deb", "web.deb",
    ...       "--sparv-deb", "sparv.deb"])  # doctest: +SKIP
    """
    default_output = os.path.join(os.path.dirname(__file__), "bundled")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--web-deb", help="sword-text-web .deb file")
    parser.add_argument("--sparv-deb", help="sword-text-sparv .deb file")
    parser.add_argument("--web-dir", help="extracted sword-text-web")
    parser.add_argument("--sparv-dir", help="extracted sword-text-sparv")
    parser.add_argument("--output-dir", default=default_output)
    parser.add_argument("--max-words", type=int, default=30)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as temp_root:
        web_dir = _unpack(args.web_deb, args.web_dir, temp_root, "web")
        sparv_dir = _unpack(args.sparv_deb, args.sparv_dir, temp_root, "sparv")
        stats = build_corpora(
            web_dir, sparv_dir, args.output_dir, max_words=args.max_words
        )
    seconds = time.perf_counter() - start

    command = "python -m tools.build_corpora"
    for flag in ("web_deb", "sparv_deb", "web_dir", "sparv_dir"):
        value = getattr(args, flag)
        if value:
            command += f" --{flag.replace('_', '-')} {os.path.basename(value)}"
    if args.max_words != 30:
        command += f" --max-words {args.max_words}"
    versions = {
        WEB_PACKAGE: _package_version(args.web_deb, "?"),
        SPARV_PACKAGE: _package_version(args.sparv_deb, "?"),
    }
    text = provenance_markdown(stats, command, versions, seconds)
    with open(os.path.join(args.output_dir, "PROVENANCE.md"), "w") as f:
        f.write(text)
    logger.info("Built the corpora in %.1f s: %s", seconds, stats)
    return stats


if __name__ == "__main__":
    main()
