"""``loaders.scorer`` on real XGBoost and LightGBM models: the labels are the ones the library itself predicts."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engines import loaders


def _data(classes: int = 2, rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5))
    score = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.3, size=rows)
    cuts = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    return x, np.digitize(score, cuts)


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "three-classes"])
def xgboost_classifier(request):
    import xgboost

    x, y = _data(request.param)
    return x, xgboost.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1).fit(x, y)


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "three-classes"])
def lightgbm_classifier(request):
    import lightgbm

    x, y = _data(request.param)
    return x, lightgbm.LGBMClassifier(n_estimators=15, num_leaves=8, n_jobs=1, verbose=-1).fit(x, y)


def _holdout(seed: int = 1) -> np.ndarray:
    return _data(rows=500, seed=seed)[0]


@pytest.mark.parametrize("raw_format", ["json", "ubj"])
def test_the_xgboost_scorer_gives_xgboosts_own_labels(tmp_path, xgboost_classifier, raw_format):
    # given a classifier trained with XGBoost's scikit-learn API, saved as a Booster (JSON or UBJ)
    x, classifier = xgboost_classifier
    path = tmp_path / f"model.{raw_format}"
    path.write_bytes(bytes(classifier.get_booster().save_raw(raw_format)))
    # when
    score = loaders.scorer(path, "xgboost")
    # then the labels on training and unseen rows are those XGBoost predicts, every class among them
    for features in (x, _holdout()):
        labels = score(features)
        expected = classifier.predict(features)
        assert labels.dtype.kind == "i" and labels.shape == (len(features),)
        assert np.array_equal(labels, expected)
        assert set(labels.tolist()) == set(range(len(classifier.classes_)))


def test_the_lightgbm_scorer_gives_lightgbms_own_labels(tmp_path, lightgbm_classifier):
    # given a classifier trained with LightGBM's scikit-learn API, saved as its text model
    x, classifier = lightgbm_classifier
    path = tmp_path / "model.txt"
    path.write_text(classifier.booster_.model_to_string())
    # when
    score = loaders.scorer(path, "lightgbm")
    # then
    for features in (x, _holdout()):
        labels = score(features)
        assert labels.dtype.kind == "i" and labels.shape == (len(features),)
        assert np.array_equal(labels, classifier.predict(features))
        assert set(labels.tolist()) == set(range(len(classifier.classes_)))


def test_an_xgboost_model_refuses_a_matrix_of_the_wrong_width_in_words(tmp_path, xgboost_classifier):
    x, classifier = xgboost_classifier
    path = tmp_path / "model.json"
    path.write_bytes(bytes(classifier.get_booster().save_raw("json")))
    with pytest.raises(loaders.LoadError, match=r"the model expects 5 feature\(s\), the data has 4"):
        loaders.scorer(path, "xgboost")(x[:, :4])


def test_a_lightgbm_model_refuses_a_matrix_of_the_wrong_width_in_words(tmp_path, lightgbm_classifier):
    x, classifier = lightgbm_classifier
    path = tmp_path / "model.txt"
    path.write_text(classifier.booster_.model_to_string())
    with pytest.raises(loaders.LoadError, match=r"the model expects 5 feature\(s\), the data has 4"):
        loaders.scorer(path, "lightgbm")(x[:, :4])


@pytest.mark.parametrize(("fmt", "message"), [("xgboost", "XGBoost cannot"), ("lightgbm", "LightGBM cannot")])
def test_a_model_that_does_not_load_cannot_score(tmp_path, fmt, message):
    path = tmp_path / "model"
    path.write_bytes(b"{not a model")
    with pytest.raises(loaders.LoadError, match=f"{message} load the model: "):
        loaders.scorer(path, fmt)
