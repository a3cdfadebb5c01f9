#!/usr/bin/env bash
# Gradescope runs this once, as root, from /autograder/source when it builds the autograder image
# (built by `autograder gradescope`; see autograder/gradescope/bundle.py). It installs
#
#   - Python >= 3.11: the image's python3 if it is new enough (Ubuntu 24.04 base image: 3.12),
#     else python3.11 from the deadsnakes PPA (Gradescope's default Ubuntu 22.04 image has 3.10);
#   - bubblewrap, best effort (the sandbox's first choice; where Docker forbids namespaces the
#     grader runs student code as uid 65534 instead, see run.py);
#   - a virtualenv at /opt/ml4phys-venv with the pinned kit, editable (so that
#     course_config.COURSE_DIR is /autograder/source/kit), readable by every user;
#
# and makes the hidden test data root-only (a 0700 folder of 0600 files). Safe to run again.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${ML4PHYS_VENV:-/opt/ml4phys-venv}
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

new_enough() {  # is $1 a Python >= 3.11?
  command -v "$1" >/dev/null 2>&1 &&
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}
can_venv() {  # ... that can create a virtualenv with pip?
  new_enough "$1" && "$1" -c 'import venv, ensurepip' >/dev/null 2>&1
}

if command -v apt-get >/dev/null 2>&1; then
  apt-get update
fi

if new_enough python3; then
  PYTHON=$(command -v python3)
  if ! can_venv "$PYTHON"; then
    version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    apt-get install -y "python${version}-venv" || apt-get install -y python3-venv
  fi
elif can_venv python3.11; then
  PYTHON=$(command -v python3.11)
else
  apt-get install -y software-properties-common
  add-apt-repository -y ppa:deadsnakes/ppa
  apt-get update
  apt-get install -y python3.11 python3.11-venv
  PYTHON=$(command -v python3.11)
fi
if ! can_venv "$PYTHON"; then
  echo "setup.sh: no Python >= 3.11 with venv after installing ($PYTHON)" >&2
  exit 1
fi
echo "setup.sh: using $PYTHON ($("$PYTHON" --version 2>&1))"

apt-get install -y bubblewrap ||
  echo "setup.sh: could not install bubblewrap; grading runs student code as uid 65534 where no namespace works" >&2

# The virtualenv, rebuilt if it belongs to another Python.
if [ -e "$VENV" ] && ! new_enough "$VENV/bin/python"; then
  rm -rf "$VENV"
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install -e "$SRC/kit"
# Student code runs as an unprivileged user where no namespace sandbox works: it must be able to
# run this Python and read its packages (nothing in the venv is secret).
chmod -R a+rX "$VENV"
chmod a+rx "$(dirname "$VENV")"

# Load the hidden test data once, as the grader will (this validates it; SUSY's UCI rows are parsed
# into a cache next to it, so each submission reads them in a moment).
mkdir -p "$SRC/data"
(cd "$SRC/kit" && COURSE_DATA_DIR="$SRC/data" KERAS_HOME="$SRC/data/.keras" "$VENV/bin/python" -c '
import json, course_config
from autograder.datasets.tasks import load_task
b = json.load(open("../bundle.json"))
task = load_task(course_config.assignment(b["assignment"]), course_config.profile(b["profile"]))
print("setup.sh: test data for", b["assignment"], "profile", b["profile"], ":", len(task.y_test), "labelled examples")
task.close()')

# The hidden test data (and the kit next to it): root only.
chown -R root:root "$SRC/data"
find "$SRC/data" -type d -exec chmod 700 {} +
find "$SRC/data" -type f -exec chmod 600 {} +
chmod 700 "$SRC"
chmod 755 "$SRC/run_autograder"

# A look at what this image offers (logged by Gradescope; never fails the build).
(cd "$SRC/kit" && COURSE_DATA_DIR="$SRC/data" "$VENV/bin/python" -m autograder doctor) || true
(cd "$SRC/kit" && "$VENV/bin/python" -c 'import course_config, autograder.gradescope.run; print("setup.sh: kit at", course_config.COURSE_DIR)')
