"""The security boundary: student notebooks and student model files run only here, in a child.

Everything that touches student code goes through :func:`run_job`. The child process

* sees a minimal filesystem: the system and Python installation read-only, one scratch folder
  (``/submission``, read-write), an optional read-only data folder (``/data``) and a private
  ``/tmp``. Nothing else: not the course repository, not the grader's data files, not other
  students' submissions, not the output folder;
* has no network (its own empty network namespace) and runs as an unprivileged user;
* gets wall-time, memory (resident set of the whole process tree), file-size and core limits.

The trusted parent never unpickles anything it gets back: it reads ``.npy`` files with
``allow_pickle=False`` and JSON.

One module a concern: ``result`` (how a job ended, the student's message), ``backends`` (bubblewrap,
unshare, none), ``limits`` (the child's paths, environment, rlimits and setup), ``cgroups`` (kernel
memory and process limits), ``gpus`` (GPU devices for re-execution), ``scratch`` (the size-limited
working folder), ``enforcement`` (what the kernel enforces here, for ``doctor`` and strict mode, and
the GPU check), ``run`` (:func:`run_job`) and ``child`` (the jobs
that run inside: the only file of the grader copied into the sandbox).
"""

from autograder.sandbox.backends import (
    BACKENDS,
    SANDBOX_ENV,
    available_backends,
    default_backend,
    unreachable_for_nobody,
)
from autograder.sandbox.enforcement import (
    Enforcement,
    StrictRefused,
    enforcement,
    gpu_check,
    preflight,
    strict_problems,
)
from autograder.sandbox.gpus import gpu_devices
from autograder.sandbox.limits import DATA, NOBODY, WORK, die_with_parent
from autograder.sandbox.result import NO_SPACE, SandboxResult, space_limits
from autograder.sandbox.run import copy_engine, install_job, python_argv, run_job
from autograder.sandbox.scratch import SCRATCH_PREFIX, scratch

__all__ = [
    "BACKENDS", "DATA", "NOBODY", "NO_SPACE", "SANDBOX_ENV", "SCRATCH_PREFIX", "WORK", "Enforcement",
    "SandboxResult", "available_backends", "copy_engine", "default_backend", "die_with_parent", "enforcement",
    "gpu_check", "gpu_devices", "install_job", "python_argv", "run_job", "scratch", "space_limits", "strict_problems",
    "StrictRefused", "preflight",
    "unreachable_for_nobody",
]
