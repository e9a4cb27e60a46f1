"""Fetching a file over HTTP(S): streamed with a progress bar, checked against a known sha256 and
written under its final name only once it matches, so a bad or cut download leaves nothing."""
from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .atomic import atomic_path
from .errors import InputError


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
