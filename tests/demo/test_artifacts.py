"""The demo's data generator: one rule per model, disjoint draws, the same numbers every time."""

import numpy as np

from apps.demo import artifacts

COLUMNS = ["income", "debt_ratio", "credit_history_months", "open_accounts"]
AGE_SHIFT = {"18-30": -1.0, "31-50": 0.0, "51+": 1.0}


def test_the_same_rule_and_seeds_give_the_same_rows_and_the_same_declared_metrics():
    # given a rule, as the demo builds one per model
    rule = artifacts.make_rule(100, COLUMNS, weights={"credit_history_months": 0.0})
    # when training and held-out rows are drawn and a model trained, twice
    runs = []
    for _ in range(2):
        training, held_out = artifacts.draw(rule, 100, 300), artifacts.draw(rule, 101, 600)
        runs.append((training, held_out, artifacts.train("skops", training, held_out, seed=1).metrics))
    # then the rows and what the model declares are the same, and the held-out rows are not the training rows
    (training, held_out, metrics), (training_again, held_out_again, metrics_again) = runs
    assert np.array_equal(training.X, training_again.X) and np.array_equal(held_out.y, held_out_again.y)
    assert metrics == metrics_again and set(metrics) == {"accuracy", "auc"}
    assert not np.isin(held_out.X[:, 0], training.X[:, 0]).any()
    # and the held-out rows follow the training rows' rule (a model of another rule scores about 0.5)
    assert metrics["accuracy"] > 0.75


def test_a_feature_that_moves_with_age_makes_a_model_that_leans_on_it_unfair_by_age_band():
    # given credit history shifted by age band, and a label that follows it or ignores it
    shifts = {"credit_history_months": ("age_band", AGE_SHIFT)}
    ignoring = artifacts.make_rule(100, COLUMNS, weights={"credit_history_months": 0.0}, shifts=shifts)
    leaning = artifacts.make_rule(100, COLUMNS, weights={"credit_history_months": 0.6}, shifts=shifts)
    evaluation = artifacts.draw(ignoring, 101, 2000)

    def selection_rate_gap(rule):
        training = artifacts.draw(rule, 100, 1000)
        predictions = artifacts.train("predictions_only", training, evaluation).predictions
        rates = [predictions[evaluation.sensitive["age_band"] == band].mean() for band in AGE_SHIFT]
        return max(rates) - min(rates)

    # when models are trained on each; then only the one that learned to lean on credit history is unfair
    assert selection_rate_gap(ignoring) < 0.05
    assert selection_rate_gap(leaning) > 0.2
