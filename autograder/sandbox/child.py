"""The jobs that run *inside* the sandbox: ``predict`` (a student's model on the inputs) and ``execute``
(a student's notebook, top to bottom).

The only file of the grader that enters the sandbox: :func:`autograder.sandbox.run.install_job` copies
it (with the NumPy engine package beside it, as ``_autograder_keras_numpy``, and the loader of other model
files, :mod:`autograder.model_files.load`, as ``_autograder_model_load``) into the scratch folder,
and the child runs it with the venv's Python in isolated mode, so it imports nothing of the course
repository. Standard library at the top; NumPy, Keras, skops, XGBoost, LightGBM and nbclient are imported
by the job that needs them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

STARTED = time.time()  # the interpreter is up: what came before was the sandbox's and Python's start


def _job_predict(kind: str, model_path: str, inputs_path: str, out_path: str, shape: str = "") -> None:
    """Load a student model safely and write its outputs on the inputs (reshaped to ``shape``) as .npy.

    ``keras``: the NumPy engine (``keras_numpy``: reads the config and weights, runs no code from
    the file) when it supports every layer of the model, else Keras itself in safe mode (no Lambda
    or other code-carrying layers). ``skops``: only scikit-learn types are trusted; anything else in
    the file is refused before loading. ``xgboost`` (JSON or UBJSON) and ``lightgbm`` (text): the
    library's own loader, which reads trees and no code; the outputs are its probabilities of class 1
    for a binary model, one per input, on at most ``OMP_NUM_THREADS`` threads where set. Next to the
    outputs, ``<out>.json`` says which engine ran and when each step ended (``clock``: seconds since the
    epoch, for the grader's account of the job's time).
    """
    clock = {"started": STARTED}
    import numpy as np

    inputs = np.load(inputs_path, allow_pickle=False, mmap_mode="r")
    if shape:
        inputs = inputs.reshape((len(inputs),) + tuple(int(d) for d in shape.split(",")))
    engine = kind
    if kind == "keras":
        try:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import _autograder_keras_numpy as keras_numpy

            clock["imported"] = time.time()
            model = keras_numpy.load(model_path)
            engine = "numpy"
        except Exception as exc:  # Unsupported, or anything the engine cannot read: Keras decides
            model = None
            engine = f"keras ({type(exc).__name__}: {str(exc)[:160]})"
        if model is not None:
            clock["read"] = time.time()
            outputs = model.predict(np.asarray(inputs, dtype=np.float32))
        else:
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            import keras

            clock["imported"] = time.time()
            try:
                model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
            except Exception as exc:  # say what the file is and what to do, not only Keras' words
                with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
                    json.dump({"engine": engine, "problem": _unreadable(model_path, engine, exc, keras.__version__)}, f)
                raise SystemExit(3) from None
            clock["read"] = time.time()
            outputs = model.predict(np.asarray(inputs), batch_size=500, verbose=0)
    else:  # skops, xgboost, lightgbm: the module the student's check before hand-in loads them with too
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _autograder_model_load as load

        load.import_library(kind)
        clock["imported"] = time.time()
        model = load.load_model(kind, model_path)
        clock["read"] = time.time()
        outputs = load.scores(kind, model, inputs, _threads())
    outputs = np.asarray(outputs)
    clock["predicted"] = time.time()
    if outputs.dtype == object:
        raise TypeError("the model's output is not a numeric array")
    np.save(out_path, outputs.astype(np.float32), allow_pickle=False)
    report = {"engine": engine, "clock": clock}
    parameters, shapes = _parameters(model)
    if parameters is not None:  # kept, sampled, for the class's similarity report (autograder.similarity)
        np.save(os.path.join(os.path.dirname(out_path), "parameters.npy"), parameters, allow_pickle=False)
        report["parameters"] = shapes
    clock["written"] = time.time()
    with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
        json.dump(report, f)


def _parameters(model):
    """The model's parameters in layer order as one float32 vector, with their shapes ("784x128,128,..."); None
    for a model without plain parameters (trees). The grader's NumPy engine, Keras, or a scikit-learn linear
    model's coefficients (the last step of a pipeline, a search's best estimator)."""
    import numpy as np

    if hasattr(model, "parameters") and callable(model.parameters):
        return model.parameters()
    if hasattr(model, "get_weights"):
        arrays = model.get_weights()
    else:
        estimator = getattr(model, "best_estimator_", model)
        estimator = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        arrays = [getattr(estimator, name) for name in ("coef_", "intercept_") if hasattr(estimator, name)]
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    if not arrays:
        return None, ""
    return (np.concatenate([a.reshape(-1) for a in arrays]),
            ",".join("x".join(str(d) for d in a.shape) or "1" for a in arrays))


def _threads() -> int:
    """The threads a job may use, as the sandbox sets them (``OMP_NUM_THREADS``); 0: the library's default."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def _unreadable(model_path: str, engine: str, exc: Exception, pinned: str) -> str:
    """The student's message when neither the NumPy engine nor Keras can load a model file: what saved
    it, the engine's reason, Keras' most specific words, and what to do."""
    import re

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _autograder_keras_numpy.architecture import saved_by

    name = os.path.basename(model_path)
    producer = saved_by(model_path)
    reason = engine.split("(", 1)[-1][:-1] if engine.endswith(")") else engine  # "keras (<the engine's reason>)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    causes = [ln.split("Exception encountered:", 1)[1].strip() for ln in lines if "Exception encountered:" in ln]
    words = (causes[-1] if causes else lines[-1] if lines else type(exc).__name__)[:240]
    version = re.match(r"Keras (\d+)\.(\d+)", producer)
    newer = version is not None and tuple(map(int, version.groups())) > tuple(map(int, pinned.split(".")[:2]))
    if newer:
        return (f"{name} was saved by {producer}, newer than the grader's Keras {pinned}, and uses something it "
                f"does not know: its engine says {reason[:300]}, and Keras {pinned} says: {words}. Save the model with "
                f"Keras 3.0-{pinned} or tf.keras 2.12+ (model.save(\"{name}\")), or tell your instructor which Keras "
                "you used")
    return (f"{name} (saved by {producer}) cannot be loaded: the grader's engine says {reason[:300]}, and Keras "
            f"{pinned} says: {words}. Build the model from built-in Keras layers and save it with "
            f"model.save(\"{name}\")")


def _job_execute(notebook_path: str, executed_path: str, report_path: str) -> None:
    """Run a notebook top to bottom with a local kernel; write the executed copy and a JSON report."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    for key in ("HOME", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        os.makedirs(os.environ[key], exist_ok=True)
    nb = nbformat.read(notebook_path, as_version=4)
    # IPC sockets instead of TCP: the kernel needs no network at all.
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(tempfile.gettempdir(), "kernel"))
    # Like `nbgrader autograde`, keep going after a failing cell: a failed sanity check should not
    # cost the points of a model the notebook still saves. The first error is what gets reported.
    client = NotebookClient(
        nb, km=km, timeout=None, allow_errors=True, record_timing=True,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(notebook_path))}},
    )
    report = {"status": "ok", "errors": []}
    try:
        client.execute()
    except DeadKernelError as exc:
        report["errors"].append({"ename": "DeadKernelError", "evalue": str(exc)[:500]})
    finally:
        for index, cell in enumerate(nb.cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    report["errors"].append({
                        "ename": output.get("ename"),
                        "evalue": str(output.get("evalue"))[:500],
                        "cell": index,
                        "grade_id": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"),
                        "tags": cell.get("metadata", {}).get("tags", []),
                    })
        if report["errors"]:
            report["status"] = "error"
        nbformat.write(nb, executed_path)
        with open(report_path, "w") as f:
            json.dump(report, f)


def _child_main(argv: list[str]) -> int:
    jobs = {"predict": _job_predict, "execute": _job_execute}
    if not argv or argv[0] not in jobs:
        print(f"usage: {os.path.basename(__file__)} {{{','.join(jobs)}}} ARGS...", file=sys.stderr)
        return 2
    jobs[argv[0]](*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
