"""Models as students build them from the public recipes they find first, saved as those recipes save them.

Each case is a submission folder: the files a student following that recipe hands in, made by the real
library (Keras, scikit-learn, skops, XGBoost, LightGBM) on small slices of the data, so that the grader and
the check before hand-in can be judged on what students actually send. ``CASES`` says, per case, the
assignment, what the grader must say and score.
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One student's hand-in: the assignment, and what the grader must say of it."""

    name: str
    assignment: str
    recipe: str  # where the student took it from
    points: dict[str, float] = field(default_factory=dict)  # check id -> the score it must earn
    says: dict[str, str] = field(default_factory=dict)  # check id (or "notes") -> a text its output must contain
    never: tuple[str, ...] = ()  # texts no output may contain (a false message)


CASES = (
    Case("tf_quickstart_softmax_wrapper", "mnist_dense",
         "TensorFlow's beginner quickstart: logits, then Sequential([model, Softmax()]) (the inner model's Adam state saved)",
         points={"layer_types": 1, "hidden_layer": 1, "output_layer": 1, "param_budget": 1},
         never=("1,221,152",)),
    Case("colab_second_download", "mnist_dense", "Colab's name for a second download: mnist_dense (1).keras",
         points={"layer_types": 1, "output_layer": 1, "param_budget": 1},
         says={"notes": "graded mnist_dense (1).keras for mnist_dense.keras"}, never=("not found",)),
    Case("two_downloads", "mnist_dense", "two downloads, mnist_dense (1).keras and mnist_dense (2).keras",
         points={"layer_types": 0, "test_accuracy": 0},
         says={"layer_types": "rename the one to grade to mnist_dense.keras"}),
    Case("newer_h5_twin", "mnist_dense", "a .keras saved first, then model.save('mnist_dense.h5') after more training",
         points={"output_layer": 1},
         says={"notes": "graded mnist_dense.h5, saved after mnist_dense.keras"}),
    Case("exported_saved_model", "mnist_dense", "model.export('mnist_dense.keras') (a SavedModel folder)",
         points={"output_layer": 0},
         says={"output_layer": "is a TensorFlow SavedModel folder (model.export or tf.saved_model.save)"},
         never=("is not a regular file",)),
    Case("pytorch_file", "mnist_dense", "pytorch/examples mnist: torch.save(model.state_dict(), 'mnist_dense.pt')",
         points={"output_layer": 0},
         says={"output_layer": "Rebuild the network in Keras"}, never=("Save the whole model with",)),
    Case("tf_tutorial_raw_pixels", "mnist_cnn",
         "TensorFlow's image classification tutorial: Rescaling(1./255) inside, trained on raw 0-255 pixels",
         points={"conv_layers": 1, "output_layer": 1, "test_accuracy": 0},
         says={"test_accuracy": "the model expects pixels in 0-255"}, never=("EPOCHS",)),
    Case("chollet_checkpoint_name", "mnist_cnn", "Deep Learning with Python: ModelCheckpoint('convnet_from_scratch.keras')",
         points={"conv_layers": 1, "pooling": 1, "flatten_head": 1, "output_layer": 1, "param_budget": 1},
         says={"notes": "graded convnet_from_scratch.keras for mnist_cnn.keras"}, never=("not found",)),
    Case("augment_without_augmentation", "mnist_augment", "keras-io mnist_convnet handed in for the augmentation task",
         points={"augmentation_layers": 0, "no_flip": 1, "moved_accuracy": 0}),
    Case("mehta_sgd_logistic", "susy", "Mehta et al.'s review: SGDClassifier(loss='log_loss') in a pipeline",
         points={"logreg_family": 1, "trees_family": 1, "dnn_family": 1},
         says={"logreg_auc": "ROC AUC 0."}, never=("scored only for",)),
    Case("xgboost_json", "susy", "XGBoost's sklearn API: XGBClassifier().save_model('susy_trees.json')",
         points={"logreg_family": 1, "trees_family": 1},
         says={"trees_auc": "ROC AUC 0.", "notes": "graded susy_trees.json (an XGBoost model) in place of susy_trees.skops"}),
    Case("lightgbm_text", "susy", "LightGBM's sklearn API: LGBMClassifier().booster_.save_model('susy_trees.txt')",
         points={"logreg_family": 1, "trees_family": 1},
         says={"trees_auc": "ROC AUC 0."}),
    Case("joblib_under_skops_name", "susy", "joblib.dump(trees, 'susy_trees.skops') (a pickle under the skops name)",
         points={"trees_family": 0, "trees_auc": 0, "logreg_family": 1},
         says={"trees_family": "is a Python pickle (joblib.dump or pickle.dump) under a .skops name"},
         never=("not found",)),
)


def _mnist_slice(mnist, n=6000):
    (x_train, y_train), _ = mnist
    return x_train[:n], y_train[:n]


def _dense_logits(keras, hidden):
    return keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dropout(0.2), keras.layers.Dense(10)])


def build(root: Path, mnist) -> Path:
    """Write every case's folder under ``root/<case>/`` (about 40 s on 2 cores)."""
    import keras

    keras.utils.set_random_seed(0)
    x, y = _mnist_slice(mnist)
    xs = x.astype("float32") / 255.0

    def folder(name):
        path = root / name
        path.mkdir(parents=True)
        return path

    # TensorFlow's quickstart: logits trained with from_logits=True, then a Softmax wrapped around the model.
    model = _dense_logits(keras, 512)  # 407,050 parameters
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(xs, y, epochs=1, batch_size=128, verbose=0)
    keras.Sequential([model, keras.layers.Softmax()]).save(folder("tf_quickstart_softmax_wrapper") / "mnist_dense.keras")

    dense = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    dense.compile("adam", "sparse_categorical_crossentropy")
    dense.fit(xs, y, epochs=1, batch_size=128, verbose=0)
    dense.save(folder("colab_second_download") / "mnist_dense (1).keras")
    two = folder("two_downloads")
    dense.save(two / "mnist_dense (1).keras")
    dense.save(two / "mnist_dense (2).keras")
    twin = folder("newer_h5_twin")
    dense.save(twin / "mnist_dense.keras")
    old = time.time() - 3600
    os.utime(twin / "mnist_dense.keras", (old, old))
    dense.save(twin / "mnist_dense.h5")
    dense.export(str(folder("exported_saved_model") / "mnist_dense.keras"), verbose=False)
    # torch.save writes a zip archive with <name>/data.pkl (PyTorch is not a course dependency).
    with zipfile.ZipFile(folder("pytorch_file") / "mnist_dense.pt", "w") as zf:
        zf.writestr("mnist_dense/data.pkl", pickle.dumps({"fc1.weight": [0.0]}))
        zf.writestr("mnist_dense/version", "3\n")

    # TensorFlow's image classification tutorial: Rescaling(1./255) inside, trained on raw pixels.
    raw = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1.0 / 255),
                            keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(),
                            keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
                            keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    raw.compile("adam", "sparse_categorical_crossentropy")
    raw.fit(x[..., None].astype("float32"), y, epochs=1, batch_size=128, verbose=0)
    raw.save(folder("tf_tutorial_raw_pixels") / "mnist_cnn.keras")

    # Chollet's convnet, checkpointed under its book name; keras-io's mnist_convnet for the augmentation task.
    convnet = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                                keras.layers.MaxPooling2D(), keras.layers.Conv2D(16, 3, activation="relu"),
                                keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dropout(0.5),
                                keras.layers.Dense(10, activation="softmax")])
    convnet.compile("adam", "sparse_categorical_crossentropy")
    convnet.fit(xs[..., None], y, epochs=1, batch_size=128, verbose=0)
    convnet.save(folder("chollet_checkpoint_name") / "convnet_from_scratch.keras")
    convnet.save(folder("augment_without_augmentation") / "mnist_augment.keras")

    _susy(root, folder)
    return root


def _susy(root: Path, folder) -> None:
    import joblib
    import keras
    import lightgbm
    import skops.io as sio
    import xgboost
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autograder.datasets.susy_sim import simulate

    X, y = simulate(4000, seed=11)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    trees = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    norm = keras.layers.Normalization()
    norm.adapt(X)
    dnn = keras.Sequential([keras.Input((18,)), norm, keras.layers.Dense(16, activation="relu"),
                            keras.layers.Dense(1, activation="sigmoid")])
    dnn.compile("adam", "binary_crossentropy")
    dnn.fit(X, y, epochs=1, batch_size=256, verbose=0)
    common = root / "_susy_common"
    common.mkdir()
    sio.dump(logreg, common / "susy_logreg.skops")
    sio.dump(trees, common / "susy_trees.skops")
    dnn.save(common / "susy_dnn.keras")

    def susy_case(name, **replaced):
        path = folder(name)
        for spec in ("susy_logreg.skops", "susy_trees.skops", "susy_dnn.keras"):
            if spec not in replaced:
                shutil.copy2(common / spec, path / spec)
        return path

    path = susy_case("mehta_sgd_logistic", **{"susy_logreg.skops": None})
    sio.dump(make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)).fit(X, y),
             path / "susy_logreg.skops")
    path = susy_case("xgboost_json", **{"susy_trees.skops": None})
    xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y).save_model(path / "susy_trees.json")
    path = susy_case("lightgbm_text", **{"susy_trees.skops": None})
    lgbm = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=15, n_jobs=1, verbose=-1).fit(X, y)
    lgbm.booster_.save_model(path / "susy_trees.txt")
    path = susy_case("joblib_under_skops_name", **{"susy_trees.skops": None})
    joblib.dump(trees, path / "susy_trees.skops")
