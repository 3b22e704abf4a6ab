"""Fetching the raw material: Debian packages, Debian's indexes, PyPI files.

Everything is downloaded with the ordinary clients (`apt-get download`,
`apt-get update` into a private lists folder, `pip download --no-deps`) into
`<cache>/_downloads/`, and unpacked there with `dpkg-deb -x`. Nothing is
installed and nothing is written into the repository.

Some sources are reserved for independent checks of the project and must
never feed a transfer corpus: `check_allowed` refuses them by name.
"""

import email.parser
import glob
import gzip
import hashlib
import os
import re
import subprocess
import sys
import zipfile

DEBIAN_RELEASE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

# Reserved for independent checks (see the module docstring). Matched against
# the package name, case-insensitively.
FORBIDDEN_PATTERNS = (
    (r"fortune", "Debian fortune-cookie files"),
    (r"^trans-de-en$", "the Ding German-English dictionary"),
    (r"^ding$", "the Ding German-English dictionary"),
    (r"(^|-)freedict-deu-eng$", "FreeDict deu-eng"),
    (r"^sword-text-", "the Bible (SWORD modules)"),
    (r"^libpython3(\.\d+)?-(stdlib|minimal|testsuite)$", "the Python stdlib"),
    (r"^python3(\.\d+)?(-minimal|-doc|-examples)?$", "the Python stdlib"),
    (r"^idle(-python)?3", "the Python stdlib"),
)


def check_allowed(package):
    """Refuses a source reserved for independent checks.

    Args:
        package: a Debian or PyPI package name.

    Returns:
        None; raises `ValueError` when the package is forbidden.

    Example:
    >>> check_allowed("wordnet-base")
    >>> check_allowed("fortunes-de")
    Traceback (most recent call last):
    ...
    ValueError: fortunes-de is reserved ... Received: package=fortunes-de
    """
    for pattern, what in FORBIDDEN_PATTERNS:
        if re.search(pattern, package, flags=re.IGNORECASE):
            raise ValueError(
                f"{package} is reserved for independent checks ({what}) and "
                f"may not feed a transfer corpus. Received: package={package}"
            )


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command, cwd=None):
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    return result.stdout


# ---------------------------------------------------------------------------
# Debian binary packages.


def debian_package(package, downloads):
    """Downloads and unpacks one Debian package.

    Args:
        package: the binary package name (the candidate version of the
            machine's apt lists is taken).
        downloads: the download folder (`<cache>/_downloads`).

    Returns:
        `(root, source)`: the folder it was unpacked into, and a provenance
        dict (kind, package, version, release, file, sha256, licence).
    """
    check_allowed(package)
    debs = os.path.join(downloads, "debs")
    os.makedirs(debs, exist_ok=True)
    found = sorted(glob.glob(os.path.join(debs, f"{package}_*.deb")))
    if not found:
        _run(["apt-get", "download", package], cwd=debs)
        found = sorted(glob.glob(os.path.join(debs, f"{package}_*.deb")))
    if not found:
        raise FileNotFoundError(f"apt-get download gave no .deb for {package}")
    deb = found[-1]
    fields = _run(["dpkg-deb", "-f", deb, "Package", "Version", "Source"])
    info = dict(
        line.split(": ", 1) for line in fields.splitlines() if ": " in line
    )
    root = os.path.join(downloads, "unpacked", package)
    if not os.path.isdir(root):
        os.makedirs(root + ".tmp", exist_ok=True)
        _run(["dpkg-deb", "-x", deb, root + ".tmp"])
        os.replace(root + ".tmp", root)
    copyright_file = os.path.join(
        root, "usr", "share", "doc", package, "copyright"
    )
    source = {
        "kind": "debian",
        "package": package,
        "version": info.get("Version"),
        "source_package": info.get("Source", package).split(" ")[0],
        "release": f"Debian {DEBIAN_RELEASE} (main)",
        "file": os.path.basename(deb),
        "sha256": sha256_of(deb),
        "licence": licence_of_copyright(copyright_file),
    }
    return root, source


def licence_of_copyright(path):
    """The licence names of a Debian copyright file, in order of appearance.

    Args:
        path: a `usr/share/doc/PKG/copyright` file (a missing file gives
            "unknown").

    Returns:
        A string such as "GPL-3+, GFDL-1.3+".
    """
    if not os.path.exists(path):
        folder = os.path.dirname(path)
        if os.path.islink(folder):  # a doc folder shared with another package
            return f"see /usr/share/doc/{os.readlink(folder)}/copyright"
        return "unknown"
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    names = []
    for match in re.finditer(r"^License:[ \t]*(\S[^\n]*)$", text, flags=re.M):
        name = re.sub(r"\s+", " ", match.group(1)).strip()
        if name and name not in names:
            names.append(name)
    if not names:
        for pattern, name in (
            (r"GNU Lesser General Public License|LGPL", "LGPL"),
            (r"GNU General Public License|\bGPL\b", "GPL"),
            (r"GNU Free Documentation License", "GFDL"),
            (r"Mozilla Public License", "MPL"),
            (r"Apache License", "Apache"),
            (r"\bBSD\b", "BSD"),
            (r"Permission to use, copy, modify", "permissive (see copyright)"),
        ):
            if re.search(pattern, text) and name not in names:
                names.append(name)
    return (
        ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") or "unknown"
    )


# ---------------------------------------------------------------------------
# Debian's indexes: Packages and the description translations.


def debian_indexes(downloads, languages=("en", "de")):
    """Fetches the `Packages` and `Translation-LANG` files of Debian main.

    `apt-get update` runs with a private sources list and lists folder, so
    the machine's own apt state is left as it is.

    Args:
        downloads: the download folder.
        languages: the description languages to fetch.

    Returns:
        `(files, source)`: `{"Packages": path, "Translation-en": path, ...}`
        (decompressed text files) and a provenance dict.
    """
    base = os.path.join(downloads, "apt-indexes")
    lists = os.path.join(base, "lists")
    out = os.path.join(base, "text")
    wanted = ["Packages"] + [f"Translation-{lang}" for lang in languages]
    if not all(os.path.exists(os.path.join(out, w)) for w in wanted):
        os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
        os.makedirs(
            os.path.join(base, "cache", "archives", "partial"), exist_ok=True
        )
        os.makedirs(out, exist_ok=True)
        sources_list = os.path.join(base, "sources.list")
        with open(sources_list, "w") as f:
            f.write(f"deb {DEBIAN_MIRROR} {DEBIAN_RELEASE} main\n")
        _run([
            "apt-get", "update",
            "-o", f"Dir::Etc::sourcelist={sources_list}",
            "-o", "Dir::Etc::sourceparts=/nonexistent",
            "-o", f"Dir::State::Lists={lists}",
            "-o", f"Dir::Cache={os.path.join(base, 'cache')}",
            "-o", "Acquire::Languages=" + ",".join(languages),
        ])  # fmt: skip
        for name in wanted:
            pattern = (
                "binary-amd64_Packages"
                if name == "Packages"
                else f"i18n_{name}"
            )
            matches = [
                p
                for p in glob.glob(os.path.join(lists, f"*{pattern}*"))
                if not p.endswith("partial")
            ]
            if not matches:
                raise FileNotFoundError(f"apt-get update gave no {name} index")
            text = _run(["/usr/lib/apt/apt-helper", "cat-file", matches[0]])
            with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                f.write(text)
    release = {}
    for path in glob.glob(os.path.join(lists, "*_InRelease")):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("Version:", "Date:", "Codename:")):
                    key, value = line.split(":", 1)
                    release.setdefault(key, value.strip())
    files = {w: os.path.join(out, w) for w in wanted}
    source = {
        "kind": "debian-index",
        "package": "dists/{}/main: binary-amd64/Packages, i18n/{}".format(
            DEBIAN_RELEASE,
            ", ".join(f"Translation-{lang}" for lang in languages),
        ),
        "version": "Debian {} ({}), Release file dated {}".format(
            release.get("Version", "?"),
            release.get("Codename", DEBIAN_RELEASE),
            release.get("Date", "?"),
        ),
        "release": f"Debian {DEBIAN_RELEASE} (main)",
        "sha256": {w: sha256_of(p) for w, p in files.items()},
        "licence": "each description under its package's licence (Debian main, "
        "DFSG-free); translations by the Debian Description Translation "
        "Project",
    }
    return files, source


# ---------------------------------------------------------------------------
# PyPI.


def pypi_wheel(requirement, downloads):
    """Downloads (`pip download --no-deps`) and unpacks one PyPI wheel.

    Args:
        requirement: `NAME==VERSION`.
        downloads: the download folder.

    Returns:
        `(root, source)`: the unpacked folder and a provenance dict.
    """
    name, _, version = requirement.partition("==")
    check_allowed(name)
    wheels = os.path.join(downloads, "pypi")
    os.makedirs(wheels, exist_ok=True)
    pattern = os.path.join(wheels, f"{name.replace('-', '_')}-{version}-*.whl")
    found = sorted(glob.glob(pattern, recursive=False)) or sorted(
        glob.glob(os.path.join(wheels, f"{name}-{version}-*.whl"))
    )
    if not found:
        _run([
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--only-binary=:all:",
            requirement, "-d", wheels,
        ])  # fmt: skip
        found = sorted(glob.glob(os.path.join(wheels, f"*{version}*.whl")))
        found = [
            p
            for p in found
            if os.path.basename(p).lower().startswith(name.lower())
        ]
    if not found:
        raise FileNotFoundError(f"pip download gave no wheel for {requirement}")
    wheel = found[-1]
    root = os.path.join(downloads, "unpacked", f"{name}-{version}")
    if not os.path.isdir(root):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root + ".tmp")
        os.replace(root + ".tmp", root)
    licence = "unknown"
    for metadata in glob.glob(os.path.join(root, "*.dist-info", "METADATA")):
        with open(metadata, encoding="utf-8") as f:
            message = email.parser.Parser().parse(f, headersonly=True)
        licence = (
            message.get("License-Expression")
            or next(
                (
                    c.split("::")[-1].strip()
                    for c in message.get_all("Classifier") or []
                    if c.startswith("License ::")
                ),
                None,
            )
            or message.get("License")
            or "unknown"
        )
    source = {
        "kind": "pypi",
        "package": name,
        "version": version,
        "file": os.path.basename(wheel),
        "sha256": sha256_of(wheel),
        "licence": licence,
    }
    return root, source


def read_text(path):
    """A text file, gunzipped if it ends in `.gz` (UTF-8, bad bytes fixed)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")
