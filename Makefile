# One entry point for everyone: `make demo` (see the kit work) and `make test` (the test suite).
# Both create or reuse .venv and install the pinned dependencies from pyproject.toml first.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
AUTOGRADER := $(VENV)/bin/autograder
STAMP  := $(VENV)/.installed

# Real data beside the checkout (development machines and CI). Elsewhere the loaders fall back
# to the Keras cache and then to a download.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/mnist.npz),)
export COURSE_DATA_DIR ?= $(SHARED_DATA)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

# The Makefile of a clean clone installs everything: the venv, bubblewrap, chromium, Slurm and munge (when root).
.PHONY: install system-tools demo test test-fast lint release check-release calibrate clean

install: $(STAMP) system-tools

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

# System tools, installed when we can (root with apt-get), each only if missing:
#   bwrap    (bubblewrap) gives the grading sandbox its own filesystem view; without it the sandbox
#            falls back to Linux namespaces via unshare (see README);
#   chromium renders the feedback pages in the browser test (Playwright drives it; its own browser
#            download does not work offline); without it that test skips, saying so (fails in CI);
#   slurmctld, munged (slurm-wlm, munge) run a real one-node Slurm in a network namespace for the cluster
#            tests (tests/slurm.py); without them those tests skip. The packages' postinst would start
#            munge and slurmd: a policy-rc.d that refuses (exit 101) is in place during the install only.
system-tools:
	@PATH="$$PATH:/usr/sbin:/sbin"; missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v slurmctld && command -v munged; } >/dev/null 2>&1 || missing="$$missing slurm-wlm munge"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (sandbox filesystem view, feedback-page browser test, Slurm tests)"; \
	    policy=""; [ -e /usr/sbin/policy-rc.d ] || { policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' >$$policy; chmod +x $$policy; }; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null 2>&1 \
	      || echo "note: could not install$$missing (the sandbox uses unshare without bwrap; the browser test skips without chromium, the Slurm tests without slurm-wlm)"; \
	    [ -z "$$policy" ] || rm -f $$policy; \
	  else echo "note: not found:$$missing (the sandbox uses unshare without bwrap; the browser test skips without chromium, the Slurm tests without slurm-wlm)"; fi; \
	fi

release: install
	$(AUTOGRADER) release

demo: install
	$(PY) -m autograder demo

test: install lint
	$(PY) -m pytest

# The project's own checks: ruff (configured in pyproject.toml) on the kit, its tests and benchmarks.
lint: install
	$(VENV)/bin/ruff check .

# Everything but the slow end-to-end tests (a few minutes less).
test-fast: install
	$(PY) -m pytest -m "not slow"

# The quick profile here; the full profile is meant for a GPU: bench/calibrate.py --profile full
calibrate: install
	$(PY) bench/calibrate.py --profile quick

clean:
	rm -rf $(VENV) demo-output .pytest_cache
