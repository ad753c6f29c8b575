"""Writing files whole or not at all: the one helper every ``save`` in mixrank and esan uses."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success, rename it over ``path``.

    The file gets the usual permissions (``0o666`` less the umask; ``mkstemp`` alone would
    leave it readable by its owner only) and is flushed to disk before the rename, so a
    reader sees the old file or the whole new one, never half of it. On any error the
    temporary file is removed and ``path`` is untouched.

    A ``path`` that is a symbolic link is written *through*: the file it points to is
    replaced (atomically, beside it) and the link stays a link. An ``OSError`` names
    ``path`` as the user gave it, never the temporary file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "x.txt") as fh:
    ...     _ = fh.write(b"hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _named(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _named(exc: OSError, path: Path) -> OSError:
    """The same kind of OSError, naming the user's ``path`` instead of a temporary file."""
    if exc.errno is None:
        return type(exc)(f"cannot write {path}: {exc}")
    return type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}", str(path))
