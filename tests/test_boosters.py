"""XGBoost and LightGBM model files: read without the libraries (autograder.model_files.boosters), and
predicted by the libraries' own loaders in the sandbox (the child's "xgboost" and "lightgbm" jobs)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

import course_config
from autograder import sandbox
from autograder.datasets import tasks
from autograder.datasets.susy_sim import simulate
from autograder.grading.predict import predict
from autograder.keras_numpy.architecture import ModelFileError
from autograder.model_files.boosters import (
    MAX_DEPTH,
    Skipped,
    UBJSONError,
    binary_trees_problem,
    booster_format,
    decode_ubjson,
    inspect_booster,
    job_kind,
)

TREES = course_config.SUSY.models[1]
KEY = b"L\x00\x00\x00\x00\x00\x00\x00\x07learner"  # the first key of XGBoost's UBJSON: an int64 length, the name


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small real models on simulated SUSY events (a few trees each), saved as their libraries save them."""
    import lightgbm
    import xgboost

    d = tmp_path_factory.mktemp("boosters")
    X, y = simulate(2000, seed=3)
    labels3 = np.digitize(X[:, 0], np.quantile(X[:, 0], [1 / 3, 2 / 3]))
    small = dict(n_estimators=8, max_depth=3, n_jobs=1)
    clf = xgboost.XGBClassifier(**small).fit(X, y)
    clf.save_model(d / "xgb.json")
    clf.save_model(d / "xgb.ubj")
    xgboost.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgboost.DMatrix(X, y), 5).save_model(
        d / "booster.ubj")
    xgboost.XGBClassifier(booster="dart", **small).fit(X, y).save_model(d / "dart.json")
    xgboost.XGBClassifier(**small).fit(X, labels3).save_model(d / "multi.json")
    xgboost.XGBRegressor(**small).fit(X, y).save_model(d / "regression.ubj")
    xgboost.XGBClassifier(booster="gblinear", n_estimators=3, n_jobs=1).fit(X, y).save_model(d / "linear.json")
    lgb_small = dict(n_estimators=8, num_leaves=8, n_jobs=1, verbose=-1)
    lgb = lightgbm.LGBMClassifier(**lgb_small).fit(X, y)
    lgb.booster_.save_model(d / "lgb.txt")
    lightgbm.LGBMClassifier(boosting_type="rf", subsample=0.5, subsample_freq=1, **lgb_small).fit(X, y).booster_.save_model(
        d / "lgb_rf.txt")
    lightgbm.LGBMClassifier(**lgb_small).fit(X, labels3).booster_.save_model(d / "lgb_multi.txt")
    return {"dir": d, "xgb": clf, "lgb": lgb}


def renamed(models, name: str, new: str):
    target = models["dir"] / "renamed" / new
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(models["dir"] / name, target)
    return target


def written(models, name: str, data: bytes):
    target = models["dir"] / "written" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
    return target


def test_format_is_told_by_content_not_by_name(models):
    assert booster_format(renamed(models, "xgb.json", "susy_trees.txt")) == "xgboost-json"
    assert booster_format(renamed(models, "xgb.ubj", "susy_trees.json")) == "xgboost-ubj"
    assert booster_format(renamed(models, "lgb.txt", "susy_trees.ubj")) == "lightgbm"
    assert booster_format(written(models, "susy_trees.json", b'{"name": "tree", "tree_info": []}')) is None
    assert booster_format(written(models, "susy_trees.txt", b"tree\nnot a model")) is None
    assert booster_format(written(models, "susy_trees.ubj", b"\x80\x04\x95pickle")) is None
    assert booster_format(models["dir"] / "missing.json") is None
    # read as what it is, whatever its name
    assert inspect_booster(renamed(models, "xgb.ubj", "susy_trees.txt"), max_mb=100).class_name == "XGBClassifier"


def test_xgbclassifier_reads_the_same_from_json_and_ubj(models):
    import xgboost

    infos = [inspect_booster(models["dir"] / name, max_mb=100) for name in ("xgb.json", "xgb.ubj")]
    for info in infos:
        assert (info.class_name, info.module, info.library, info.booster, info.objective) == (
            "XGBClassifier", "xgboost", "xgboost", "gbtree", "binary:logistic")
        assert (info.n_trees, info.n_features, info.n_classes, info.steps, info.foreign) == (8, 18, 1, ("XGBClassifier",), ())
        assert info.final_estimator == "XGBClassifier" and info.version == xgboost.__version__
        assert info.is_tree_ensemble and info.is_binary_probability and binary_trees_problem(info) is None
        assert info.summary() == "XGBClassifier (gbtree, binary:logistic, 8 trees, 18 features)"
        assert job_kind(info) == "xgboost"
    dart = inspect_booster(models["dir"] / "dart.json", max_mb=100)
    assert dart.summary() == "XGBClassifier (dart, binary:logistic, 8 trees, 18 features)" and dart.is_tree_ensemble


def test_a_raw_booster_is_named_so(models):
    info = inspect_booster(models["dir"] / "booster.ubj", max_mb=100)
    assert info.summary() == "XGBoost Booster (gbtree, binary:logistic, 5 trees, 18 features)"
    assert info.steps == ("XGBoost Booster",)


def test_lightgbm_text_model(models):
    info = inspect_booster(models["dir"] / "lgb.txt", max_mb=100)
    assert (info.class_name, info.module, info.library, info.booster, info.version) == (
        "LightGBM Booster", "lightgbm", "lightgbm", "gbdt", "v4")
    assert info.summary() == "LightGBM Booster (gbdt, binary sigmoid:1, 8 trees, 18 features)"
    assert info.is_tree_ensemble and info.is_binary_probability and job_kind(info) == "lightgbm"
    forest = inspect_booster(models["dir"] / "lgb_rf.txt", max_mb=100)
    assert forest.booster == "rf" and forest.is_tree_ensemble


def test_the_ubjson_decoder_gives_what_the_json_says(models):
    def same(a, b):
        if isinstance(a, dict):
            assert isinstance(b, dict) and a.keys() == b.keys()
            for key in a:
                same(a[key], b[key])
        elif isinstance(a, list):
            assert isinstance(b, list) and len(a) == len(b)
            for x, z in zip(a, b):
                same(x, z)
        elif isinstance(a, float):
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30)
        else:
            assert a == b and type(a) is type(b)

    ubj = (models["dir"] / "xgb.ubj").read_bytes()
    same(decode_ubjson(ubj), json.loads((models["dir"] / "xgb.json").read_text()))
    skipped = decode_ubjson(ubj, skip_over=0)["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"]
    assert isinstance(skipped, Skipped) and len(skipped) > 1
    # every value form: ints of each width, floats, strings, constants, no-ops, typed and ]-ended containers
    doc = (b"{" + b"i\x01a" + b"[" + b"i\xffU\xffI\x80\x00l\x00\x00\x00\x01L\x00\x00\x00\x00\x00\x00\x00\x02"
           + b"d\x3f\x80\x00\x00D\x3f\xf0\x00\x00\x00\x00\x00\x00SU\x02hiTFZNC\x41" + b"]"
           + b"i\x01b[$U#i\x03\x01\x02\x03" + b"i\x01c{$T#i\x02i\x01xi\x01y" + b"}")
    assert decode_ubjson(doc) == {"a": [-1, 255, -32768, 1, 2, 1.0, 1.0, "hi", True, False, None, "A"],
                                  "b": [1, 2, 3], "c": {"x": True, "y": True}}


@pytest.mark.parametrize("name, message", [
    ("multi.json", "susy_trees.json is a 3-class model (objective 'multi:softprob'); SUSY separates signal from "
                   "background, two classes: train an XGBClassifier on the 0/1 labels (objective 'binary:logistic', "
                   "the default) with booster 'gbtree' (the default)"),
    ("regression.ubj", "susy_trees.ubj is a regression model (objective 'reg:squarederror'), not a classifier giving "
                       "the probability of signal: train an XGBClassifier on the 0/1 labels (objective "
                       "'binary:logistic', the default) with booster 'gbtree' (the default)"),
    ("linear.json", "susy_trees.json is a linear model (booster 'gblinear'), not trees; train an XGBClassifier on the "
                    "0/1 labels (objective 'binary:logistic', the default) with booster 'gbtree' (the default), and "
                    "save it with model.save_model('susy_trees.json')"),
    ("lgb_multi.txt", "susy_trees.txt is a 3-class model (objective 'multiclass num_class:3'); SUSY separates signal "
                      "from background, two classes: train an LGBMClassifier on the 0/1 labels (objective 'binary', "
                      "the default)"),
])
def test_models_that_are_not_binary_tree_classifiers_are_refused(models, name, message):
    path = renamed(models, name, "susy_trees" + name[name.rindex("."):])
    with pytest.raises(ModelFileError) as caught:
        inspect_booster(path, max_mb=100)
    assert str(caught.value) == message
    info = inspect_booster(path, max_mb=100, binary_trees=False)  # read, not judged
    assert binary_trees_problem(info) == message
    assert info.class_name == {"multi.json": "XGBClassifier", "regression.ubj": "XGBRegressor",
                               "linear.json": "XGBClassifier", "lgb_multi.txt": "LightGBM Booster"}[name]


def test_damaged_and_foreign_files_are_refused_without_loading(models):
    ubj = (models["dir"] / "xgb.ubj").read_bytes()
    save = ("save XGBoost models with model.save_model('susy_trees.json') (or '.ubj') and LightGBM models with "
            "model.booster_.save_model('susy_trees.txt')")
    cases = {
        b"\x00\x01 garbage bytes " * 10: f"susy_trees.ubj is not an XGBoost or LightGBM model file; {save}",
        b"\x80\x04\x95 a pickle": "susy_trees.ubj is a Python pickle (pickle.dump or joblib.dump), which the grader "
                                  f"never loads: loading one runs code; {save}",
        b"": f"susy_trees.ubj is empty; {save}",
        ubj[: len(ubj) // 2]: "susy_trees.ubj is a damaged XGBoost UBJSON file (at byte ",
        b"{" + KEY + b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff": (
            "susy_trees.ubj is a damaged XGBoost UBJSON file (at byte 18: a container claims "
            "9,223,372,036,854,775,807 elements, more than the 0 bytes left can hold); save it again with "
            "model.save_model('susy_trees.ubj')"),
        b"{" + KEY + b"[" * 100 + b"]" * 100 + b"}": "susy_trees.ubj is a damaged XGBoost UBJSON file (at byte "
                                                     f"81: containers nested more than {MAX_DEPTH} deep)",
        ubj + b"\x00\x00": "2 bytes after the end of the document); save it again with "
                          "model.save_model('susy_trees.ubj')",
        b"{" + KEY + b"SL\xff\xff\xff\xff\xff\xff\xff\xf0x}": "(at byte 18: negative string length -16)",
        b"{" + KEY + b"X}": "(at byte 17: unknown marker 'X')",
    }
    for data, message in cases.items():
        with pytest.raises(ModelFileError) as caught:
            inspect_booster(written(models, "susy_trees.ubj", data), max_mb=100)
        assert message in str(caught.value), (data[:40], str(caught.value))
    with pytest.raises(UBJSONError, match="ends early"):
        decode_ubjson(b"SL\x00\x00\x00\x00\x00\x00\x00\x09short")
    json_text = (models["dir"] / "xgb.json").read_bytes()
    for data, message in {
        json_text[:-40]: "susy_trees.json is a damaged XGBoost JSON file (JSONDecodeError: ",
        b'{"learner": 5}': "susy_trees.json is JSON but not a model saved by XGBoost (no 'learner' object in it)",
        b'{"name": "tree", "version": "v4", "tree_info": []}': "susy_trees.json is LightGBM's dump_model() JSON, "
                                                               "which LightGBM cannot load back",
    }.items():
        with pytest.raises(ModelFileError) as caught:
            inspect_booster(written(models, "susy_trees.json", data), max_mb=100)
        assert message in str(caught.value), str(caught.value)
    text = (models["dir"] / "lgb.txt").read_bytes()
    with pytest.raises(ModelFileError, match="is a LightGBM model cut short"):
        inspect_booster(written(models, "susy_trees.txt", text[: len(text) // 2]), max_mb=100)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_sandboxed_predictions_are_the_librarys_own(models, tmp_path, library):
    task = tasks.SusyTask(course_config.PROFILES["quick"])
    if library == "xgboost":  # UBJSON under a .json name: the job loads by content too
        path, model = renamed(models, "xgb.ubj", "susy_trees.json"), models["xgb"]
    else:
        path, model = renamed(models, "lgb.txt", "susy_trees.txt"), models["lgb"]
    info = inspect_booster(path, max_mb=course_config.LIMITS.max_model_file_mb)
    prediction = predict(TREES, path, info, task, limits=course_config.LIMITS, backend=sandbox.default_backend(),
                         threads=1, kind=job_kind(info))
    assert prediction.problem is None and prediction.engine == library and not prediction.limits_hit
    scores = prediction.outputs["test"]
    assert scores.shape == (len(task.x_test),)
    np.testing.assert_allclose(scores, model.predict_proba(task.x_test)[:, 1], rtol=0, atol=1e-6)
    assert set(prediction.usage["phases"]) >= {"imports", "read_model", "forward"}
