"""Which files of a student's folder the grader takes: one rule for the copy it grades, the resume
fingerprint (a result is reused only while what the copy would take is unchanged) and the bytes a
cluster worker gets.

Taken: regular files, in sorted path order, until their sizes together pass the course's submission
size limit. Left out: Jupyter's checkpoint folders and ``__pycache__`` (never the student's answer),
symbolic links (never followed: a note says so), anything that is not a regular file, and every file
from the one that passes the size limit on (a note says which).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED_PREFIXES = (".ipynb_checkpoints", "__pycache__")


def skipped(rel: Path) -> bool:
    """Whether a path inside a submission is tooling's, not the student's (checkpoints, bytecode)."""
    return any(part.startswith(SKIPPED_PREFIXES) for part in rel.parts)


@dataclass
class Taken:
    """What the grader takes of one submission folder."""

    files: list[tuple[str, Path]] = field(default_factory=list)  # (relative path, where it is)
    folders: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative path, its target), never followed
    cut: str | None = None  # the first file left out for the size limit
    max_mb: int = 0

    @property
    def notes(self) -> list[str]:
        """What the student reads about files the grader left out."""
        notes = [f"{rel} is a symbolic link and was ignored" for rel, _ in self.links]
        if self.cut is not None:
            notes.append(f"submission is larger than {self.max_mb} MB; {self.cut} and later files were ignored")
        return notes


def take(src: Path, max_mb: int) -> Taken:
    """The files of ``src`` the grader grades (see the module's rule)."""
    taken, total = Taken(max_mb=max_mb), 0
    if not src.is_dir():
        return taken
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if skipped(rel):
            continue
        if path.is_symlink():
            taken.links.append((str(rel), os.readlink(path)))
        elif path.is_dir():
            taken.folders.append(str(rel))
        elif path.is_file():
            total += path.stat().st_size
            if total > max_mb * 2**20:
                taken.cut = str(rel)
                break
            taken.files.append((str(rel), path))
    return taken


def copy_submission(src: Path, dst: Path, notes: list[str], max_mb: int) -> None:
    """Copy what the grader takes of ``src`` into ``dst``; what it leaves out is a note."""
    taken = take(src, max_mb)
    for rel in taken.folders:
        (dst / rel).mkdir(parents=True, exist_ok=True)
    for rel, path in taken.files:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst / rel)  # with its modification time: the newer of two model files is graded
    notes.extend(taken.notes)


def digest(src: Path, max_mb: int) -> str:
    """A digest of exactly what the grader takes of ``src`` (and of what it notes it left out)."""
    if not src.is_dir():
        return "missing"
    taken = take(src, max_mb)
    h = hashlib.sha256()
    for rel in taken.folders:
        h.update(b"D" + rel.encode() + b"\0")
    for rel, target in taken.links:
        h.update(b"L" + rel.encode() + b"\0" + target.encode(errors="replace") + b"\0")
    for rel, path in taken.files:
        h.update(b"F" + rel.encode() + b"\0")
        if rel.endswith((".keras", ".h5")):  # of a .keras and its .h5 twin, the newer is graded
            h.update(b"T%d\0" % int(path.stat().st_mtime))
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    if taken.cut is not None:
        h.update(b"C" + taken.cut.encode() + b"\0")
    return h.hexdigest()[:16]


def pack(src: Path, max_mb: int) -> bytes:
    """What the grader takes of ``src`` as one uncompressed tar archive, links as links (never followed)."""
    taken = take(src, max_mb)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in taken.folders:
            info = tarfile.TarInfo(rel)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for rel, target in taken.links:
            info = tarfile.TarInfo(rel)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for rel, path in taken.files:
            data = path.read_bytes()
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, int(path.stat().st_mtime)
            tar.addfile(info, io.BytesIO(data))
        if taken.cut is not None:  # the cut travels as the note it makes, not as the file
            note = taken.notes[-1].encode()
            info = tarfile.TarInfo(CUT_NOTE)
            info.size = len(note)
            tar.addfile(info, io.BytesIO(note))
    return buffer.getvalue()


CUT_NOTE = ".autograder-size-note"


def unpack(data: bytes, dst: Path, max_mb: int) -> list[str]:
    """Recreate a packed submission in ``dst`` (a new, empty folder); returns the notes :func:`pack`
    carried. Members that would land outside ``dst`` are refused, as are sizes beyond the limit."""
    if len(data) > (max_mb + 16) * 2**20:
        raise ValueError(f"a packed submission of {len(data) / 2**20:.0f} MB is larger than the {max_mb} MB limit")
    notes = []
    root = dst.resolve()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar.getmembers():
            target = (root / info.name).resolve() if not info.issym() else (root / info.name).parent.resolve() / Path(info.name).name
            if root not in target.parents:
                raise ValueError(f"a packed submission names {info.name!r}, outside its folder")
            if info.name == CUT_NOTE:
                notes.append(tar.extractfile(info).read().decode())
            elif info.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif info.issym():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(info.linkname, target)  # recreated as a link: the copy notes it and never follows it
            elif info.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(info) as f, open(target, "wb") as out:
                    shutil.copyfileobj(f, out)
                os.utime(target, (info.mtime, info.mtime))
    return notes
