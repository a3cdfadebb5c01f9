"""Build a Gradescope autograder: ``autograder gradescope ASSIGNMENT --out autograder.zip``.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` there once, as root, when
it builds the autograder image, and then ``/autograder/run_autograder`` once per submission (the
student's files in ``/autograder/submission``, the result expected in
``/autograder/results/results.json``). The zip holds::

    setup.sh          image build: Python >= 3.11, bubblewrap, /opt/ml4phys-venv with the kit (editable)
    run_autograder    per submission: python -m autograder.gradescope.run --root /autograder
    bundle.json       assignment, profile, execute, the kit's version, the data files (size, SHA-256)
    kit/              the pinned kit: pyproject.toml, README.md, course_config.py, autograder/,
                      docs/reference_roc.json, release/<assignment>/ (the official helpers)
    data/             the hidden test data (root-only: 0700 folder, 0600 files)

Only what this machine's kit would grade with goes in: MNIST is the first file of
``course_data.mnist_candidates()`` that validates and has the test labels; SUSY's UCI file (profiles
whose ``course_config.SUSY_DATA`` source is "uci") the first of ``course_data.susy_candidates()``.
The zip is reproducible: the same kit and data give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import zipfile
from pathlib import Path

import course_config

HERE = Path(__file__).resolve().parent
TEMPLATES = ("setup.sh", "run_autograder")  # shipped next to this module, copied to the zip's root
BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = 1
KIT = "kit"
DATA = "data"
KIT_TOP_FILES = ("pyproject.toml", "README.md", "course_config.py")
KIT_OPTIONAL = ("docs/reference_roc.json",)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # every entry's timestamp: the same inputs give the same zip
_STORED = (".npz", ".gz", ".zip", ".keras")  # already compressed


class BundleError(RuntimeError):
    """The bundle cannot be built; the message says what is missing and how to provide it."""


# ------------------------------------------------------------------------------------------------
# What goes in
# ------------------------------------------------------------------------------------------------
def _regular_files(folder: Path) -> list[Path]:
    """Regular files under ``folder``: no caches, no hidden files, no links."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink() or not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        files.append(path)
    return files


def kit_files(assignment: course_config.Assignment) -> list[tuple[str, Path]]:
    """(name in the zip, file here) for the pinned kit: what ``pip install -e kit`` and grading need."""
    course = course_config.COURSE_DIR
    entries = []
    for name in KIT_TOP_FILES:
        if not (course / name).is_file():
            raise BundleError(f"{course / name} is missing; the kit cannot be installed without it")
        entries.append((f"{KIT}/{name}", course / name))
    for name in KIT_OPTIONAL:
        if (course / name).is_file():
            entries.append((f"{KIT}/{name}", course / name))
    for path in _regular_files(course / "autograder"):
        entries.append((f"{KIT}/{path.relative_to(course).as_posix()}", path))
    release = course / "release" / assignment.name
    if not (release / assignment.notebook).is_file():
        raise BundleError(f"{release / assignment.notebook} is missing: run `autograder release {assignment.name}` first")
    for path in _regular_files(release):
        entries.append((f"{KIT}/{path.relative_to(course).as_posix()}", path))
    return entries


def data_files(assignment: course_config.Assignment, profile: course_config.Profile) -> list[Path]:
    """The hidden test data ``assignment`` is graded on under ``profile``, as files the image needs (the dataset
    says which: none for data made where the kit runs)."""
    from autograder.course_data import DataError
    from autograder.datasets.tasks import task_class

    try:
        return task_class(assignment).hidden_data_files(profile)
    except DataError as exc:
        raise BundleError(f"the Gradescope bundle of {assignment.name}: {exc}") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# The zip
# ------------------------------------------------------------------------------------------------
def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.create_system = 3  # Unix: `unzip` restores the permission bits below
    if name.endswith("/"):
        info.external_attr = ((0o040000 | mode) << 16) | 0x10
    else:
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_STORED if name.endswith(_STORED) else zipfile.ZIP_DEFLATED
    return info


def _add_file(zf: zipfile.ZipFile, name: str, path: Path, mode: int) -> None:
    info = _info(name, mode)
    with open(path, "rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def build(assignment_name: str, out: Path, *, profile_name: str = course_config.DEFAULT_PROFILE,
          execute: bool = False) -> Path:
    """Write the Gradescope autograder zip for ``assignment_name`` to ``out``; return its path."""
    from autograder.worker import kit_version

    assignment = course_config.assignment(assignment_name)
    profile = course_config.profile(profile_name)
    if not assignment.thresholds.get(profile.name):
        raise BundleError(f"{assignment.name} has no thresholds for profile {profile.name!r}")
    for name in TEMPLATES:
        if not (HERE / name).is_file():
            raise BundleError(f"{HERE / name} is missing from the kit")
    kit = kit_files(assignment)
    data = data_files(assignment, profile)
    manifest = {
        "format": BUNDLE_FORMAT,
        "assignment": assignment.name,
        "profile": profile.name,
        "execute": bool(execute),
        "kit_version": kit_version(),
        "data": [{"file": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in data],
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in TEMPLATES:
                _add_file(zf, name, HERE / name, 0o755)
            info = _info(BUNDLE_FILE, 0o644)
            zf.writestr(info, json.dumps(manifest, indent=2) + "\n")
            for name, path in kit:
                _add_file(zf, name, path, 0o755 if path.stat().st_mode & 0o111 else 0o644)
            zf.writestr(_info(f"{DATA}/", 0o700), b"")
            for path in data:
                _add_file(zf, f"{DATA}/{path.name}", path, 0o600)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("assignment", choices=sorted(course_config.ASSIGNMENTS))
    p.add_argument("--out", default="autograder.zip", help="the zip to write (default: %(default)s)")
    p.add_argument("--profile", default=course_config.DEFAULT_PROFILE, choices=sorted(course_config.PROFILES),
                   help="thresholds and re-execution parameters (default: %(default)s)")
    p.add_argument("--execute", action="store_true",
                   help="re-run each uploaded notebook (sandboxed) and grade only the model that run saves")
    p.set_defaults(func=cmd_gradescope)
    return p


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``gradescope`` subcommand to the ``autograder`` command's subparsers."""
    return _configure(sub.add_parser(
        "gradescope", help="build a Gradescope autograder zip (setup.sh, run_autograder, the kit, the test data)"))


def cmd_gradescope(args) -> int:
    path = build(args.assignment, Path(args.out), profile_name=args.profile, execute=args.execute)
    with zipfile.ZipFile(path) as zf:
        data = [n for n in zf.namelist() if n.startswith(f"{DATA}/") and not n.endswith("/")]
    mode = "re-executes each notebook" if args.execute else "grades the uploaded model files"
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB): {args.assignment}, profile {args.profile}, {mode}; "
          f"test data: {', '.join(data) or 'none (simulated events)'}")
    print("Gradescope: create a Programming Assignment, upload this zip as the autograder (base image: Ubuntu 22.04 "
          "or 24.04), and have students upload the notebook and the model files its save cell writes.")
    return 0
