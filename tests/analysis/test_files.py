"""The one safe reader: only regular files, bounded, never blocking, and saying why not."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from floe_runtime.analysis.files import (
    NOT_UTF8,
    UnreadableFile,
    exists_on_disk,
    read_bytes_file,
    read_text_file,
    resolved,
)

# A FIFO read with a blocking open() waits for a writer forever: these tests would hang.
pytestmark = pytest.mark.timeout(20)


def test_reads_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "floe.yaml"
    path.write_text("name: é\n", encoding="utf-8")
    assert read_text_file(path) == "name: é\n"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "platform.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile) as caught:
        read_text_file(fifo)
    assert str(caught.value) == f"{fifo} is a named pipe (FIFO), not a regular file"
    assert not caught.value.missing


def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "floe.yaml").symlink_to(fifo)
    with pytest.raises(UnreadableFile, match="named pipe"):
        read_text_file(tmp_path / "floe.yaml")


def test_dev_zero_is_refused_before_reading() -> None:
    with pytest.raises(UnreadableFile, match="is a character device, not a regular file"):
        read_text_file(Path("/dev/zero"))


def test_a_looping_link_says_so(tmp_path: Path) -> None:
    loop = tmp_path / "platform.yaml"
    loop.symlink_to(loop)
    with pytest.raises(UnreadableFile, match="symbolic link that loops"):
        read_text_file(loop)
    assert exists_on_disk(loop)  # discovery sees it, so the engine can say why
    assert resolved(loop) == loop  # no RuntimeError from Path.resolve


def test_too_large_is_refused_with_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a" * 2048)
    with pytest.raises(UnreadableFile) as caught:
        read_text_file(big, limit=1024)
    assert caught.value.reason == "is 2.0 KiB, over the 1.0 KiB limit"
    assert read_text_file(big, limit=2048) == "a" * 2048


def test_missing_and_not_utf8_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile) as caught:
        read_text_file(tmp_path / "nothing.yaml")
    assert caught.value.missing and caught.value.reason == "does not exist"
    (tmp_path / "utf16.yaml").write_bytes("name: x\n".encode("utf-16"))
    with pytest.raises(UnreadableFile) as caught:
        read_text_file(tmp_path / "utf16.yaml")
    assert caught.value.reason == NOT_UTF8
    with pytest.raises(UnreadableFile, match="is a folder, not a file"):
        read_text_file(tmp_path)
    assert not exists_on_disk(tmp_path)


def test_bytes_reader_raises_what_open_raises(tmp_path: Path) -> None:
    """Code written for open()'s errors keeps working: missing is FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        read_bytes_file(tmp_path / "nothing")
    with pytest.raises(IsADirectoryError):
        read_bytes_file(tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError) as caught:
        read_bytes_file(loop)
    assert caught.value.errno == errno.ELOOP
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="named pipe"):
        read_bytes_file(fifo)


def test_a_name_too_long_for_the_os(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="has a path too long for the file system"):
        read_text_file(tmp_path / ("x" * 300))
