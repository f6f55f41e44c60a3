"""Download the official raw Amazon review files (2014, 2018, 2023 releases).

Files land in ``<data_dir>/<folder>/`` (see :data:`DATASETS` and :func:`dataset_folder`), the
same folder names that ``prepare`` looks in. Downloads are streamed into ``<file>.part`` and
resumed with a ``Range`` request after an interruption; the final name appears only once the size
(and the checksum, where one is known) has been checked, so a file under its final name is always
complete. ``downloads.json`` in the folder records each finished file's URL, size and sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from semid.core.artifacts import read_json, write_json
from semid.core.errors import SemidError
from semid.core.log import log, progress
from semid.data.datasets import NAMED


class DownloadError(SemidError):
    """A file could not be downloaded or failed its size or checksum check."""


@dataclass(frozen=True)
class Release:
    base: str
    reviews: str  # path below ``base``, with {cat} for the category
    meta: str


RELEASES: dict[str, Release] = {
    "amazon2014": Release("http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/",
                          "reviews_{cat}_5.json.gz", "meta_{cat}.json.gz"),
    "amazon2018": Release("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/",
                          "categoryFilesSmall/{cat}_5.json.gz", "metaFiles2/meta_{cat}.json.gz"),
    "amazon2023": Release("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/",
                          "review_categories/{cat}.jsonl.gz", "meta_categories/meta_{cat}.jsonl.gz"),
}

# Named datasets with an official raw release: their raw layout in semid.data.datasets.NAMED.
# Generic specs "<release>:<Category>" use the folder "<release>_<category lower>".
DATASETS: dict[str, tuple[str, str, str]] = {
    name: (lay.format, lay.category, lay.folder)
    for name, layouts in NAMED.items() for lay in layouts[:1] if lay.format in RELEASES and lay.category}

# Known digests of official files, "sha256:<hex>" or "md5:<hex>", keyed by file name. The
# publishers do not list any, so this starts empty; users can pass their own with --checksum.
CHECKSUMS: dict[str, str] = {}

RETRIES = 4  # tries per file without progress before giving up
BACKOFF_S = 1.0  # first wait between tries; doubles each time
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
CHUNK = 1 << 20
RECORD = "downloads.json"

_CATEGORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_&,.-]*$")
_NOT_RAW = {
    "scientific": ("'scientific' is UniSRec's processed subset, not an official raw download: get the "
                   "UniSRec files (Scientific.text, .inter, .item2index, .user2index) from the UniSRec/"
                   "RecBole release into <data_dir>/amazon2018_scientific_unisrec/, or download the raw "
                   "category with `semid download amazon2018:Industrial_and_Scientific`"),
    "toy": "'toy' is generated on the fly; there is nothing to download",
}


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name on disk
    path: str  # path below the release's base URL (the official layout)
    url: str  # official URL
    kind: str  # "reviews" or "meta"
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>"


def resolve(name: str) -> tuple[str, str, str]:
    """``(release, category, folder)`` of a named dataset or a ``<release>:<Category>`` spec."""
    key = name.strip()
    if key.lower() in DATASETS:
        return DATASETS[key.lower()]
    if key.lower() in _NOT_RAW:
        raise DownloadError(_NOT_RAW[key.lower()])
    release, sep, category = key.partition(":")
    release = release.lower()
    if not sep or release not in RELEASES:
        raise DownloadError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or "
                            f"<release>:<Category> with release in {', '.join(RELEASES)} "
                            "(e.g. amazon2018:Industrial_and_Scientific)")
    if not _CATEGORY.match(category):
        raise DownloadError(f"invalid category {category!r} in {name!r}: use the name as in the "
                            "official file names, e.g. Sports_and_Outdoors")
    return release, category, f"{release}_{category.lower()}"


def dataset_folder(name: str) -> str:
    """Folder name under the data directory where ``name``'s raw files live."""
    return resolve(name)[2]


def files_for(name: str, meta: bool = True) -> list[RemoteFile]:
    release, category, _ = resolve(name)
    rel = RELEASES[release]
    paths = [("reviews", rel.reviews)] + ([("meta", rel.meta)] if meta else [])
    out = []
    for kind, template in paths:
        path = template.format(cat=category)
        file_name = path.rsplit("/", 1)[-1]
        out.append(RemoteFile(file_name, path, rel.base + path, kind, CHECKSUMS.get(file_name)))
    return out


def read_checksum_file(path: Path) -> dict[str, str]:
    """Parse ``sha256sum`` / ``md5sum`` output (``<hex>  <name>``); the digest length tells which."""
    out = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DownloadError(f"cannot read checksum file {path}: {exc}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        algo = {64: "sha256", 32: "md5"}.get(len(parts[0]))
        if len(parts) != 2 or algo is None or not re.fullmatch(r"[0-9a-fA-F]+", parts[0]):
            raise DownloadError(f"{path}, line {n}: expected '<sha256 or md5 hex>  <file name>'")
        out[parts[1].strip().lstrip("*").rsplit("/", 1)[-1]] = f"{algo}:{parts[0].lower()}"
    return out


def file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class _NotFound(Exception):
    pass


class _Transient(Exception):
    pass


def _total_from(resp: httpx.Response, offset: int) -> int | None:
    """Full file size from Content-Range (206) or Content-Length (200)."""
    if resp.status_code == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("content-range", ""))
        if not m or int(m.group(1)) != offset:
            return -1  # not the range we asked for
        return None if m.group(3) == "*" else int(m.group(3))
    length = resp.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def _fetch_once(client: httpx.Client, url: str, part: Path, name: str) -> int | None:
    """One GET into ``part``, resuming from its size. Returns the expected total size (or None)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as resp:
        code = resp.status_code
        if code == 404:
            raise _NotFound(url)
        if code == 416 and offset:
            # Nothing left to send: either the part is already complete or it is longer than the file.
            m = re.match(r"bytes \*/(\d+)", resp.headers.get("content-range", ""))
            if m and int(m.group(1)) == offset:
                return offset
            part.unlink()
            raise _Transient(f"server refused to resume {name}; starting again")
        if code == 429 or code >= 500:
            raise _Transient(f"HTTP {code} from {url}")
        if code not in (200, 206):
            raise DownloadError(f"HTTP {code} from {url}")
        total = _total_from(resp, offset)
        if total == -1:
            part.unlink()
            raise _Transient(f"server sent the wrong range for {name}; starting again")
        if code == 200 and offset:
            log.info("%s: server does not resume downloads; starting again", name)
            offset = 0
        with open(part, "ab" if code == 206 else "wb") as f, \
                progress(desc=name, total=total, unit="B", unit_scale=True, unit_divisor=1024,
                         initial=offset) as bar:
            # Raw bytes as they arrive: a dropped connection keeps what came, and no decoding.
            for chunk in resp.iter_raw():
                f.write(chunk)
                bar.update(len(chunk))
    return total


def fetch(client: httpx.Client, url: str, dest: Path) -> None:
    """Download ``url`` to ``dest.part`` (resuming), retrying transient errors, and check its size.

    Raises :class:`_NotFound` on 404 so the caller can try another URL.
    """
    part = dest.with_name(dest.name + ".part")
    tries, wait = 0, BACKOFF_S
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            total = _fetch_once(client, url, part, dest.name)
            size = part.stat().st_size if part.exists() else 0
            if total is None or size == total:
                return
            if size > total:
                part.unlink()
                raise DownloadError(f"{dest.name}: got {size} bytes but the server announced {total}; "
                                    "deleted the partial file")
            problem = f"connection closed after {size} of {total} bytes"
        except (_Transient, httpx.TransportError) as exc:
            if isinstance(exc, httpx.ConnectError):
                problem = f"cannot connect to {url} ({exc})"
            else:
                problem = str(exc) or type(exc).__name__
        size = part.stat().st_size if part.exists() else 0
        if size > before:  # a try that made progress does not count against the limit
            tries, wait = 0, BACKOFF_S
        tries += 1
        if tries >= RETRIES:
            hint = (" Run the command again to resume." if size else
                    " Check the network, pass --mirror URL, or place the files yourself under --data-dir.")
            raise DownloadError(f"download of {url} failed ({RETRIES} tries): {problem}.{hint}")
        log.warning("%s: %s; retrying in %.0f s", dest.name, problem, wait)
        time.sleep(wait)
        wait *= 2


def _candidates(rf: RemoteFile, mirror: str | None) -> list[str]:
    if not mirror:
        return [rf.url]
    base = mirror.rstrip("/") + "/"
    urls = [base + rf.path, base + rf.name]  # the official layout first, then a flat folder
    return list(dict.fromkeys(urls))


def _load_record(folder: Path) -> dict:
    path = folder / RECORD
    if path.is_file():
        try:
            record = read_json(path)
            record.setdefault("files", {})
            return record
        except (ValueError, AttributeError):
            log.warning("%s is not valid JSON; ignoring it", path)
    return {"files": {}}


def _verify(path: Path, expected: str | None, *, ours: bool) -> str:
    """sha256 of ``path``; raise when it does not match ``expected``, deleting it if ``ours``."""
    sha = file_digest(path)
    if expected:
        algo, _, want = expected.partition(":")
        got = sha if algo == "sha256" else file_digest(path, algo)
        if got != want.lower():
            what = "deleted the download" if ours else "delete it to download it again"
            if ours:
                path.unlink()
            raise DownloadError(f"checksum mismatch for {path.name.removesuffix('.part')}: expected "
                                f"{algo} {want}, got {got}; {what}")
    return sha


def download_one(client: httpx.Client, rf: RemoteFile, folder: Path, *, mirror: str | None = None,
                 checksum: str | None = None) -> Path:
    """Fetch one file into ``folder`` unless it is already complete; returns its path."""
    dest = folder / rf.name
    record = _load_record(folder)
    known = record["files"].get(rf.name)
    if dest.is_file():
        if known and known.get("size") == dest.stat().st_size:
            log.info("%s: already downloaded", rf.name)
            return dest
        if not known:
            # Put there by hand: keep it, but check it when a checksum is known.
            sha = _verify(dest, checksum, ours=False)
            log.info("%s: found, not downloaded by semid; keeping it", rf.name)
            record["files"][rf.name] = {"url": None, "size": dest.stat().st_size, "sha256": sha}
            write_json(folder / RECORD, record)
            return dest
        log.warning("%s: size differs from %s; downloading again", rf.name, RECORD)
        dest.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    tried = []
    for url in _candidates(rf, mirror):
        try:
            fetch(client, url, dest)
        except _NotFound:
            tried.append(url)
            continue
        part = dest.with_name(dest.name + ".part")
        sha = _verify(part, checksum, ours=True)
        size = part.stat().st_size
        os.replace(part, dest)
        record = _load_record(folder)
        record["files"][rf.name] = {"url": url, "size": size, "sha256": sha,
                                    "downloaded": datetime.now(UTC).isoformat(timespec="seconds")}
        write_json(folder / RECORD, record)
        log.info("%s: downloaded %.1f MiB", rf.name, size / 2**20)
        return dest
    hint = ("check the mirror URL and the category name" if mirror else
            "check the category name, or pass --mirror URL to use a copy elsewhere")
    raise DownloadError(f"not found (HTTP 404): {' and '.join(tried)}; {hint}")


def download(name: str, data_dir: Path, *, mirror: str | None = None, meta: bool = True,
             checksums: dict[str, str] | None = None, verify: bool = True) -> Path:
    """Download ``name``'s raw files into ``<data_dir>/<folder>/`` and return that folder.

    ``checksums`` (file name -> "sha256:<hex>" or "md5:<hex>") adds to the catalogue's;
    ``verify=False`` skips every checksum check.
    """
    files = files_for(name, meta=meta)
    folder = Path(data_dir) / dataset_folder(name)
    existed = folder.exists()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request is noise here
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=True,
                          headers={"User-Agent": "semid-download",
                                   "Accept-Encoding": "identity"}) as client:
            for rf in files:
                expected = (checksums or {}).get(rf.name, rf.checksum) if verify else None
                download_one(client, rf, folder, mirror=mirror, checksum=expected)
    except BaseException:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a typo in the category should not leave an empty folder behind
        raise
    return folder


def ensure_downloaded(name: str, data_dir: Path, mirror: str | None = None) -> Path:
    """The folder of ``name``'s raw files, downloading whatever is missing (reviews and metadata)."""
    return download(name, data_dir, mirror=mirror)
