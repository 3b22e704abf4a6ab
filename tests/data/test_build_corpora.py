"""Tests for the corpus builder's cleaning, splitting and writing helpers."""

import collections
import gzip
import hashlib
import io
import os
import tarfile

import pytest

from keras_transformer.data.loaders import GENRE_CLASS_NAMES
from tools import build_corpora as bc


def _w(word):
    return f'<w lemma="strong:H0001">{word}</w>'


# --- clean_osis -------------------------------------------------------------


def test_footnote_between_words_leaves_one_space():
    markup = (
        f"{_w('In')} {_w('the')} {_w('beginning')}, {_w('God')}"
        '<note placement="foot"><reference type="annotateRef">1:1 </reference>'
        "The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note>"
        f"{_w('created')} {_w('the')} {_w('heavens')}. "
    )
    assert bc.clean_osis(markup) == "In the beginning, God created the heavens."


def test_footnote_before_punctuation_leaves_no_space():
    markup = (
        f"{_w('cornerstone')}<note>Literally, <rdg>head</rdg></note>. "
        f"{_w('Christ')},<note>Messiah</note>{_w('the')} {_w('son')}"
    )
    assert bc.clean_osis(markup) == "cornerstone. Christ, the son"


def test_note_with_spaces_around_and_cross_reference():
    markup = (
        f"{_w('coins')}</q> <note placement='foot'>An assarion</note> "
        '<q marker="">? Not one'
        '<note type="crossReference"><reference>Matt 10:29</reference></note>'
        " is forgotten.</q>"
    )
    assert bc.clean_osis(markup) == "coins ? Not one is forgotten."


def test_quote_after_note_gets_a_space():
    markup = f"{_w('said')}<note>x</note>“{_w('Go')}”"
    assert bc.clean_osis(markup) == "said “Go”"


def test_psalm_title_kept_headings_and_speakers_dropped():
    markup = (
        '<div type="x-milestone" subType="x-preverse" sID="pv1"/>'
        '<title canonical="true" type="psalm">A Psalm by David.</title> '
        '<lg sID="a"/> <l level="1" sID="b"/>Yahweh, help!<l eID="b"/>'
        '<l sID="c"/>Many rise.<l eID="c"/>'
    )
    assert bc.clean_osis(markup) == "A Psalm by David. Yahweh, help! Many rise."
    heading = '<title type="section">The Creation</title>In the beginning'
    assert bc.clean_osis(heading) == "In the beginning"
    song = "<speaker>Beloved</speaker> <l/>Let him kiss me<l/> <speaker>B"
    song += "</speaker>"
    assert bc.clean_osis(song) == "Let him kiss me"


def test_line_markers_separate_words():
    markup = '<l sID="1"/>strength,<l eID="1"/><l sID="2"/>excelling<lb/>power'
    assert bc.clean_osis(markup) == "strength, excelling power"


def test_material_after_end_of_book_is_cut():
    markup = (
        f"{_w('Amen')}.  <chapter eID='Rev.22'/>"
        '<div eID="gen1" type="x-p"/> '
        '<div canonical="true" eID="gen2" osisID="Rev" type="book"/> '
        '<div sID="g" type="glossary"/> <title type="main">Glossary</title> '
        "Abba is a Chaldee word for father."
    )
    assert bc.clean_osis(markup) == "Amen."


def test_entities_whitespace_and_empty_verses():
    assert bc.clean_osis("A &amp; B &lt;c&gt;\n\t d") == "A & B <c> d"
    assert bc.clean_osis('<note placement="foot">omitted</note>') == ""
    assert bc.clean_osis("") == ""


def test_adjacent_word_elements_are_separate_words():
    markup = (
        f'{_w("lo que")}<transChange type="added">quisieres que'
        f"</transChange>{_w('yo te dé')}. {_w('Rehum')}"
        f'<transChange type="added">y</transChange>{_w("Baana")}'
    )
    text = bc.clean_osis(markup, bc.SPANISH_ENCLITICS)
    assert text == "lo que quisieres que yo te dé. Rehum y Baana"


@pytest.mark.parametrize(
    "host, pronoun, expected",
    [
        ("y díjo", "le", "y díjole Dios"),  # Verb + enclitic: one word.
        ("Júrame", "lo", "Júramelo Dios"),  # Capitalized at sentence start.
        ("Y Josué", "los", "Y Josué los Dios"),  # A name inside a sentence.
        ("no", "lo", "no lo Dios"),  # A function word.
        ("gentes", "lo", "gentes lo Dios"),  # Ends in "s": not a verb host.
    ],
)
def test_enclitic_pronouns(host, pronoun, expected):
    markup = (
        f'{_w(host)}<transChange type="added">{pronoun}</transChange>'
        f"{_w('Dios')}"
    )
    assert bc.clean_osis(markup, bc.SPANISH_ENCLITICS) == expected
    # Without enclitics (English), the joint is always a space.
    assert bc.clean_osis(markup) == f"{host} {pronoun} Dios"


# --- fix_drop_cap, splits, pairs --------------------------------------------


def test_fix_drop_cap():
    counts = {"fueron": 9, "Fueron": 1, "Jehová": 50, "jehová": 0}
    assert bc.fix_drop_cap("EN el principio", counts) == "En el principio"
    assert bc.fix_drop_cap("Y FUERON acabados", counts) == "Y fueron acabados"
    assert bc.fix_drop_cap("Y JEHOVÁ dijo", counts) == "Y Jehová dijo"
    assert bc.fix_drop_cap("¡OH Jehová", counts) == "¡Oh Jehová"
    assert bc.fix_drop_cap("Y dijo YO SOY", counts) == "Y dijo YO SOY"
    assert bc.fix_drop_cap("A los", counts) == "A los"
    assert bc.fix_drop_cap("", counts) == ""


def test_split_for_key_is_stable_and_balanced():
    assert bc.split_for_key("Gen.1.1") == bc.split_for_key("Gen.1.1")
    # The split is a function of the md5 of the key, nothing else.
    bucket = int(hashlib.md5(b"John.3.16").hexdigest()[:8], 16) % 100
    expected = "test" if bucket < 5 else "valid" if bucket < 10 else "train"
    assert bc.split_for_key("John.3.16") == expected
    keys = [
        f"Book{b}.{c}.{v}"
        for b in range(20)
        for c in range(20)
        for v in range(25)
    ]
    counts = collections.Counter(bc.split_for_key(key) for key in keys)
    assert 0.88 < counts["train"] / len(keys) < 0.92
    assert 0.04 < counts["valid"] / len(keys) < 0.06
    assert 0.04 < counts["test"] / len(keys) < 0.06
    with pytest.raises(ValueError, match="Received: valid_percent=60"):
        bc.split_for_key("Gen.1.1", valid_percent=60, test_percent=50)


def test_canon_genres_and_lm_books():
    assert len(bc.CANON_BOOKS) == len(set(bc.CANON_BOOKS)) == 66
    sizes = collections.Counter(bc.BOOK_GENRES.values())
    assert [sizes[name] for name in GENRE_CLASS_NAMES] == [5, 12, 5, 17, 5, 22]
    assert bc.BOOK_GENRES["Deut"] == "law"
    assert bc.BOOK_GENRES["Esth"] == "history"
    assert bc.BOOK_GENRES["Song"] == "wisdom"
    assert bc.BOOK_GENRES["Mal"] == "prophets"
    assert bc.BOOK_GENRES["Acts"] == "gospels_acts"
    assert bc.BOOK_GENRES["Rom"] == "epistles_revelation"
    held_out = set(bc.LM_VALID_BOOKS) | set(bc.LM_TEST_BOOKS)
    assert not set(bc.LM_VALID_BOOKS) & set(bc.LM_TEST_BOOKS)
    assert held_out <= set(bc.CANON_BOOKS)
    assert bc.lm_split_for_book("Ruth") == "valid"
    assert bc.lm_split_for_book("John") == "test"
    assert bc.lm_split_for_book("Gen") == "train"


def test_translation_pair_filters():
    assert not bc.keep_translation_pair("Ps.23.1")
    assert bc.keep_translation_pair("Ps.23.2")
    assert not bc.keep_translation_pair("Jonah.2.3")
    assert not bc.keep_translation_pair("Num.13.1")
    assert bc.keep_translation_pair("Num.14.1")
    english = {"Acts.19.40": "a", "Acts.19.41": "b", "Gen.1.1": "c"}
    spanish = {"Acts.19.40": "a b", "Gen.1.1": "c", "Acts.8.37": "d"}
    assert bc.chapters_missing_verses(english, spanish) == [("Acts", 19)]


def test_clean_verses_restores_spanish_drop_caps():
    raw = [
        ("Gen", 1, 1, f"{_w('EN el principio')} {_w('crió')}"),
        ("Gen", 1, 2, "Y la tierra estaba"),
        ("Gen", 2, 1, "Y FUERON acabados"),
        ("Gen", 2, 2, "y fueron"),
        ("Gen", 2, 3, "<note>empty</note>"),
    ]
    texts = bc.clean_verses(raw, spanish=True)
    assert texts == {
        "Gen.1.1": "En el principio crió",
        "Gen.1.2": "Y la tierra estaba",
        "Gen.2.1": "Y fueron acabados",
        "Gen.2.2": "y fueron",
    }


def test_naive_bayes_accuracy():
    train = ["sheep goat altar", "altar offering goat", "jesus disciples"]
    labels = ["law", "law", "gospels_acts"]
    test = ["goat offering", "the disciples of jesus"]
    accuracy = bc.naive_bayes_accuracy(
        train, labels, test, ["law", "gospels_acts"]
    )
    assert accuracy == 1.0


# --- Writing and unpacking --------------------------------------------------


def test_write_gzip_lines_is_deterministic(tmp_path):
    first, second = tmp_path / "a.txt.gz", tmp_path / "b.txt.gz"
    bc.write_gzip_lines(first, ["héllo", "world"])
    bc.write_gzip_lines(second, ["héllo", "world"])
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00"  # mtime 0.
    assert gzip.decompress(data).decode("utf-8") == "héllo\nworld\n"
    assert sorted(os.listdir(tmp_path)) == ["a.txt.gz", "b.txt.gz"]


def _ar_member(name, payload):
    header = (
        f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n"
    ).encode("ascii")
    return header + payload + (b"\n" if len(payload) % 2 else b"")


def test_extract_deb_and_find_sword_root(tmp_path):
    conf = b"[engWEB2015eb]\nDataPath=./modules/texts/ztext/engWEB2015eb/\n"
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        info = tarfile.TarInfo("./usr/share/sword/mods.d/engweb2015eb.conf")
        info.size = len(conf)
        tar.addfile(info, io.BytesIO(conf))
    deb = tmp_path / "pkg.deb"
    deb.write_bytes(
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", b"x")
        + _ar_member("data.tar.xz", tar_bytes.getvalue())
    )
    out = tmp_path / "out"
    bc.extract_deb(deb, out)
    root = bc.find_sword_root(out, "engWEB2015eb")
    assert root == os.path.join(out, "usr", "share", "sword")
    with pytest.raises(FileNotFoundError, match="spaRV1909eb"):
        bc.find_sword_root(out, "spaRV1909eb")
    not_deb = tmp_path / "bad.deb"
    not_deb.write_bytes(b"hello")
    with pytest.raises(ValueError, match="Received: deb_path="):
        bc.extract_deb(not_deb, tmp_path / "bad")


_DEB_DIR = os.environ.get("KERAS_TRANSFORMER_SWORD_DEB_DIR", "")
_WEB_DEB = os.path.join(_DEB_DIR, "sword-text-web_426.0-1_all.deb")
_SPARV_DEB = os.path.join(_DEB_DIR, "sword-text-sparv_2.60-1_all.deb")


@pytest.mark.skipif(
    not (_DEB_DIR and os.path.exists(_WEB_DEB) and os.path.exists(_SPARV_DEB)),
    reason="set KERAS_TRANSFORMER_SWORD_DEB_DIR to the folder of the .debs",
)
def test_full_build_reproduces_bundled_files(tmp_path):
    bc.main(
        ["--web-deb", _WEB_DEB, "--sparv-deb", _SPARV_DEB]
        + ["--output-dir", str(tmp_path)]
    )
    bundled = os.path.join(os.path.dirname(bc.__file__), "bundled")
    for name in sorted(os.listdir(bundled)):
        if name.endswith(".gz"):
            built = (tmp_path / name).read_bytes()
            with open(os.path.join(bundled, name), "rb") as f:
                assert built == f.read(), name
