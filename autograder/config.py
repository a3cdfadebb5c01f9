"""The types of a course configuration: what ``course_config.py`` is written in.

The kit owns these types; a course's facts (its assignments, points, thresholds, profiles, limits)
are values of them in ``course_config.py``. Plain Python data, importable without TensorFlow.
A dataset is one of the kit's own (:data:`BUILT_IN_DATASETS`: MNIST and SUSY) or a
:class:`Dataset` described here; a metric is one of :data:`METRICS` or a :class:`Metric`. Anything
else is an error when the configuration loads, never a default.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

# The kit's own datasets: name -> "module:class" of the grader's side (autograder/datasets/<name>.py).
BUILT_IN_DATASETS = {
    "mnist": "autograder.datasets.mnist:MnistTask",
    "susy": "autograder.datasets.susy:SusyTask",
}


@dataclass(frozen=True)
class Tier:
    """A score at or above ``minimum`` earns ``fraction`` of the check's points (at or below it, for a
    metric where lower is better: then ``minimum`` is the largest error that earns the fraction)."""

    minimum: float
    fraction: float


@dataclass(frozen=True)
class Threshold:
    """Tiered partial credit for a metric, best tier first, with where the numbers come from.

    ``lower_is_better`` for an error (a mean absolute error): a value at or below a tier's bound earns it.
    It must agree with the metric of the assignment's dataset (checked when the assignment is made).
    """

    tiers: tuple[Tier, ...]
    source: str
    lower_is_better: bool = False

    def reaches(self, value: float, bound: float) -> bool:
        """Whether ``value`` is at or beyond ``bound`` on the good side."""
        return value <= bound if self.lower_is_better else value >= bound

    def best_first(self) -> tuple[Tier, ...]:
        """The tiers, the one that earns most first."""
        return tuple(sorted(self.tiers, key=lambda t: t.minimum if self.lower_is_better else -t.minimum))

    def fraction(self, value: float) -> float:
        """Fraction of the points earned by ``value`` (0.0 short of every tier)."""
        for tier in self.best_first():
            if self.reaches(value, tier.minimum):
                return tier.fraction
        return 0.0

    @property
    def full_credit(self) -> float:
        """The bound of full credit."""
        return next(t.minimum for t in self.best_first() if t.fraction == 1.0)

    @property
    def comparison(self) -> str:
        """How a value is compared with a bound, as students read it: ">=" or "<="."""
        return "<=" if self.lower_is_better else ">="


@dataclass(frozen=True)
class Ceiling:
    """Above ``value`` a metric is implausible for the model asked for: the result is flagged for review.

    Saved models are graded as handed in, and MNIST's test set is public: a model trained on it can
    score far above what its kind of network reaches honestly. The score stands (nothing is taken
    away automatically); the check is marked for a human look, with the reason.
    """

    value: float
    source: str
    profiles: tuple[str, ...] = ("full", "quick")


@dataclass(frozen=True)
class Check:
    """One graded check: an id used by the check suite, what the student reads, and its points."""

    id: str
    title: str
    points: float
    model: str | None = None  # which of the assignment's models it judges (default: the first)
    # Which hidden test set a metric check is scored on: "test" (the dataset's test set) or, for MNIST,
    # "moved" (the test digits moved by course_data.move_digits with MOVED_DIGITS_SEED).
    test_set: str = "test"


@dataclass(frozen=True)
class ModelSpec:
    """A model file students hand in: ``kind`` is "keras" (.keras) or "skops" (scikit-learn)."""

    name: str
    file: str
    kind: str = "keras"
    variable: str = "model"  # the notebook's variable holding the trained model (for the student's check)
    # Other formats the model may be handed in as, each in its own non-pickle format and under the same
    # stem (autograder.model_files.locate.SUFFIXES): "xgboost" (.json, .ubj), "lightgbm" (.txt).
    also: tuple[str, ...] = ()
    # A non-Keras model: the estimators it may be (as autograder.model_files names them), and what they are.
    families: tuple[str, ...] = ()
    family: str = ""
    # What a metric below full credit tells the student to do.
    advice: str = "train for the notebook's full EPOCHS or improve the model"

    @property
    def formats(self) -> tuple[str, ...]:
        """Every format the model may be handed in as, ``kind`` first."""
        return (self.kind, *self.also)


@dataclass(frozen=True)
class Profile:
    """How a submission is trained when the grader re-executes it (``--execute``)."""

    name: str
    description: str
    execute_time_limit_s: int  # wall time for running the whole submitted notebook
    memory_limit_mb: int  # resident memory of the notebook and everything it starts


@dataclass(frozen=True)
class Assignment:
    """One assignment: its files, the checks and points, and per-profile parameters and thresholds."""

    name: str
    title: str
    notebook: str
    models: tuple[ModelSpec, ...]
    # What the grader feeds the model and checks against: the name of one of the kit's datasets
    # (BUILT_IN_DATASETS), or a Dataset described in the course's configuration.
    dataset: str | Dataset
    checks: tuple[Check, ...]
    # Values injected after the notebook's "parameters" cell when the grader re-executes it.
    parameters: dict[str, dict[str, object]]
    # Metric thresholds per profile: {profile: {check id: Threshold}}.
    thresholds: dict[str, dict[str, Threshold]]
    # Architecture limits read by the checks.
    max_params: int | None = None
    allowed_layers: tuple[str, ...] = ()
    min_conv_layers: int = 0
    required_layers: tuple[str, ...] = ()  # each must appear in the model (e.g. augmentation)
    forbidden_layers: tuple[str, ...] = ()
    # Files (or packages) from the course's shared helpers in autograder/ that the notebook's helper cell
    # carries (written by `autograder release`): the data loaders, the student's pre-hand-in check and the
    # grader's engine.
    helpers: tuple[str, ...] = ()
    # The notebook's validation images (or events) and labels, for the student's pre-hand-in check.
    validation: tuple[str, str] = ("x_val", "y_val")
    # Plausibility ceilings of metric checks: {check id: Ceiling}.
    ceilings: dict[str, Ceiling] = field(default_factory=dict)
    # Audits (`autograder grade --audit`): {profile the notebook is re-executed under: {metric check:
    # how far the re-run's metric may fall short of the saved model's before the result is flagged}}.
    # Measured on the reference solution (docs/calibration.md): the best saved full-profile score minus
    # the worst re-executed one, plus a margin for GPU training and seeds. No entry: no audit there.
    audit_gaps: dict[str, dict[str, float]] = field(default_factory=dict)
    # The description of a dataset given as a Dataset (then ``dataset`` is its name); None for the kit's own.
    # Set from ``dataset``; named only by dataclasses.replace.
    described: Dataset | None = None

    def __post_init__(self):
        if isinstance(self.dataset, Dataset):
            object.__setattr__(self, "described", self.dataset)
            object.__setattr__(self, "dataset", self.dataset.name)
        elif self.described is not None and self.described.name != self.dataset:
            raise ValueError(f"{self.name}: dataset {self.dataset!r} is not the described {self.described.name!r}")
        elif self.described is None and self.dataset not in BUILT_IN_DATASETS:
            raise ValueError(f"{self.name}: unknown dataset {self.dataset!r}: the kit knows {', '.join(sorted(BUILT_IN_DATASETS))}; "
                             "describe another with autograder.config.Dataset (docs/adding_an_assignment.md)")
        if self.described is not None:
            lower = self.described.metric.lower_is_better
            for profile, thresholds in self.thresholds.items():
                for check_id, threshold in thresholds.items():
                    if threshold.lower_is_better != lower:
                        raise ValueError(
                            f"{self.name}: the '{profile}' threshold of {check_id} has lower_is_better="
                            f"{threshold.lower_is_better}, but {self.described.metric.title} is "
                            f"{'lower' if lower else 'higher'}-is-better")

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def families(self) -> dict[str, dict]:
        """The estimator families of the non-Keras models: {model name: {"families": [...], "family": "..."}}."""
        return {m.name: {"families": list(m.families), "family": m.family} for m in self.models if m.families}

    @property
    def test_sets(self) -> tuple[str, ...]:
        """The hidden test sets the checks are scored on, "test" first."""
        return ("test",) + tuple(sorted({c.test_set for c in self.checks} - {"test"}))

    @property
    def model_file(self) -> str:
        """The model file of a one-model assignment."""
        if len(self.models) != 1:
            raise AttributeError(f"{self.name} has {len(self.models)} model files; use .models")
        return self.models[0].file

    def model_of(self, check_id: str) -> ModelSpec:
        """The model a check judges."""
        wanted = self.check(check_id).model
        for spec in self.models:
            if wanted in (None, spec.name):
                return spec
        raise KeyError(f"{self.name}: check {check_id!r} names unknown model {wanted!r}")

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(f"{self.name} has no check {check_id!r}")

    def threshold(self, profile: str, check_id: str) -> Threshold:
        return self.thresholds[profile][check_id]

    def ceiling(self, profile: str, check_id: str) -> Ceiling | None:
        c = self.ceilings.get(check_id)
        return c if c is not None and profile in c.profiles else None


@dataclass(frozen=True)
class Limits:
    """Sandbox limits for every job that runs student code or loads a student's model file.

    The time and memory limits of re-executing a notebook are per profile (:class:`Profile`); the
    rest hold for every job. ``autograder doctor`` shows how each is enforced on this machine.
    """

    predict_time_limit_s: int
    predict_memory_limit_mb: int
    max_model_file_mb: int
    max_file_write_mb: int  # largest single file the sandboxed child may write
    max_submission_mb: int  # a submission folder's files, copied into the working folder
    disk_limit_mb: int  # all files in the working folder together (the submission's included)
    tmp_limit_mb: int  # the private /tmp (RAM-backed: counted in the memory limit too)
    max_processes: int  # processes and threads of one job together (TensorFlow alone starts dozens)
    # Strict mode: refuse to grade unless the kernel enforces the memory, /tmp, disk and process
    # limits (`autograder doctor` lists them). `autograder grade --strict` turns it on for one run.
    require_kernel_limits: bool = False

    def job_args(self) -> dict:
        """The limits every sandboxed job gets, as ``autograder.sandbox.run_job`` arguments."""
        return {"max_file_mb": self.max_file_write_mb, "disk_limit_mb": self.disk_limit_mb,
                "tmp_limit_mb": self.tmp_limit_mb, "max_processes": self.max_processes}


@dataclass(frozen=True)
class SusyData:
    """The events of one profile. ``source`` "uci": the UCI file, standard split (the first
    4,500,000 rows train, the last 500,000 test). ``source`` "simulated": the offline simulator
    (autograder.datasets.susy_sim), training and test events drawn with different seeds."""

    source: str
    train_rows: int  # rows [0, train_rows) are what a re-executed notebook can read
    test_rows: int  # hidden events the grader scores the models on
    train_seed: int = 1
    test_seed: int = 2


@dataclass(frozen=True)
class Metric:
    """What a threshold is set on, as data: a function of (labels, predictions) named by its import path.

    ``outputs`` says what the function is given of a model's outputs: "classes", the index of the largest of
    one row of class scores per input; "score", one signal probability per input (the last column of two);
    "value", one number per input (a regression). The grader and the student's check both compute it so
    (``autograder.model_checks.measure``), from the same path.
    """

    name: str  # the id a course configuration names it by: "accuracy"
    title: str  # what students read: "ROC AUC"
    function: str  # "module:function", called as function(labels, predictions) -> float
    outputs: str  # "classes", "score" or "value"
    lower_is_better: bool = False

    OUTPUTS = ("classes", "score", "value")

    def __post_init__(self):
        module, _, attribute = self.function.partition(":")
        if not module or not attribute:
            raise ValueError(f"metric {self.name!r}: function {self.function!r} is not 'module:function'")
        if self.outputs not in self.OUTPUTS:
            raise ValueError(f"metric {self.name!r}: outputs {self.outputs!r} is none of {', '.join(self.OUTPUTS)}")
        if importlib.util.find_spec(module.split(".")[0]) is None:
            raise ValueError(f"metric {self.name!r}: its function's module {module!r} is not installed here")

    def as_facts(self) -> dict:
        """The metric as plain values (for a notebook cell, and the student's check)."""
        return {"name": self.name, "title": self.title, "function": self.function, "outputs": self.outputs,
                "lower_is_better": self.lower_is_better}


ACCURACY = Metric("accuracy", "accuracy", "sklearn.metrics:accuracy_score", "classes")
ROC_AUC = Metric("roc_auc", "ROC AUC", "sklearn.metrics:roc_auc_score", "score")
MEAN_ABSOLUTE_ERROR = Metric("mean_absolute_error", "mean absolute error", "sklearn.metrics:mean_absolute_error",
                             "value", lower_is_better=True)
# The metrics a course configuration may name by their name; any other is described with Metric.
METRICS = {m.name: m for m in (ACCURACY, ROC_AUC, MEAN_ABSOLUTE_ERROR)}


def metric(name_or_metric: str | Metric) -> Metric:
    """The metric a configuration names (a :class:`Metric`, or the name of one of :data:`METRICS`)."""
    if isinstance(name_or_metric, Metric):
        return name_or_metric
    try:
        return METRICS[name_or_metric]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name_or_metric!r}: the kit knows {', '.join(sorted(METRICS))}; "
                         "describe another with autograder.config.Metric") from None


@dataclass(frozen=True)
class Dataset:
    """A dataset described as data: where its rows come from, how they are split, what is measured.

    The kit's own datasets (MNIST, SUSY) are modules of :mod:`autograder.datasets`; one that fits in memory
    and comes from a function (``sklearn.datasets.load_digits``, a course's own loader) is described here and
    needs no code. Its rows are shuffled with ``split_seed``; the last ``test_share`` of them are the hidden
    test set, and the last ``validation_share`` of the training rows the notebook's validation split.
    Notebooks load it with ``course_data.load_dataset(NAME)`` (shipped in every helper cell); the grader
    feeds a model ``X / scale`` as float32, in one of ``input_shapes`` (default: one row's own shape).
    """

    name: str
    title: str  # what students read: "scikit-learn's 8 x 8 digits"
    loader: str  # "module:function" returning (X, y) with every row, called with loader_args
    metric: Metric | str
    loader_args: dict = field(default_factory=dict)
    test_share: float = 0.25
    split_seed: int = 0
    validation_share: float = 0.2
    scale: float = 1.0
    input_shapes: tuple[tuple[int, ...], ...] = ()
    noun: str = "rows"  # what one row is, in the student's words ("images", "events")

    def __post_init__(self):
        object.__setattr__(self, "metric", metric(self.metric))
        module, _, attribute = self.loader.partition(":")
        if not module or not attribute:
            raise ValueError(f"dataset {self.name!r}: loader {self.loader!r} is not 'module:function'")
        if not 0 < self.test_share < 1 or not 0 < self.validation_share < 1:
            raise ValueError(f"dataset {self.name!r}: test_share and validation_share must lie between 0 and 1")
        if self.scale <= 0:
            raise ValueError(f"dataset {self.name!r}: scale must be positive")

    def as_facts(self) -> dict:
        """The description as plain values: what ``course_data.load_dataset`` reads in a notebook."""
        return {"name": self.name, "title": self.title, "loader": self.loader, "loader_args": dict(self.loader_args),
                "test_share": self.test_share, "split_seed": self.split_seed,
                "validation_share": self.validation_share, "scale": self.scale,
                "input_shapes": [list(s) for s in self.input_shapes], "noun": self.noun,
                "metric": self.metric.as_facts()}
