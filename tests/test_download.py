"""``semid download`` against a local HTTP server that speaks Range (no internet needed)."""

from __future__ import annotations

import hashlib
import os
import random
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semid.data import download as dl
from semid.data.download import DownloadError, dataset_folder, download, files_for


class Server:
    """Serves files under ``root``. ``mode``: "range" (honours Range), "norange" (always 200),
    "truncate" (announces the full size but never sends more than half the file)."""

    def __init__(self, root: Path):
        self.root, self.mode, self.requests = root, "range", []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                file = server.root / self.path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                start = 0
                if rng and server.mode != "norange":
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.mode == "truncate":
                    body = data[start:max(start, len(data) // 2)]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(dl, "BACKOFF_S", 0.0)
    monkeypatch.setattr(dl, "RETRIES", 2)


def _payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def site(tmp_path):
    """A server laid out like the 2018 release, holding Magazine_Subscriptions (5-core + meta)."""
    root = tmp_path / "site"
    for i, rf in enumerate(files_for("amazon2018:Magazine_Subscriptions")):
        (root / rf.path).parent.mkdir(parents=True, exist_ok=True)
        (root / rf.path).write_bytes(_payload(300_000 + 1000 * i, i))
    server = Server(root)
    yield server
    server.close()


SPEC = "amazon2018:Magazine_Subscriptions"


def _assert_identical(site, folder):
    for rf in files_for(SPEC):
        assert (folder / rf.name).read_bytes() == (site.root / rf.path).read_bytes()
        assert not (folder / (rf.name + ".part")).exists()


def test_catalogue_names():
    assert dataset_folder("beauty") == "amazon2014_beauty"
    assert dataset_folder("sports") == "amazon2014_sports"
    assert dataset_folder("office") == "amazon2014_office"
    assert dataset_folder("amazon2023:All_Beauty") == "amazon2023_all_beauty"
    urls = [f.url for f in files_for("sports")]
    snap = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
    assert urls == [snap + "reviews_Sports_and_Outdoors_5.json.gz", snap + "meta_Sports_and_Outdoors.json.gz"]
    assert [f.path for f in files_for("amazon2023:All_Beauty")] == [
        "review_categories/All_Beauty.jsonl.gz", "meta_categories/meta_All_Beauty.jsonl.gz"]
    assert len(files_for("beauty", meta=False)) == 1


@pytest.mark.parametrize("name, words", [("scientific", "amazon2018:Industrial_and_Scientific"),
                                         ("amazon2099:Beauty", "unknown dataset"),
                                         ("amazon2018:../etc", "invalid category")])
def test_bad_names(name, words):
    with pytest.raises(DownloadError, match=re.escape(words)):
        files_for(name)


def test_full_download_then_skip(site, tmp_path):
    folder = download(SPEC, tmp_path / "data", mirror=site.url)
    assert folder == tmp_path / "data" / "amazon2018_magazine_subscriptions"
    _assert_identical(site, folder)
    record = dl.read_json(folder / "downloads.json")["files"]
    for rf in files_for(SPEC):
        data = (site.root / rf.path).read_bytes()
        assert record[rf.name]["size"] == len(data)
        assert record[rf.name]["sha256"] == hashlib.sha256(data).hexdigest()
    n = len(site.requests)
    download(SPEC, tmp_path / "data", mirror=site.url)
    assert len(site.requests) == n  # complete files are not fetched again


def test_resume_sends_range(site, tmp_path):
    rf = files_for(SPEC)[0]
    folder = tmp_path / "data" / dataset_folder(SPEC)
    folder.mkdir(parents=True)
    (folder / (rf.name + ".part")).write_bytes((site.root / rf.path).read_bytes()[:12345])
    download(SPEC, tmp_path / "data", mirror=site.url)
    assert ("/" + rf.path, "bytes=12345-") in site.requests
    _assert_identical(site, folder)


def test_server_ignoring_range_restarts(site, tmp_path):
    site.mode = "norange"
    rf = files_for(SPEC)[0]
    folder = tmp_path / "data" / dataset_folder(SPEC)
    folder.mkdir(parents=True)
    (folder / (rf.name + ".part")).write_bytes((site.root / rf.path).read_bytes()[:5000])
    download(SPEC, tmp_path / "data", mirror=site.url)
    assert ("/" + rf.path, "bytes=5000-") in site.requests
    _assert_identical(site, folder)


def test_complete_part_is_finished_without_body(site, tmp_path):
    rf = files_for(SPEC)[0]
    folder = tmp_path / "data" / dataset_folder(SPEC)
    folder.mkdir(parents=True)
    (folder / (rf.name + ".part")).write_bytes((site.root / rf.path).read_bytes())
    download(SPEC, tmp_path / "data", mirror=site.url, meta=False)
    assert (folder / rf.name).read_bytes() == (site.root / rf.path).read_bytes()


def test_truncated_transfer_is_an_error(site, tmp_path):
    site.mode = "truncate"
    with pytest.raises(DownloadError, match="Run the command again to resume"):
        download(SPEC, tmp_path / "data", mirror=site.url, meta=False)
    rf = files_for(SPEC)[0]
    folder = tmp_path / "data" / dataset_folder(SPEC)
    assert not (folder / rf.name).exists()
    size = len((site.root / rf.path).read_bytes())
    assert (folder / (rf.name + ".part")).stat().st_size == size // 2
    site.mode = "range"  # the connection recovers: the next run resumes and finishes
    download(SPEC, tmp_path / "data", mirror=site.url, meta=False)
    assert (folder / rf.name).read_bytes() == (site.root / rf.path).read_bytes()


def test_checksum(site, tmp_path):
    rf = files_for(SPEC)[0]
    data = (site.root / rf.path).read_bytes()
    folder = tmp_path / "data" / dataset_folder(SPEC)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(SPEC, tmp_path / "data", mirror=site.url, meta=False, checksums={rf.name: "sha256:" + "0" * 64})
    assert not (folder / rf.name).exists() and not (folder / (rf.name + ".part")).exists()
    download(SPEC, tmp_path / "data", mirror=site.url, meta=False, verify=False,
             checksums={rf.name: "sha256:" + "0" * 64})  # verify=False skips it
    (folder / rf.name).unlink()
    (folder / "downloads.json").unlink()
    sums = tmp_path / "sums.md5"
    sums.write_text(f"{hashlib.md5(data).hexdigest()}  {rf.path}\n")
    download(SPEC, tmp_path / "data", mirror=site.url, meta=False, checksums=dl.read_checksum_file(sums))
    assert (folder / rf.name).read_bytes() == data


def test_404_names_url(site, tmp_path):
    with pytest.raises(DownloadError) as err:
        download("amazon2018:Nope", tmp_path / "data", mirror=site.url)
    msg = str(err.value)
    assert f"{site.url}/categoryFilesSmall/Nope_5.json.gz" in msg and "404" in msg
    assert not (tmp_path / "data" / "amazon2018_nope").exists()


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    with pytest.raises(DownloadError, match="--mirror"):
        download("beauty", tmp_path / "data", mirror=f"http://127.0.0.1:{port}")


def test_real_files_from_flat_mirror(shared_data, tmp_path):
    raw = shared_data / "amazon2018_magazine_raw"
    if not raw.is_dir():
        pytest.skip(f"{raw} is absent")
    server = Server(raw)
    try:
        folder = download(SPEC, tmp_path / "data", mirror=server.url)
    finally:
        server.close()
    for rf in files_for(SPEC):
        assert (folder / rf.name).read_bytes() == (raw / rf.name).read_bytes()
        # the layout path is tried first, then the flat name
        assert [p for p, _ in server.requests if p.endswith(rf.name)] == ["/" + rf.path, "/" + rf.name]


def test_cli(site, tmp_path, monkeypatch):
    from semid.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEMID_DATA_DIR", raising=False)
    result = CliRunner().invoke(app, ["download", SPEC, "--mirror", site.url, "--no-meta"])
    assert result.exit_code == 0, result.output
    rf = files_for(SPEC)[0]
    assert (tmp_path / "data" / dataset_folder(SPEC) / rf.name).is_file()
    result = CliRunner().invoke(app, ["download", "scientific"])
    assert result.exit_code == 2 and "Industrial_and_Scientific" in result.output
    assert os.path.isdir(tmp_path / "data")
