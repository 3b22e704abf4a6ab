"""Parsers for the raw formats: gettext catalogues, Debian indexes, man pages.

All of them are plain functions on text or bytes, so the tests feed them
small hand-written inputs.
"""

import ast
import re
import struct

# ---------------------------------------------------------------------------
# gettext catalogues.


def _po_string(text):
    """The value of one quoted po string literal (`"a\\nb"`)."""
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return text.strip('"')


def parse_po(text):
    """The translated messages of a `.po` file.

    Fuzzy entries, untranslated entries and the header are left out. For a
    plural entry the singular msgid and the first msgstr are kept.

    Args:
        text: the contents of a `.po` file.

    Returns:
        A list of `(msgctxt or None, msgid, msgstr)`.

    Example:
    >>> parse_po('msgid "Open"\\nmsgstr "Apri"\\n')
    [(None, 'Open', 'Apri')]
    """
    entries = []
    entry, field, fuzzy, pending_fuzzy = {}, None, False, False

    def flush():
        msgid = "".join(entry.get("msgid", []))
        msgstr = "".join(entry.get("msgstr", entry.get("msgstr[0]", [])))
        if msgid and msgstr and not fuzzy:
            context = entry.get("msgctxt")
            context = "".join(context) if context is not None else None
            entries.append((context, msgid, msgstr))

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#~"):
            continue  # obsolete entry
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                pending_fuzzy = True
            continue
        if not line:
            continue
        match = re.match(
            r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")$",
            line,
        )
        if match:
            keyword, value = match.groups()
            if keyword in ("msgctxt", "msgid"):
                if any(k.startswith("msgstr") for k in entry):
                    flush()
                    entry = {}
                if keyword == "msgctxt" or "msgctxt" not in entry:
                    fuzzy, pending_fuzzy = pending_fuzzy, False
            field = keyword
            entry[keyword] = [_po_string(value)]
        elif line.startswith('"') and field:
            entry[field].append(_po_string(line))
    flush()
    return entries


def parse_mo(data):
    """The translated messages of a compiled `.mo` file.

    Args:
        data: the bytes of a `.mo` file.

    Returns:
        A list of `(msgctxt or None, msgid, msgstr)` without the header; a
        plural entry gives its singular msgid and first msgstr.
    """
    if len(data) < 28:
        raise ValueError(
            f"Not a .mo file (too short). Received: size={len(data)}"
        )
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x950412DE:
        order = "<"
    elif magic == 0xDE120495:
        order = ">"
    else:
        raise ValueError(
            f"Not a .mo file (bad magic). Received: magic={magic:#x}"
        )
    _, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])
    entries = []
    for i in range(count):
        id_len, id_off = struct.unpack(
            order + "2I", data[ids_at + 8 * i : ids_at + 8 * i + 8]
        )
        str_len, str_off = struct.unpack(
            order + "2I", data[strs_at + 8 * i : strs_at + 8 * i + 8]
        )
        msgid = data[id_off : id_off + id_len].decode("utf-8", errors="replace")
        msgstr = data[str_off : str_off + str_len].decode(
            "utf-8", errors="replace"
        )
        if not msgid:
            continue  # the header
        context = None
        if "\x04" in msgid:
            context, msgid = msgid.split("\x04", 1)
        msgid = msgid.split("\x00")[0]
        msgstr = msgstr.split("\x00")[0]
        if msgstr:
            entries.append((context, msgid, msgstr))
    return entries


def clean_message(text, accelerator=None):
    """One line of a UI message: accelerator marks dropped, spaces collapsed.

    Args:
        text: a msgid or msgstr.
        accelerator: the accelerator mark to drop before a letter ("~" in
            LibreOffice, "&" or "_" elsewhere), or None.

    Returns:
        The message on one line.

    Example:
    >>> clean_message("~Open\\tfile\\n", accelerator="~")
    'Open file'
    """
    if accelerator:
        text = re.sub(re.escape(accelerator) + r"(?=\w)", "", text)
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------
# Debian indexes (deb822: Packages, Translation-LANG).


def parse_deb822(text):
    """The paragraphs of a Debian control-style file.

    Args:
        text: a `Packages` or `Translation-LANG` file.

    Returns:
        A list of dicts `{field: value}`; a multi-line value keeps its
        continuation lines (with their leading space) after a newline.

    Example:
    >>> parse_deb822("Package: a\\nDescription-en: short\\n long\\n")
    [{'Package': 'a', 'Description-en': 'short\\n long'}]
    """
    paragraphs, current, field = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, field = {}, None
        elif line[0] in " \t" and field:
            current[field] += "\n" + line
        elif ":" in line:
            field, _, value = line.partition(":")
            current[field] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def description_paragraphs(value):
    """A package description as `[short, paragraph, ...]`, each on one line.

    Args:
        value: a `Description` field value: the short description on the
            first line, then the long one, paragraphs separated by " ."
            lines.

    Returns:
        The short description then the long description's paragraphs,
        whitespace collapsed.

    Example:
    >>> description_paragraphs("a tool\\n It does x.\\n .\\n And y.")
    ['a tool', 'It does x.', 'And y.']
    """
    lines = value.split("\n")
    paragraphs, current = [lines[0].strip()], []
    for line in lines[1:]:
        if line.strip() == ".":
            if current:
                paragraphs.append(" ".join(current))
            current = []
        else:
            current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return [re.sub(r"\s+", " ", p).strip() for p in paragraphs if p.strip()]


def translations_by_md5(text, language):
    """`{Description-md5: (package, description)}` of a `Translation-LANG` file.

    Args:
        text: the file's contents.
        language: its language code ("en", "de", ...).

    Returns:
        The descriptions keyed by the md5 of the English original.
    """
    field = f"Description-{language}"
    result = {}
    for paragraph in parse_deb822(text):
        if field in paragraph and "Description-md5" in paragraph:
            result.setdefault(
                paragraph["Description-md5"],
                (paragraph.get("Package", ""), paragraph[field]),
            )
    return result


# ---------------------------------------------------------------------------
# Man pages (roff source).

_NAMED_CHARACTERS = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "aq": "'", "dq": '"',
    "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019",
    "Fo": "\u00ab", "Fc": "\u00bb", "fo": "\u2039", "fc": "\u203a",
    "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae", "tm": "\u2122",
    "mu": "\u00d7", "di": "\u00f7", ">=": "\u2265", "<=": "\u2264",
    "!=": "\u2260", "+-": "\u00b1", "->": "\u2192", "<-": "\u2190",
    "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "ba": "|", "at": "@",
    "sh": "#", "Do": "$", "ct": "\u00a2", "de": "\u00b0", "ss": "\u00df",
}  # fmt: skip

# Requests after which a new paragraph starts.
_BREAKS = {
    "PP", "P", "LP", "TP", "IP", "HP", "SH", "SS", "TH", "RS", "RE", "sp",
    "TQ", "PD", "in", "ti", "bp", "ne", "UR", "UE", "MT", "ME", "SY", "YS",
}  # fmt: skip
# Blocks whose lines are not running prose (examples, tables, macros).
_SKIP_BLOCKS = {
    "nf": "fi",
    "EX": "EE",
    "TS": "TE",
    "de": "..",
    "ig": "..",
    "EQ": "EN",
}
_FONT_MACROS = {"B", "I", "SM", "SB"}
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}


def roff_unescape(text):
    """Text of one roff line: font changes dropped, escapes replaced.

    Example:
    >>> roff_unescape(r"\\fBls\\fR \\- list \\(em files")
    'ls - list \u2014 files'
    """
    text = text.replace("\\\\", "\0").replace(
        "\\e", "\0"
    )  # a literal backslash
    text = re.sub(r'\\".*$', "", text)  # comment
    text = re.sub(r"\\f(\(..|\[[^\]]*\]|.)", "", text)
    text = re.sub(r"\\s[+-]?(\d|\(\d\d|\[\d+\])", "", text)
    text = re.sub(
        r"\\\((..)|\\\[([^\]]*)\]",
        lambda m: _NAMED_CHARACTERS.get(m.group(1) or m.group(2), ""),
        text,
    )
    text = re.sub(
        r"\\\*(\(..|\[[^\]]*\]|.)",
        lambda m: _NAMED_CHARACTERS.get(m.group(1).strip("([]"), ""),
        text,
    )
    text = re.sub(r"\\[nk](\(..|\[[^\]]*\]|.)", "", text)
    text = re.sub(r"\\[hvwoNlLxXbDZ]'[^']*'", "", text)
    text = text.replace("\\-", "-").replace("\\ ", " ")
    text = text.replace("\\~", " ").replace("\\0", " ")
    text = re.sub(r"\\[&|^c%:/,!)]", "", text)
    text = re.sub(r"\\(.)", r"\1", text)
    return text.replace("\0", "\\")


def _macro_arguments(rest):
    """The arguments of a macro line, quotes respected."""
    return [
        a[1:-1] if a.startswith('"') else a
        for a in re.findall(r'"[^"]*"|\S+', rest)
    ]


def man_paragraphs(source, min_words=8):
    """The running-text paragraphs of a man page written in roff.

    Headings, examples (`.nf`/`.fi`, `.EX`/`.EE`), tables and the tag lines
    of `.TP` items are left out; font macros keep their words.

    Args:
        source: the roff text of a man page.
        min_words: shorter paragraphs are dropped.

    Returns:
        A list of paragraphs, each on one line.

    Example:
    >>> page = (".TH LS 1\\n.SH NAME\\nls \\\\- list\\n.PP\\n"
    ...         "The \\\\fBls\\\\fR command lists\\nthe files of a folder.\\n")
    >>> man_paragraphs(page, min_words=4)
    ['The ls command lists the files of a folder.']
    """
    paragraphs, current = [], []
    skip_until, skip_next_lines = None, 0

    def flush():
        if current:
            text = re.sub(r"\s+", " ", " ".join(current)).strip()
            if len(text.split()) >= min_words:
                paragraphs.append(text)
            current.clear()

    for line in source.splitlines():
        if skip_until is not None:
            if line.strip().startswith("." + skip_until) or (
                skip_until == ".." and line.strip() == ".."
            ):
                skip_until = None
            continue
        if line.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        if line.startswith((".", "'")):
            match = re.match(r"^[.'][ \t]*(\S+)[ \t]*(.*)$", line)
            if not match:
                flush()
                continue
            request, rest = match.groups()
            if request in _SKIP_BLOCKS:
                flush()
                skip_until = _SKIP_BLOCKS[request]
                continue
            if request in ("SH", "SS"):
                flush()
                if not rest.strip():
                    skip_next_lines = 1  # the heading is on the next line
                continue
            if request in ("TP", "TQ"):
                flush()
                skip_next_lines = 1  # the item's tag
                continue
            if request in _BREAKS or request == "br":
                flush()
                continue
            if request in _FONT_MACROS or request in _ALTERNATING:
                words = _macro_arguments(rest)
                joined = ("" if request in _ALTERNATING else " ").join(words)
                if skip_next_lines:
                    skip_next_lines -= 1
                    continue
                current.append(roff_unescape(joined))
                continue
            continue  # any other request carries no prose
        if skip_next_lines:
            skip_next_lines -= 1
            continue
        if not line.strip():
            flush()
            continue
        current.append(roff_unescape(line))
    flush()
    return paragraphs


# ---------------------------------------------------------------------------
# WordNet.

LEXICOGRAPHER_FILES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal",
    "noun.artifact", "noun.attribute", "noun.body", "noun.cognition",
    "noun.communication", "noun.event", "noun.feeling", "noun.food",
    "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)  # fmt: skip


def parse_wordnet_data_line(line):
    """`(offset, pos, lexicographer file, gloss)` of one `data.POS` line.

    Args:
        line: a line of a WordNet `data.noun` (etc.) file; license lines
            (starting with two spaces) give None.

    Returns:
        The synset's offset, part of speech, lexicographer file name and
        gloss, or None.

    Example:
    >>> parse_wordnet_data_line("00001740 29 v 01 breathe 0 000 | draw air")
    ('00001740', 'v', 'verb.body', 'draw air')
    """
    if line.startswith("  ") or "|" not in line:
        return None
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    if len(fields) < 3 or not fields[1].isdigit():
        return None
    number = int(fields[1])
    if number >= len(LEXICOGRAPHER_FILES):
        return None
    return fields[0], fields[2], LEXICOGRAPHER_FILES[number], gloss.strip()
