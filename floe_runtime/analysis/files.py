"""Read a file only when it is a regular file of bounded size, and never block on it.

Every reader of user files goes through `read_text_file`: floe.yaml and
platform.yaml (the engine, project discovery, the language server), the dbt
project's files the compiler reads, and file-form secrets. A named pipe would
block `open()` until a writer came, `/dev/zero` never ends and a symbolic link
loop fails in ways a person cannot read: each becomes an `UnreadableFile`
whose message names the file and says why it was not read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: Files larger than this are refused (a config file is kilobytes).
MAX_BYTES = 5 * 1024 * 1024

# O_NONBLOCK: a FIFO that appears between stat and open must not block the open.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)
_CHUNK = 1 << 20
#: The reason given for a file that is not UTF-8 (callers word that case their own way).
NOT_UTF8 = "is not UTF-8 text"

_NOT_REGULAR = (
    (stat.S_ISDIR, "is a folder, not a file"),
    (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)
_OS_REASONS = {
    errno.ENOENT: "does not exist",
    errno.ELOOP: "is a symbolic link that loops (or a chain of them too long to follow)",
    errno.ENAMETOOLONG: "has a path too long for the file system",
    errno.ENOTDIR: "cannot be reached: a part of its path is a file, not a folder",
    errno.EACCES: "cannot be read: permission denied",
    errno.EPERM: "cannot be read: operation not permitted",
    errno.EISDIR: "is a folder, not a file",
}


class UnreadableFile(OSError):
    """A file that was not read; `reason` completes a sentence that starts with the file.

    An OSError (its `strerror` is the reason), so code that handles the errors of
    `open()` and `read()` handles this one too.
    """

    def __init__(self, path: Path | str, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"{path} {reason}")
        self.strerror = reason
        self.path = Path(path)
        self.reason = reason
        self.missing = missing


def size_text(size: int) -> str:
    """A byte count as a person reads it: `812 bytes`, `4.0 KiB`, `1.3 GiB`."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _limit_text(limit: int) -> str:
    mib, rest = divmod(limit, 1024 * 1024)
    return f"{mib} MiB" if not rest else size_text(limit)


def os_reason(exc: OSError) -> str:
    """What an OSError of `stat()` or `open()` says about the file, as `UnreadableFile.reason`."""
    return _OS_REASONS.get(exc.errno or 0) or f"cannot be read: {exc.strerror or exc}"


def not_regular(mode: int) -> str | None:
    """Why a file of this `st_mode` is not read (`is a named pipe (FIFO), ...`); None if regular."""
    if stat.S_ISREG(mode):
        return None
    return next((reason for test, reason in _NOT_REGULAR if test(mode)), "is not a regular file")


def _check(path: Path | str, st: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    reason = not_regular(st.st_mode)
    if reason is not None:
        raise UnreadableFile(path, reason)
    if st.st_size > limit:
        raise UnreadableFile(path, _too_large(st.st_size, limit))


def _too_large(size: int, limit: int) -> str:
    return f"is {size_text(size)}, over the {_limit_text(limit)} limit"


def read_bytes_file(path: Path | str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    The file is checked before it is opened (so a FIFO is never opened), opened
    without blocking, and checked again on the open descriptor (it may have been
    swapped meanwhile); reading stops past `limit` (a file may grow). Raises what
    `open()` raises (FileNotFoundError, PermissionError, IsADirectoryError, ...) and
    UnreadableFile for a file that is not regular or too large.
    """
    try:
        info = os.stat(path)
    except ValueError:  # a NUL in the path
        raise UnreadableFile(path, "has a NUL character in its path") from None
    _check(path, info, limit)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        _check(path, os.fstat(fd), limit)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UnreadableFile(path, _too_large(total, limit))
    finally:
        os.close(fd)


def read_text_file(path: Path | str, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; UnreadableFile, saying why,
    for anything else (missing, a FIFO, a device, a looping link, too large, not UTF-8)."""
    try:
        data = read_bytes_file(path, limit)
    except UnreadableFile:
        raise
    except OSError as exc:
        raise UnreadableFile(path, os_reason(exc), missing=exc.errno == errno.ENOENT) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(path, NOT_UTF8) from None


def exists_on_disk(path: Path) -> bool:
    """Whether something other than a folder stands at `path` (a FIFO or a broken link too).

    Discovery uses this instead of `is_file()`, so a platform.yaml that cannot be
    read is reported as such instead of silently not being there.
    """
    try:
        return os.path.lexists(path) and not path.is_dir()
    except (OSError, ValueError):
        return False


def resolved(path: Path) -> Path:
    """`path.resolve()`, or the absolute path when a symbolic link loops or it cannot be resolved."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))
