"""Transfer corpora: split rule, dedup, forbidden sources, provenance, parsers.

No test downloads anything: the parsers get small hand-written inputs and
the build steps get fake builder output in `tmp_path`.
"""

import doctest
import json
import struct

import pytest

from benchmarks import corpora
from benchmarks.corpora import __main__ as corpora_cli
from benchmarks.corpora import builders, parsers, sources, splits


@pytest.mark.parametrize(
    "module",
    [corpora, parsers, sources, splits, builders],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    for test in finder.find(module, module.__name__):
        runner.run(test)
    assert runner.failures == 0


# ---------------------------------------------------------------------------
# The split rule.


def test_split_rule_is_deterministic_and_disjoint():
    rows = [
        (f"key{i % 300}", (f"source {i}", f"target {i}")) for i in range(900)
    ]
    first = splits.assign("corpus", rows, lambda r: r[0], 0.1, 0.1)
    second = splits.assign(
        "corpus", list(reversed(rows)), lambda r: r[0], 0.1, 0.1
    )
    assert first == second  # input order does not matter
    keys = {split: {k for k, _ in first[split]} for split in splits.SPLITS}
    assert not keys["train"] & keys["valid"]
    assert not keys["train"] & keys["test"]
    assert not keys["valid"] & keys["test"]
    assert sum(len(v) for v in first.values()) == 900
    # Roughly the asked shares of keys; every key in the split its hash says.
    assert 10 < len(keys["test"]) < 60 and 10 < len(keys["valid"]) < 60
    for split, members in keys.items():
        assert all(
            splits.split_of("corpus", k, 0.1, 0.1) == split for k in members
        )


def test_split_depends_on_the_corpus_name():
    keys = [str(i) for i in range(200)]
    a = [splits.split_of("a", k, 0.2, 0.2) for k in keys]
    b = [splits.split_of("b", k, 0.2, 0.2) for k in keys]
    assert a != b


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="Received: valid_fraction=1.5"):
        splits.split_of("a", "k", 1.5, 0.1)


def test_duplicates_are_removed_across_and_within_splits():
    # The same source sentence under many keys lands in several splits.
    rows = [(f"k{i}", ("same source", f"target {i}")) for i in range(200)]
    rows += [(f"u{i}", (f"unique {i}", "t")) for i in range(200)]
    rows += [("u0", ("unique 0", "t"))]  # an exact repeat in one split
    result = splits.assign("dedup", rows, lambda r: r[0], 0.2, 0.2)
    seen = []
    for split in splits.SPLITS:
        seen.extend(row[0] for _, row in result[split])
    assert len(seen) == len(set(seen))
    assert seen.count("same source") == 1
    # The surviving copy is the training one (train is filled first).
    train_sources = {row[0] for _, row in result["train"]}
    assert "same source" in train_sources


def test_caps_take_rows_in_hash_order():
    rows = [(str(i), ("label", f"text {i}")) for i in range(500)]
    capped = splits.assign(
        "caps",
        rows,
        lambda r: r[1],
        0.2,
        0.2,
        caps={"train": 50, "valid": 5, "test": 5},
    )
    assert [len(capped[s]) for s in splits.SPLITS] == [50, 5, 5]
    full = splits.assign("caps", rows, lambda r: r[1], 0.2, 0.2)
    assert capped["train"] == full["train"][:50]
    # Byte caps for documents.
    docs = [(str(i), "word " * 50) for i in range(100)]
    by_bytes = splits.assign(
        "b",
        [(k, d + k) for k, d in docs],
        lambda r: r,
        0.0,
        0.0,
        by_bytes=True,
        caps={"train": 1000},
    )
    assert sum(splits.row_size(r) for _, r in by_bytes["train"]) <= 1000
    assert len(by_bytes["train"]) == 3


# ---------------------------------------------------------------------------
# Forbidden sources.


@pytest.mark.parametrize(
    "package",
    [
        "fortunes", "fortunes-de", "fortune-mod", "sword-text-web",
        "sword-text-sparv", "trans-de-en", "freedict-deu-eng",
        "dict-freedict-deu-eng", "libpython3.11-stdlib", "python3.11",
        "python3.11-minimal",
    ],
)  # fmt: skip
def test_forbidden_sources_are_refused(package):
    with pytest.raises(ValueError, match=f"Received: package={package}"):
        sources.check_allowed(package)


def test_forbidden_sources_are_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="reserved for independent checks"):
        sources.debian_package("fortunes-fr", str(tmp_path))
    with pytest.raises(ValueError, match="reserved"):
        sources.pypi_wheel("sword-text-web==1.0", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "package",
    [
        "wordnet-base",
        "manpages-de",
        "linux-doc-6.1",
        "Django",
        "python3-django",
    ],
)
def test_allowed_sources_pass(package):
    sources.check_allowed(package)


def test_no_corpus_uses_a_forbidden_source():
    for package in builders.GETTEXT_ES_PACKAGES:
        sources.check_allowed(package)
    for language in builders.MANPAGE_LANGUAGES:
        sources.check_allowed(f"manpages-{language}")


def test_licence_of_copyright(tmp_path):
    path = tmp_path / "copyright"
    path.write_text(
        "Format: "
        "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-3+\n\n"
        "Files: doc/*\nLicense: GFDL-1.3+\n text\n\n"
        "License: GPL-3+\n full text\n"
    )
    assert sources.licence_of_copyright(str(path)) == "GPL-3+, GFDL-1.3+"
    path.write_text(
        "This is distributed under the GNU General Public License.\n"
    )
    assert sources.licence_of_copyright(str(path)) == "GPL"
    assert sources.licence_of_copyright(str(tmp_path / "missing")) == "unknown"


# ---------------------------------------------------------------------------
# Parsers.

PO = r"""# Italian translation.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: views.py:10
msgid "Open"
msgstr "Apri"

#, fuzzy
msgid "Close"
msgstr "Chiudi forse"

msgctxt "month"
msgid "May"
msgstr "Maggio"

msgid ""
"A long "
"message\twith a tab"
msgstr ""
"Un messaggio "
"lungo"

msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d file"
msgstr[1] "%d file"

msgid "Untranslated"
msgstr ""

#~ msgid "Obsolete"
#~ msgstr "Obsoleto"
"""


def test_parse_po():
    assert parsers.parse_po(PO) == [
        (None, "Open", "Apri"),
        ("month", "May", "Maggio"),
        (None, "A long message\twith a tab", "Un messaggio lungo"),
        (None, "%d file", "%d file"),
    ]


def _mo_bytes(messages):
    """A little-endian .mo file of `{msgid: msgstr}`, as msgfmt lays it out."""
    ids = sorted(messages)
    id_blob, str_blob, id_table, str_table = b"", b"", [], []
    for msgid in ids:
        encoded = msgid.encode()
        id_table.append((len(encoded), len(id_blob)))
        id_blob += encoded + b"\0"
        encoded = messages[msgid].encode()
        str_table.append((len(encoded), len(str_blob)))
        str_blob += encoded + b"\0"
    count = len(ids)
    ids_at = 28
    strs_at = ids_at + 8 * count
    data_at = strs_at + 8 * count
    header = struct.pack("<7I", 0x950412DE, 0, count, ids_at, strs_at, 0, 0)
    id_part = b"".join(
        struct.pack("<2I", n, data_at + off) for n, off in id_table
    )
    strs_start = data_at + len(id_blob)
    str_part = b"".join(
        struct.pack("<2I", n, strs_start + off) for n, off in str_table
    )
    return header + id_part + str_part + id_blob + str_blob


def test_parse_mo():
    data = _mo_bytes({
        "": "Content-Type: text/plain\n",
        "Save": "Guardar",
        "menu\x04Quit": "Salir",
        "one\x00many": "uno\x00muchos",
        "Empty": "",
    })  # fmt: skip
    assert sorted(parsers.parse_mo(data), key=str) == sorted(
        [
            (None, "Save", "Guardar"),
            ("menu", "Quit", "Salir"),
            (None, "one", "uno"),
        ],
        key=str,
    )
    with pytest.raises(ValueError, match="Received: magic="):
        parsers.parse_mo(b"\0" * 40)


def test_catalogue_rows_filter_and_clean(tmp_path):
    path = tmp_path / "x.po"
    path.write_text(
        PO + 'msgid "Same"\nmsgstr "Same"\n\nmsgid "42"\nmsgstr "42 %"\n'
    )
    rows = builders._catalogue_rows([str(path)])
    assert [row for _, row in rows] == [
        ("Open", "Apri"),
        ("May", "Maggio"),
        ("A long message with a tab", "Un messaggio lungo"),
    ]
    assert parsers.clean_message("~Save ~All", accelerator="~") == "Save All"


TRANSLATION_EN = """Package: foo
Description-md5: 0123
Description-en: frobnicate files
 Foo frobnicates files quickly
 and safely.
 .
 It also
 .
 reads tape.

Package: bar
Description-md5: 4567
Description-en: a bar
 Bar is a bar.
"""
TRANSLATION_DE = """Package: foo
Description-md5: 0123
Description-de: Dateien frobnizieren
 Foo frobniziert Dateien schnell
 und sicher.
 .
 Es liest auch
 .
 Bänder.

Package: bar
Description-md5: 4567
Description-de: eine Bar
 Bar ist eine Bar.
 .
 Mit zwei Absätzen.
"""


def test_debian_translation_parser():
    english = parsers.translations_by_md5(TRANSLATION_EN, "en")
    german = parsers.translations_by_md5(TRANSLATION_DE, "de")
    assert sorted(english) == ["0123", "4567"]
    assert english["0123"][0] == "foo"
    assert parsers.description_paragraphs(english["0123"][1]) == [
        "frobnicate files",
        "Foo frobnicates files quickly and safely.",
        "It also",
        "reads tape.",
    ]
    assert parsers.description_paragraphs(german["4567"][1]) == [
        "eine Bar", "Bar ist eine Bar.", "Mit zwei Absätzen.",
    ]  # fmt: skip


def test_deb_desc_pairs_only_aligned_paragraphs(tmp_path, monkeypatch):
    files = {}
    for name, text in (
        ("Packages", "Package: foo\nSource: foo-src (1.0)\nSection: utils\n"
         "Description-md5: 0123\n\nPackage: bar\nSection: misc\n"
         "Description-md5: 4567\n"),
        ("Translation-en", TRANSLATION_EN),
        ("Translation-de", TRANSLATION_DE),
    ):  # fmt: skip
        (tmp_path / name).write_text(text)
        files[name] = str(tmp_path / name)
    monkeypatch.setattr(
        sources,
        "debian_indexes",
        lambda downloads, languages: (files, {"licence": "x"}),
    )
    rows = builders.deb_desc_en_de(str(tmp_path))["rows"]
    # bar's German has one paragraph more: it is left out.
    assert rows == [
        ("foo-src", ("frobnicate files", "Dateien frobnizieren")),
        (
            "foo-src",
            (
                "Foo frobnicates files quickly and safely.",
                "Foo frobniziert Dateien schnell und sicher.",
            ),
        ),
        ("foo-src", ("It also", "Es liest auch")),
        ("foo-src", ("reads tape.", "Bänder.")),
    ]
    documents = builders.deb_descriptions(str(tmp_path))["rows"]
    assert documents == [
        (
            "foo-src",
            "frobnicate files\nFoo frobnicates files quickly and safely.\nIt "
            "also\nreads tape.",
        ),
        ("bar", "a bar\nBar is a bar."),
    ]


MAN_PAGE = r""".\" Translated page
.TH LS 1 "2022" "coreutils" "Benutzerbefehle"
.SH BEZEICHNUNG
ls \- Verzeichnisinhalte auflisten
.SH BESCHREIBUNG
Listet Informationen über die \fIDATEI\fPen auf (standardmäßig das
aktuelle Verzeichnis).
.PP
Die Einträge werden alphabetisch sortiert, falls weder \fB\-cftuvSUX\fP
noch \fB\-\-sort\fP angegeben ist \(em so ist es.
.TP
\fB\-a\fR, \fB\-\-all\fR
Einträge, die mit einem Punkt beginnen, nicht ignorieren und immer anzeigen.
.SH BEISPIEL
.nf
ls \-la /usr/share/doc und noch viele weitere Wörter hier
.fi
.SS Hinweis
Das Programm
.B ls
ist Teil der GNU Werkzeuge und wird von vielen Menschen benutzt.
.SH "SIEHE AUCH"
.BR dir (1),
.BR vdir (1)
"""


def test_man_page_paragraphs():
    assert parsers.man_paragraphs(MAN_PAGE) == [
        "Listet Informationen über die DATEIen auf (standardmäßig das "
        "aktuelle Verzeichnis).",
        "Die Einträge werden alphabetisch sortiert, falls weder -cftuvSUX "
        "noch --sort angegeben ist \u2014 so ist es.",
        "Einträge, die mit einem Punkt beginnen, nicht ignorieren und immer "
        "anzeigen.",
        "Das Programm ls ist Teil der GNU Werkzeuge und wird von vielen "
        "Menschen benutzt.",
    ]


def test_english_leftovers_are_detected():
    assert builders.looks_english(
        "If the file does not exist, it is created with the mode given."
    )
    assert not builders.looks_english(
        "Si le fichier n'existe pas, il est créé avec le mode donné."
    )


def test_wordnet_line():
    line = (
        "02084071 05 n 02 dog 0 domestic_dog 0 001 @ 02083346 n 0000 "
        "| a member of the genus Canis"
    )
    assert parsers.parse_wordnet_data_line(line) == (
        "02084071",
        "n",
        "noun.animal",
        "a member of the genus Canis",
    )
    assert (
        parsers.parse_wordnet_data_line(
            "  1 This software and database is being provided"
        )
        is None
    )


# ---------------------------------------------------------------------------
# Writing a corpus and its provenance.


def _fake_spec(name, application, files=False):
    return corpora.CorpusSpec(
        name,
        application,
        builder=None,
        description="fake",
        valid_fraction=0.2,
        test_fraction=0.2,
        files=files,
    )


def _fake_build(kind):
    source = {
        "kind": kind,
        "package": "pkg",
        "version": "1.0-1",
        "licence": "MIT",
    }
    return {"sources": [source], "extraction": "hand-written rows"}


REQUIRED_FIELDS = {
    "name", "application", "sources", "extraction", "licence", "splits",
    "split_rule", "build_date", "git_commit",
}  # fmt: skip


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_TRANSFORMER_TRANSFER_CACHE", str(tmp_path))
    return tmp_path


def test_classifier_corpus_files_and_provenance(cache):
    spec = _fake_spec("fake-cls", "classifier")
    built = _fake_build("debian")
    built["rows"] = [
        (f"k{i}", ("ab"[i % 2], f"text number {i}")) for i in range(100)
    ]
    corpora.write_corpus(spec, built, str(cache / "fake-cls"))
    monkeypatch_specs = dict(corpora.CORPORA, **{"fake-cls": spec})
    corpora.CORPORA.update(monkeypatch_specs)
    try:
        provenance = corpora.load_provenance("fake-cls")
        files = corpora.corpus_files("fake-cls")
    finally:
        del corpora.CORPORA["fake-cls"]
    assert REQUIRED_FIELDS <= set(provenance)
    assert provenance["sources"][0]["version"] == "1.0-1"
    counts = provenance["splits"]
    assert sum(counts[s]["rows"] for s in splits.SPLITS) == 100
    assert sum(counts["train"]["classes"].values()) == counts["train"]["rows"]
    lines = open(files["train"], encoding="utf-8").read().splitlines()
    assert len(lines) == counts["train"]["rows"]
    assert all(line.split("\t")[0] in ("a", "b") for line in lines)
    # The suite runner finds it where it looks.
    from benchmarks import transfer

    found = transfer.find_corpora()
    assert found["fake-cls"]["application"] == "classifier"
    assert found["fake-cls"]["train"] == files["train"]


def test_rebuild_gives_identical_files(cache):
    spec = _fake_spec("fake-mt", "translation")
    built = _fake_build("pypi")
    built["rows"] = [
        (f"msg {i}", (f"msg {i}", f"messaggio {i}")) for i in range(50)
    ]
    texts = []
    for _ in range(2):
        corpora.write_corpus(spec, built, str(cache / "fake-mt"))
        texts.append(
            [
                (cache / "fake-mt" / f"{s}.tsv").read_bytes()
                for s in splits.SPLITS
            ]
        )
    assert texts[0] == texts[1]


def test_lm_corpus_of_files(cache):
    spec = _fake_spec("fake-lm", "gpt", files=True)
    built = _fake_build("pypi")
    built["rows"] = [
        (f"pkg/mod{i}.py", f"import os\n\n\ndef f{i}():\n    return {i}\n")
        for i in range(30)
    ]
    provenance = corpora.write_corpus(spec, built, str(cache / "fake-lm"))
    from benchmarks.transfer import split_documents

    documents = split_documents(str(cache / "fake-lm" / "train.txt"))
    assert len(documents) == provenance["splits"]["train"]["rows"]
    assert documents[0].startswith("import os\ndef f")
    files = sorted((cache / "fake-lm" / "train_files").rglob("*.py"))
    assert len(files) == len(documents)
    assert "\n\n\n" in files[0].read_text()  # the file keeps its blank lines


def test_file_keys_cannot_leave_the_folder(tmp_path):
    with pytest.raises(ValueError, match="Received: key=../x.py"):
        splits.write_split(
            str(tmp_path), "train", "gpt", [("../x.py", "text")], files=True
        )


def test_unknown_corpus_is_refused():
    with pytest.raises(ValueError, match="Received: name=nope"):
        corpora.corpus_files("nope")


def test_the_suite_has_the_three_applications():
    apps = [spec.application for spec in corpora.CORPORA.values()]
    assert apps.count("translation") == 4
    assert apps.count("classifier") == 3
    assert apps.count("gpt") == 3


def test_corpora_markdown_table():
    provenance = {
        "name": "x", "application": "classifier", "description": "d",
        "sources": [{"kind": "debian", "package": "p", "version": "1"}],
        "licence": "GPL-2+", "extraction": "e", "split_rule": "r",
        "splits": {
            s: {"rows": 10, "bytes": 100, "classes": {"a": 7, "b": 3}}
            for s in splits.SPLITS
        },
        "build_date": "2026-01-01", "git_commit": "abc",
    }  # fmt: skip
    text = corpora_cli.render_markdown([provenance])
    assert "| x | classifier | d | p 1 | GPL-2+ | 10 | 10 | 10 |" in text
    assert "smallest b 30.0%" in text
    json.dumps(provenance)


def test_roff_escapes():
    assert (
        parsers.roff_unescape(r"\fB\-\-help\fP shows \(lqhelp\(rq")
        == "--help shows \u201chelp\u201d"
    )
    assert (
        parsers.roff_unescape(
            r"a \en newline, \*(lqq\*(rq, \s-1small\s+1 \[em] x"
        )
        == "a \\n newline, \u201cq\u201d, small \u2014 x"
    )
    assert parsers.roff_unescape(r"text \" a comment") == "text "
