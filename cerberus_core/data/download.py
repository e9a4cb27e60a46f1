"""Fetching a file over HTTP(S): streamed with a progress bar, checked against a known sha256 and
written under its final name only once it matches, so a bad or cut download leaves nothing."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..errors import InputError
from .dataset import SPLITS
from .readers import read_wikiqa_tsv

WIKIQA_URL = (
    "https://download.microsoft.com/download/E/5/F/"
    "E5FCFCEE-7005-4814-853D-DAA7C66507E0/WikiQACorpus.zip"
)
# sha256 of that archive (7,094,233 bytes), recorded from the official archive by Hugging Face
# `datasets` (datasets/wiki_qa/dataset_infos.json and urls_checksums/checksums.txt).
WIKIQA_SHA256 = "467c13f9e104552c0a9c16f41836ca8d89f9c0cc4b6e4355e104d5c3109ffa45"


class Unreachable(InputError):
    """The server could not be reached or the transfer broke off (no internet, wrong address)."""


def fetch(url: str, dest: str | Path, sha256: str, timeout: float = 60) -> Path:
    """Download `url` to `dest`; refuse it (nothing written) unless its sha256 is `sha256`.

    The connection is opened before anything is created, so an offline machine is left untouched.
    """
    dest = Path(dest)
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise Unreachable(url, f"download failed: {e}") from None  # "HTTP Error 404: ..."
    except OSError as e:  # URLError included
        raise Unreachable(url, f"download failed: {getattr(e, 'reason', e)}") from None
    digest = hashlib.sha256()
    with resp, atomic_path(dest) as tmp, tmp.open("wb") as f, \
            tqdm(total=int(resp.headers.get("Content-Length") or 0) or None, unit="B",
                 unit_scale=True, desc=dest.name) as bar:
        try:
            while chunk := resp.read(1 << 16):
                f.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        except OSError as e:
            raise Unreachable(url, f"download broke off: {e}") from None
        if digest.hexdigest() != sha256.lower():
            raise InputError(url, f"checksum mismatch: sha256 {digest.hexdigest()}, expected "
                                  f"{sha256.lower()}; the file was refused and not kept")
    return dest


def download_root(data_root: str | Path | None = None) -> Path:
    """Where a download goes: the explicit data_root, else $CERBERUS_DATA, else ./data."""
    return Path(os.path.abspath(data_root or os.environ.get("CERBERUS_DATA") or "data"))


def download_wikiqa(dest: str | Path | None = None, url: str | None = None,
                    sha256: str | None = None) -> Path:
    """Fetch the official WikiQACorpus.zip and install its three TSVs as DEST/wikiqa_tsv.

    DEST defaults to $CERBERUS_DATA, else ./data. url and sha256 default to $CERBERUS_WIKIQA_URL
    and $CERBERUS_WIKIQA_SHA256, else the official archive's (overridable for a mirror or a test
    server). The archive is kept only if its sha256 matches, and the folder appears only once all
    three files are extracted and parse, so a cut or corrupt download never half-installs.
    """
    out = download_root(dest) / "wikiqa_tsv"
    url = url or os.environ.get("CERBERUS_WIKIQA_URL") or WIKIQA_URL
    sha256 = sha256 or os.environ.get("CERBERUS_WIKIQA_SHA256") or WIKIQA_SHA256
    with tempfile.TemporaryDirectory(prefix="cerberus-wikiqa.") as tmpdir:
        archive = fetch(url, Path(tmpdir) / "WikiQACorpus.zip", sha256)
        if not zipfile.is_zipfile(archive):
            raise InputError(url, "not a zip archive; expected the official WikiQACorpus.zip")
        try:
            with zipfile.ZipFile(archive) as zf:
                names = set(zf.namelist())
                for s in SPLITS:
                    if f"WikiQACorpus/WikiQA-{s}.tsv" not in names:
                        raise InputError(url, f"archive lacks WikiQACorpus/WikiQA-{s}.tsv; "
                                              "expected the official WikiQACorpus.zip")
                with atomic_path(out) as tmp:
                    tmp.mkdir()
                    for s in SPLITS:
                        member, target = f"WikiQACorpus/WikiQA-{s}.tsv", tmp / f"WikiQA-{s}.tsv"
                        with zf.open(member) as src, target.open("wb") as dst:
                            shutil.copyfileobj(src, dst)
                        try:
                            read_wikiqa_tsv(target)
                        except InputError as e:
                            raise InputError(url, f"{member}: {e.message}", line=e.line) from None
        except zipfile.BadZipFile as e:
            raise InputError(url, f"corrupt zip archive ({e})") from None
        except OSError as e:  # a read-only or non-folder data root: say where, not a traceback
            raise InputError(out, f"cannot install the download here ({e.strerror or e}); set "
                                  "$CERBERUS_DATA to a writable folder") from None
    return out
