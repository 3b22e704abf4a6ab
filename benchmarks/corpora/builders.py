"""One builder per corpus: raw material in, `(key, row)` pairs out.

A builder takes the download folder and returns a dict with `rows` (the
`(key, row)` pairs before splitting), `sources` (provenance dicts of what it
read) and `extraction` (how, in words). `build()` in `__init__` does the
rest (split, dedup, caps, files, PROVENANCE.json).
"""

import collections
import glob
import logging
import os
import re

from benchmarks.corpora import parsers, sources

MAX_MESSAGE_CHARS = 400


def _translation_row(source, target, accelerator=None):
    source = parsers.clean_message(source, accelerator)
    target = parsers.clean_message(target, accelerator)
    if (
        not source
        or not target
        or source == target
        or len(source) > MAX_MESSAGE_CHARS
        or len(target) > MAX_MESSAGE_CHARS
        or not re.search(r"[^\W\d_]{2}", source)
    ):
        return None
    return source, target


def _catalogue_rows(paths, accelerator=None):
    rows = []
    for path in sorted(paths):
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".po"):
            entries = parsers.parse_po(data.decode("utf-8", errors="replace"))
        else:
            entries = parsers.parse_mo(data)
        for _, msgid, msgstr in entries:
            row = _translation_row(msgid, msgstr, accelerator)
            if row:
                rows.append((row[0], row))
    return rows


_ROW_FILTER = (
    f"messages kept when both sides are non-empty, differ, hold at most "
    f"{MAX_MESSAGE_CHARS} characters and the English one has a word; "
    "whitespace collapsed to one line; fuzzy and untranslated entries dropped; "
    "plural entries give their singular form"
)

# ---------------------------------------------------------------------------
# Translation.

GETTEXT_ES_PACKAGES = (
    "coreutils", "util-linux-locales", "tar", "grep", "sed", "findutils",
    "gnupg-l10n", "apt", "gettext", "wget", "diffutils", "gcc-12-locales",
    "libc-l10n", "cpio", "bison", "make", "e2fsprogs", "parted", "nano",
    "aptitude-common", "dpkg", "debconf-i18n", "gawk", "binutils-common",
    "sudo", "man-db", "texinfo", "m4", "kbd", "psmisc", "procps",
    "e2fsprogs-l10n", "libparted-i18n", "passwd", "mc-data",
)  # fmt: skip


def gettext_en_es(downloads):
    rows, used = [], []
    for package in GETTEXT_ES_PACKAGES:
        try:
            root, source = sources.debian_package(package, downloads)
        except (RuntimeError, FileNotFoundError) as error:
            logging.warning("gettext-en-es: %s skipped (%s)", package, error)
            continue
        paths = glob.glob(
            os.path.join(
                root, "usr", "share", "locale", "es", "LC_MESSAGES", "*.mo"
            )
        )
        if paths:
            source["files"] = sorted(os.path.relpath(p, root) for p in paths)
            used.append(source)
            rows.extend(_catalogue_rows(paths))
    return {
        "rows": rows,
        "sources": used,
        "extraction": "msgid/msgstr pairs of the Spanish gettext catalogues "
        "(usr/share/locale/es/LC_MESSAGES/*.mo) shipped in the listed Debian "
        f"packages; key: the English msgid; {_ROW_FILTER}.",
    }


def libreoffice_en_fr(downloads):
    root, source = sources.debian_package("libreoffice-l10n-fr", downloads)
    paths = glob.glob(
        os.path.join(
            root,
            "usr",
            "lib",
            "libreoffice",
            "program",
            "resource",
            "fr",
            "LC_MESSAGES",
            "*.mo",
        )
    )
    source["files"] = "usr/lib/libreoffice/program/resource/fr/LC_MESSAGES/*.mo"
    return {
        "rows": _catalogue_rows(paths, accelerator="~"),
        "sources": [source],
        "extraction": (
            "msgid/msgstr pairs of LibreOffice's French UI catalogues "
            "(program/resource/fr/LC_MESSAGES/*.mo), the '~' accelerator marks "
            f"removed; key: the English msgid; {_ROW_FILTER}."
        ),
    }


DJANGO = "Django==5.2.19"


def django_en_it(downloads):
    root, source = sources.pypi_wheel(DJANGO, downloads)
    paths = glob.glob(
        os.path.join(
            root, "django", "**", "locale", "it", "LC_MESSAGES", "*.po"
        ),
        recursive=True,
    )
    source["files"] = "django/**/locale/it/LC_MESSAGES/*.po"
    return {
        "rows": _catalogue_rows(paths),
        "sources": [source],
        "extraction": (
            "msgid/msgstr pairs of every Italian .po file in the Django "
            "wheel (core and contrib apps, django.po and djangojs.po); key: "
            "the "
            f"English msgid; {_ROW_FILTER}."
        ),
    }


def _source_packages(packages_text):
    """`{package: (source package, section, Description-md5, short)}`."""
    result = {}
    for paragraph in parsers.parse_deb822(packages_text):
        package = paragraph.get("Package")
        if not package or package in result:
            continue
        result[package] = (
            paragraph.get("Source", package).split(" ")[0],
            paragraph.get("Section", ""),
            paragraph.get("Description-md5", ""),
            paragraph.get("Description", ""),
        )
    return result


def _read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


MAX_PARAGRAPH_CHARS = 600


def deb_desc_en_de(downloads):
    files, source = sources.debian_indexes(downloads, ("en", "de"))
    packages = _source_packages(_read(files["Packages"]))
    english = parsers.translations_by_md5(_read(files["Translation-en"]), "en")
    german = parsers.translations_by_md5(_read(files["Translation-de"]), "de")
    rows = []
    for md5, (package, text_de) in sorted(german.items()):
        if md5 not in english:
            continue
        key = packages.get(package, (package,))[0]
        en = parsers.description_paragraphs(english[md5][1])
        de = parsers.description_paragraphs(text_de)
        if len(en) != len(de):
            continue
        for a, b in zip(en, de):
            if (
                a != b
                and len(a) <= MAX_PARAGRAPH_CHARS
                and len(b) <= MAX_PARAGRAPH_CHARS
            ):
                rows.append((key, (a, b)))
    return {
        "rows": rows,
        "sources": [source],
        "extraction": (
            "Debian's English (Translation-en) and German (Translation-de) "
            "package descriptions with the same Description-md5 (the German "
            "is a "
            "translation of that very English text); the short descriptions "
            "paired, "
            "and the long descriptions paragraph by paragraph where both have "
            "the "
            "same "
            f"number of paragraphs; pairs over {MAX_PARAGRAPH_CHARS} "
            "characters or "
            "with "
            "equal sides dropped; key: the source package (from Packages)."
        ),
    }


# ---------------------------------------------------------------------------
# Classifier.

MIN_CLASS_ROWS = 100


def _drop_small_classes(rows, minimum=MIN_CLASS_ROWS):
    counts = collections.Counter(row[0] for _, row in rows)
    return [(k, r) for k, r in rows if counts[r[0]] >= minimum]


def deb_sections(downloads):
    files, source = sources.debian_indexes(downloads, ("en", "de"))
    packages = _source_packages(_read(files["Packages"]))
    english = parsers.translations_by_md5(_read(files["Translation-en"]), "en")
    rows = []
    for src, section, md5, _ in (packages[p] for p in sorted(packages)):
        if not section or md5 not in english:
            continue
        text = " ".join(parsers.description_paragraphs(english[md5][1]))
        rows.append((src, (section.split("/")[-1], text)))
    return {
        "rows": _drop_small_classes(rows),
        "sources": [source],
        "extraction": (
            "for each binary package of Debian main (Packages), its English "
            "short and long description (Translation-en, by Description-md5) "
            "on "
            "one line "
            "-> its Section; sections with fewer than "
            f"{MIN_CLASS_ROWS} packages dropped; key: the source package."
        ),
    }


def wordnet_supersense(downloads):
    root, source = sources.debian_package("wordnet-base", downloads)
    rows = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(root, "usr", "share", "wordnet", f"data.{pos}")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parsed = parsers.parse_wordnet_data_line(line.rstrip("\n"))
                if parsed:
                    offset, ss_type, lexname, gloss = parsed
                    gloss = re.sub(r"\s+", " ", gloss).strip()
                    if gloss:
                        rows.append((f"{ss_type}{offset}", (lexname, gloss)))
    return {
        "rows": _drop_small_classes(rows),
        "sources": [source],
        "extraction": (
            "every synset of WordNet 3.0 (usr/share/wordnet/data.{noun,verb,"
            "adj,adv}): its gloss (definition and examples) -> its "
            "lexicographer "
            "file "
            "(supersense, e.g. noun.animal); files with fewer than "
            f"{MIN_CLASS_ROWS} "
            "synsets dropped; key: part of speech + synset offset."
        ),
    }


MANPAGE_LANGUAGES = ("de", "fr", "es", "pl", "it", "nl")
_ENGLISH_WORDS = frozenset(
    "the and of to is are with for this that be by or from an if not on it "
    "as".split()
)


def looks_english(paragraph, threshold=0.15):
    """Whether a paragraph reads as English (an untranslated leftover).

    Example:
    >>> looks_english("This is the list of the files that are read.")
    True
    >>> looks_english("Dies ist die Liste der gelesenen Dateien.")
    False
    """
    words = re.findall(r"[a-z]+", paragraph.lower())
    if not words:
        return False
    return sum(w in _ENGLISH_WORDS for w in words) / len(words) >= threshold


def langid_manpages(downloads):
    rows, used = [], []
    for language in MANPAGE_LANGUAGES:
        root, source = sources.debian_package(f"manpages-{language}", downloads)
        used.append(source)
        pattern = os.path.join(
            root, "usr", "share", "man", language, "man*", "*"
        )
        for path in sorted(glob.glob(pattern)):
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            page = os.path.relpath(
                path, os.path.join(root, "usr", "share", "man", language)
            )
            page = re.sub(r"\.gz$", "", page)
            for paragraph in parsers.man_paragraphs(sources.read_text(path)):
                if not looks_english(paragraph) and len(paragraph) <= 1000:
                    rows.append((page, (language, paragraph)))
    return {
        "rows": rows,
        "sources": used,
        "extraction": (
            "running-text paragraphs (parsers.man_paragraphs: no headings, "
            "examples, tables or item tags; at least 8 words, at most 1,000 "
            "characters) "
            "of the translated manual pages in usr/share/man/LANG/ -> LANG; "
            "paragraphs "
            "that read as English (untranslated leftovers, >= 15% English "
            "function "
            "words) dropped; the natural imbalance between languages kept; "
            "key: "
            "the "
            "page (man1/ls.1), so one page is in one split in every language."
        ),
    }


# ---------------------------------------------------------------------------
# Language models.


def django_source(downloads):
    root, source = sources.pypi_wheel(DJANGO, downloads)
    rows = []
    for path in sorted(
        glob.glob(os.path.join(root, "django", "**", "*.py"), recursive=True)
    ):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if text.strip():
            rows.append((os.path.relpath(path, root), text))
    source["files"] = "django/**/*.py"
    return {
        "rows": rows,
        "sources": [source],
        "extraction": (
            "every non-empty .py file of the Django wheel, one document per "
            "file (blank lines removed in SPLIT.txt, kept in SPLIT_files/); "
            "key: "
            "the "
            "file path."
        ),
    }


def linux_doc(downloads):
    package = "linux-doc-6.1"
    root, source = sources.debian_package(package, downloads)
    base = os.path.join(root, "usr", "share", "doc", package, "Documentation")
    rows = []
    for path in sorted(
        glob.glob(os.path.join(base, "**", "*.rst*"), recursive=True)
    ):
        relative = os.path.relpath(path, base)
        if relative.startswith("translations" + os.sep) or not re.search(
            r"\.rst(\.gz)?$", path
        ):
            continue
        text = sources.read_text(path)
        if text.strip():
            rows.append((re.sub(r"\.gz$", "", relative), text))
    return {
        "rows": rows,
        "sources": [source],
        "extraction": (
            f"every .rst file of the kernel's Documentation/ in {package} "
            "(usr/share/doc/.../Documentation, gunzipped) except "
            "translations/, "
            "one "
            "document per file (blank lines removed in SPLIT.txt, kept in "
            "SPLIT_files/); "
            "key: the path under Documentation/."
        ),
    }


def deb_descriptions(downloads):
    files, source = sources.debian_indexes(downloads, ("en", "de"))
    packages = _source_packages(_read(files["Packages"]))
    english = parsers.translations_by_md5(_read(files["Translation-en"]), "en")
    rows = []
    for _, (package, text) in sorted(english.items()):
        key = packages.get(package, (package,))[0]
        paragraphs = parsers.description_paragraphs(text)
        if len(paragraphs) > 1:
            rows.append((key, "\n".join(paragraphs)))
    return {
        "rows": rows,
        "sources": [source],
        "extraction": (
            "every English description of Debian main (Translation-en) with "
            "a long part: the short description, then one line per paragraph "
            "of "
            "the "
            "long one; one document each; key: the source package."
        ),
    }
