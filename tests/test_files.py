"""Which files of a submission the grader takes: the copy, the resume digest and the packed bytes agree."""

from __future__ import annotations

import os

import pytest

from autograder.grading import files


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "alice"
    (src / "sub").mkdir(parents=True)
    (src / "a.ipynb").write_text("{}")
    (src / "sub" / "b.txt").write_bytes(b"x" * 1000)
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("old")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "m.pyc").write_bytes(b"\0")
    os.symlink("/etc/passwd", src / "passwd")
    return src


def test_copy_takes_regular_files_and_notes_links(folder, tmp_path):
    notes = []
    files.copy_submission(folder, tmp_path / "copy", notes, max_mb=1)
    taken = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert taken == ["a.ipynb", "sub", "sub/b.txt"]
    assert notes == ["passwd is a symbolic link and was ignored"]


def test_digest_changes_with_what_is_taken_only(folder):
    before = files.digest(folder, max_mb=1)
    (folder / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("newer checkpoint")
    assert files.digest(folder, max_mb=1) == before  # checkpoints are not graded, so not fingerprinted
    (folder / "sub" / "b.txt").write_bytes(b"y" * 1000)
    assert files.digest(folder, max_mb=1) != before


def test_size_cut_is_shared_by_copy_and_digest(folder, tmp_path):
    (folder / "z_big.bin").write_bytes(b"\1" * (2 * 2**20))
    notes = []
    files.copy_submission(folder, tmp_path / "copy", notes, max_mb=1)
    assert not (tmp_path / "copy" / "z_big.bin").exists()
    assert notes[-1] == "submission is larger than 1 MB; z_big.bin and later files were ignored"
    cut = files.digest(folder, max_mb=1)
    (folder / "z_big.bin").write_bytes(b"\2" * (2 * 2**20))  # content beyond the cut is never graded
    assert files.digest(folder, max_mb=1) == cut
    assert files.digest(folder, max_mb=10) != cut


def test_pack_and_unpack_give_the_same_copy_and_notes(folder, tmp_path):
    (folder / "z_big.bin").write_bytes(b"\1" * (2 * 2**20))
    data = files.pack(folder, max_mb=1)
    assert len(data) < 2**20  # the cut file does not travel
    dst = tmp_path / "unpacked"
    dst.mkdir()
    carried = files.unpack(data, dst, max_mb=1)
    direct, again = [], []
    files.copy_submission(folder, tmp_path / "direct", direct, max_mb=1)
    files.copy_submission(dst, tmp_path / "again", again, max_mb=1)
    assert again + carried == direct
    for path in (tmp_path / "direct").rglob("*"):
        twin = tmp_path / "again" / path.relative_to(tmp_path / "direct")
        assert twin.exists() and (path.is_dir() or twin.read_bytes() == path.read_bytes())


def test_unpack_refuses_members_outside_its_folder(tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    (tmp_path / "dst").mkdir()
    with pytest.raises(ValueError, match="outside its folder"):
        files.unpack(buffer.getvalue(), tmp_path / "dst", max_mb=1)
    assert not (tmp_path / "escape.txt").exists()


def test_model_files_keep_their_times_so_the_newer_twin_is_graded(tmp_path):
    """Of a .keras and its .h5 twin the newer is graded: the copy, the packed bytes a cluster worker gets and the
    resume fingerprint all carry which one is newer."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "mnist_dense.keras").write_bytes(b"k")
    (src / "mnist_dense.h5").write_bytes(b"h")
    os.utime(src / "mnist_dense.keras", (1_700_000_000, 1_700_000_000))
    os.utime(src / "mnist_dense.h5", (1_700_003_600, 1_700_003_600))
    copied, unpacked = tmp_path / "copy", tmp_path / "unpacked"
    copied.mkdir()
    unpacked.mkdir()
    files.copy_submission(src, copied, [], 10)
    files.unpack(files.pack(src, 10), unpacked, 10)
    for folder in (copied, unpacked):
        assert int((folder / "mnist_dense.h5").stat().st_mtime) == 1_700_003_600
        assert int((folder / "mnist_dense.keras").stat().st_mtime) == 1_700_000_000
    before = files.digest(src, 10)
    os.utime(src / "mnist_dense.keras", (1_700_007_200, 1_700_007_200))  # now the .keras is the newer
    assert files.digest(src, 10) != before
