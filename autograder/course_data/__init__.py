"""Load the course data sets, validated by content, from the first place that has them.

Students use ``load_mnist`` (and ``move_digits``), ``load_susy``, and ``load_dataset`` for a dataset
the course describes in its configuration; ``mnist_validation``, ``susy_validation`` and
``dataset_validation`` give the validation split a notebook holds out. A module per data set
(``mnist``, ``susy``, each saying where it looks and what it checks; ``described`` for the described
ones) and ``common`` for what they share.

This package is standalone on purpose: every assignment notebook carries it in its helper cell (written
by `autograder release`), which unpacks it as ``course_data``, so a student's notebook imports it
unchanged on Colab, on a laptop, and inside the grader's sandbox. At import it needs only numpy and the
standard library (tqdm, if installed, draws the download progress bar), and its modules import one
another relatively, never ``autograder``. Edit ``autograder/course_data/`` and run ``autograder
release``.
"""

from .common import DATA_DIR_ENV, DataError, keras_cache_dir
from .described import dataset_validation, load_dataset
from .mnist import (
    MNIST_ARRAYS,
    MNIST_FILE,
    MNIST_LABEL_COUNTS,
    MNIST_OPTIONAL,
    MNIST_URL,
    MOVE_ROTATION_DEG,
    MOVE_SHIFT_PX,
    MOVE_ZOOM,
    load_mnist,
    mnist_candidates,
    mnist_validation,
    move_digits,
    read_mnist_file,
)
from .susy import (
    SUSY_CACHE,
    SUSY_FEATURES,
    SUSY_FILE_NAMES,
    SUSY_HIGH_LEVEL,
    SUSY_LOW_LEVEL,
    SUSY_TOTAL_ROWS,
    SUSY_TRAIN_ROWS,
    SUSY_URL,
    load_susy,
    read_susy_file,
    susy_candidates,
    susy_validation,
)

__all__ = [
    "DATA_DIR_ENV", "DataError", "keras_cache_dir",
    "MNIST_ARRAYS", "MNIST_FILE", "MNIST_LABEL_COUNTS", "MNIST_OPTIONAL", "MNIST_URL",
    "MOVE_ROTATION_DEG", "MOVE_SHIFT_PX", "MOVE_ZOOM",
    "load_mnist", "mnist_candidates", "mnist_validation", "move_digits", "read_mnist_file",
    "SUSY_CACHE", "SUSY_FEATURES", "SUSY_FILE_NAMES", "SUSY_HIGH_LEVEL", "SUSY_LOW_LEVEL",
    "SUSY_TOTAL_ROWS", "SUSY_TRAIN_ROWS", "SUSY_URL",
    "load_susy", "read_susy_file", "susy_candidates", "susy_validation",
    "dataset_validation", "load_dataset",
]
