"""File habits shared by every stage (docs/conventions.md, "Files").

- Every file carries a format name, a format version and the gthd version that wrote it;
  readers refuse a version they don't know, with a clear message (:class:`FormatError`).
- Whole files are written to a temporary name in the same folder, fsynced, then renamed:
  a crash never leaves a half-written file under the final name.
- Append-only logs (JSON lines) are flushed often and read back tolerating a torn last
  line (what a ``kill -9`` mid-write leaves).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterator

from . import __version__

# The process umask, read once at import (reading it means setting it, which is not
# thread-safe later): files written via a temporary file get the usual permissions.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class FormatError(ValueError):
    """A file is missing, unreadable, or of a format/version this gthd does not know."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a fsynced temporary file and an atomic rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # the error names the file the user asked for, never our temporary one
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


MAX_INPUT_BYTES = 256 * 1024**2
"""The largest file a path read from a data file may name (an image, a label file):
far above any real frame, far below what would exhaust memory."""


def contained_path(root: str | os.PathLike, name: str, what: str) -> Path:
    """Where ``name``, a relative path read from a data file, points inside ``root``.

    Symlinks are followed, so a link inside ``root`` that leads out of it is refused
    like a ``../`` path. The file need not exist (a missing file is the caller's call);
    one that exists must be a regular file of at most :data:`MAX_INPUT_BYTES`.

    Args:
        root: the folder the data file's paths are relative to.
        name: the path as the data file spells it.
        what: the entry that holds it, for the message (e.g. ``"ann.json: image entry 3"``).

    Returns:
        The resolved path.

    Raises:
        FormatError: ``name`` is not a non-empty string, is absolute, leads outside
            ``root``, or names something other than a regular file, or a huge one.
    """
    if not isinstance(name, str) or not name or "\0" in name:
        raise FormatError(f"{what}: {name!r} is not a file name")
    if Path(name).is_absolute() or name.startswith(("\\", "/")) or (len(name) > 1 and name[1] == ":"):
        raise FormatError(f"{what}: {name!r} is an absolute path; paths must be relative to {root}")
    base = Path(root).resolve()
    try:
        path = (base / name).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
        raise FormatError(f"{what}: {name!r} cannot be resolved ({e})") from None
    if not path.is_relative_to(base):
        raise FormatError(f"{what}: {name!r} leads outside {root} (to {path})")
    try:
        st = path.stat()
    except FileNotFoundError:
        return path
    except OSError as e:
        raise FormatError(f"{what}: {name!r} cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(f"{what}: {name!r} is not a regular file")
    if st.st_size > MAX_INPUT_BYTES:
        raise FormatError(f"{what}: {name!r} is {st.st_size / 1024**2:.0f} MB, more than the {MAX_INPUT_BYTES // 1024**2} MB a file here may be")
    return path


def read_regular_file(path: str | os.PathLike, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Checked on the opened file itself (not its name, which may change in between):
    a FIFO, a device such as ``/dev/zero`` or a huge file raises OSError instead of
    blocking or reading until memory runs out.

    Raises:
        OSError: missing, unreadable, not a regular file, or too big.
    """
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise OSError(f"{path}: {st.st_size} bytes, more than {max_bytes}")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while being read
        raise OSError(f"{path}: more than {max_bytes} bytes")
    return data


def read_input(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of an input file named by the user (:func:`read_regular_file`), or one
    FormatError line: ``PATH: no such WHAT`` / ``PATH: not a readable WHAT (why)``."""
    try:
        return read_regular_file(path)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such {what}") from None
    except OSError as e:
        raise FormatError(f"{path}: not a readable {what} ({e.strerror or e})") from None


def dumps_json(obj: Any) -> str:
    """Deterministic JSON text (stable key order as given, two-space indent, newline)."""
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: dict, *, fmt: str, version: int) -> None:
    """Atomically write ``obj`` as JSON with ``format``/``format_version``/``gthd_version``
    header fields placed first."""
    header = {"format": fmt, "format_version": version, "gthd_version": __version__}
    atomic_write_bytes(path, dumps_json({**header, **obj}).encode())


def read_json(path: str | os.PathLike, *, fmt: str | tuple[str, ...], versions: tuple[int, ...]) -> dict:
    """Read a JSON file written by :func:`write_json`, checking its format (one name, or
    a tuple of the names accepted) and version."""
    path = Path(path)
    fmts = (fmt,) if isinstance(fmt, str) else tuple(fmt)
    try:
        # a FIFO or a device named as a gthd file would block or never end: regular files only
        obj = json.loads(read_regular_file(path).decode("utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: JSONDecodeError, a 5000-digit number
        raise FormatError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(obj, dict) or obj.get("format") not in fmts:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise FormatError(f"{path}: expected a {' or '.join(repr(f) for f in fmts)} file, found format {found!r}")
    if obj.get("format_version") not in versions:
        raise FormatError(
            f"{path}: {obj['format']} version {obj.get('format_version')!r} is not one this gthd "
            f"({__version__}) reads (it reads {', '.join(map(str, versions))}); upgrade gthd"
        )
    return obj


class JsonlAppender:
    """An append-only JSON-lines log, flushed at most every ``flush_every_s`` seconds.

    Each record is one line. ``flush()`` pushes buffered lines to the OS (survives a
    killed process); ``close()`` also fsyncs (survives a power cut). Safe to use from
    several threads (a writer thread appends while the main thread flushes).
    """

    def __init__(self, path: str | os.PathLike, flush_every_s: float = 0.25):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._f: IO[str] = open(self.path, "a", encoding="utf-8")
        self._flush_every_ns = int(flush_every_s * 1e9)
        self._last_flush = _now_ns()
        self.count = 0

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            self._f.write(line)
            self.count += 1
            now = _now_ns()
            if now - self._last_flush >= self._flush_every_ns:
                self._f.flush()
                self._last_flush = now

    def flush(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.flush()
                self._last_flush = _now_ns()

    def close(self) -> None:
        with self._lock:
            if not self._f.closed:
                try:
                    self._f.flush()
                    os.fsync(self._f.fileno())
                finally:
                    self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _now_ns() -> int:
    return time.monotonic_ns()


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Read a JSON-lines log written by :class:`JsonlAppender`.

    Returns:
        records: every complete, parseable line, in order.
        torn: how many lines were dropped: at most a torn last line is expected; a broken
            line in the middle is also skipped and counted (the caller decides if it cares).
    """
    records, torn = [], 0
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            torn += 1
            continue
        if i == len(lines) - 1 and not data.endswith(b"\n"):
            # A last line without its newline may be cut mid-number yet still parse
            # ("1.2" of "1.25"): only a newline proves the line was finished.
            torn += 1
            continue
        records.append(rec)
    return records, torn


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    yield from read_jsonl(path)[0]
