"""Files in and out, safely: regular-file reads, atomic writes, and export sets.

Reading: `read_regular_file` opens without blocking and refuses anything
that is not a regular file (a FIFO, `/dev/zero`, a folder, a symlink loop)
with one line naming what it is, so a hostile path can neither hang nor
mislead ("does not exist" is said only when nothing is there).

Writing: `atomic_write_bytes` writes a temp name in the same folder and
renames it; files get the mode of a normal file (`0o666` minus the umask,
0644 usually), not `mkstemp`'s 0600. `write_set` writes several files as
one set: all are staged in a unique folder, the old manifest is removed,
the data files are renamed into place and the manifest, which names the
sha256 of every file, comes last, all under an `flock` on the destination folder itself (no lock file). A
crash at any point leaves either the old complete set, or files without a
manifest (readers say "no manifest"), or a manifest that does not match
(readers refuse) -- never a mixed set that verifies. `check_writable`
checks a destination before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import time
from pathlib import Path

from tfgreen.errors import (
    TfgreenFileNotFoundError,
    TfgreenOSError,
    TfgreenPermissionError,
    message,
)

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "read_regular_file",
    "check_writable",
    "write_set",
    "clean_stale",
    "os_error",
]

_STAGING = ".tfgreen-staging-"
_STALE_SECONDS = 3600.0


def os_error(error: OSError, what: str, path) -> TfgreenOSError:
    """Turns a raw `OSError` into a one-line `TfgreenOSError` (or `TfgreenPermissionError`)."""
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return TfgreenPermissionError(
            message(
                f"Permission denied: the {what} cannot be accessed",
                "a path this user may read and write",
                "Choose another folder, or fix its permissions",
                path=str(path),
            )
        )
    fixes = {
        errno.ENAMETOOLONG: "Use a shorter file name",
        errno.ENOSPC: "Free disk space, or write to another disk",
        errno.EDQUOT: "Free disk space, or write to another disk",
        errno.EFBIG: "Raise the file size limit (ulimit -f), or write a smaller file",
        errno.EROFS: "Write to a writable file system",
        errno.ELOOP: "Fix the symbolic link; it points to itself",
    }
    full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return TfgreenOSError(
        message(
            f"The {what} cannot be {'written' if full else 'accessed'}: {error.strerror or error}",
            "a path that can be read and written",
            fixes.get(error.errno, "Check the path"),
            path=str(path),
        )
    )


def read_regular_file(path: str | Path, what: str = "file", limit: int | None = None) -> bytes:
    """Reads a regular file; refuses FIFOs, devices, folders and loops in one line.

    The file is opened with `O_NONBLOCK` and checked with `fstat` on the
    open descriptor, so neither a FIFO nor a file swapped after a check can
    block or fool the read.

    Args:
        path: The file.
        what: What the file is, for messages (e.g. `".tflite file"`).
            Defaults to `"file"`.
        limit: Largest size accepted in bytes, or `None`. Defaults to `None`.

    Returns:
        The file's bytes.

    Raises:
        TfgreenFileNotFoundError: Nothing is at the path.
        TfgreenOSError: The path is not a regular file, is a symlink loop, is
            larger than `limit`, or cannot be read (`TfgreenPermissionError`).

    Example:
    >>> read_regular_file("/dev/zero")
    Traceback (most recent call last):
    ...
    tfgreen.errors.TfgreenOSError: The file is not a regular file (it is a character device)...
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if path.is_symlink():
            raise _not_regular(path, what, "a broken symbolic link") from None
        raise TfgreenFileNotFoundError(
            message(
                f"The {what} does not exist",
                "a path to an existing file",
                "Check the path",
                path=str(path),
            )
        ) from None
    except IsADirectoryError:
        raise _not_regular(path, what, "a folder") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _not_regular(path, what, "a symbolic link loop") from None
        raise os_error(error, what, path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, what, _kind(info.st_mode))
        if limit is not None and info.st_size > limit:
            raise TfgreenOSError(
                message(
                    f"The {what} is too large to be what it claims",
                    f"at most {limit} bytes",
                    "Check the path; the file may be hostile",
                    path=str(path),
                    size_bytes=info.st_size,
                )
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as error:
        if isinstance(error, TfgreenOSError):
            raise
        raise os_error(error, what, path) from None
    finally:
        os.close(fd)
    return data


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_regular(path: Path, what: str, kind: str) -> TfgreenOSError:
    return TfgreenOSError(
        message(
            f"The {what} is not a regular file (it is {kind})",
            "a path to a regular file",
            "Check the path",
            path=str(path),
        )
    )


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_writable(path: str | Path, names: list[str] | None = None) -> None:
    """Checks, before any work, that files can be written at `path`.

    The nearest existing folder must be writable (tested by creating and
    removing a file there, which holds for root and read-only mounts too)
    and every name of the set must fit the file system's name length.

    Args:
        path: The main destination file.
        names: Every file name of the set (defaults to `path`'s name).
            Defaults to `None`.

    Raises:
        TfgreenOSError: A name is too long, or a parent is not a folder.
        TfgreenPermissionError: The folder cannot be written.
    """
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise TfgreenOSError(
            message(
                "A parent of the destination is not a folder",
                "a path whose parents are folders",
                "Choose another output folder",
                path=str(path),
            )
        )
    longest = max([path.name, *(names or [])], key=lambda n: len(os.fsencode(n)))
    if len(os.fsencode(longest)) > _name_max(folder):
        raise TfgreenOSError(
            message(
                "A file name of the export is too long for the file system",
                f"names of at most {_name_max(folder)} bytes",
                "Use a shorter file name",
                name=longest,
                name_bytes=len(os.fsencode(longest)),
            )
        )
    probe = folder / f"{_STAGING}probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise os_error(error, "output folder", folder) from None


def _write_new(target: Path, data: bytes) -> None:
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Writes `data` to `path` so that readers see the old file or the new one, never half.

    Args:
        path: Destination; its folder is created if missing.
        data: The bytes to write.

    Returns:
        The destination as a `Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{_STAGING}{os.getpid()}-{secrets.token_hex(6)}.tmp")
    try:
        _write_new(tmp, data)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError) and not isinstance(error, TfgreenOSError):
            raise os_error(error, "file", path) from None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes UTF-8 `text` to `path` atomically (see `atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale(folder: Path) -> list[Path]:
    """Removes staging left by exports that died: their process is gone or it is an hour old."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if not entry.name.startswith(_STAGING):
                continue
            pid_text = entry.name[len(_STAGING) :].split("-")[0]
            try:
                age = time.time() - entry.lstat().st_mtime
            except OSError:
                continue
            dead = pid_text.isdigit() and not _pid_alive(int(pid_text))
            if dead or age > _STALE_SECONDS:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        entry.unlink()
                removed.append(entry)
    return removed


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive `flock` on the folder itself: no lock file is left behind."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): the rename order still holds
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_set(files: dict[Path, bytes], manifest: Path, manifest_bytes: bytes) -> None:
    """Writes files and their manifest as one set (see the module docstring).

    Args:
        files: Destination -> bytes, all in the manifest's folder.
        manifest: The manifest's destination; written last.
        manifest_bytes: Its content (it names the sha256 of every file).
    """
    folder = manifest.parent
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale(folder)
    staging = folder / f"{_STAGING}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        os.mkdir(staging, 0o755)
    except OSError as error:
        raise os_error(error, "output folder", folder) from None
    try:
        for final, data in [*files.items(), (manifest, manifest_bytes)]:
            try:  # disk full, file size limit: nothing of the set has moved yet
                _write_new(staging / final.name, data)
            except OSError as error:
                raise os_error(error, "export file", final) from None
        with _locked(folder):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(manifest)  # from here until the end the set has no manifest
            for final in files:
                os.replace(staging / final.name, final)
            os.replace(staging / manifest.name, manifest)
            with contextlib.suppress(OSError):
                dir_fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
