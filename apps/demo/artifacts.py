"""Small, real model artifacts and datasets for the demo, generated at load time (nothing is downloaded).

Models are trained on synthetic tabular data shaped like each demo use case and
saved in the formats the registry accepts: ONNX (through skl2onnx) and skops.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass
class DemoData:
    columns: list[str]
    X: np.ndarray
    y: np.ndarray
    sensitive: dict[str, np.ndarray]

    def csv_bytes(self, predictions: np.ndarray | None = None) -> bytes:
        header = (
            list(self.columns) + list(self.sensitive) + ["label"] + (["prediction"] if predictions is not None else [])
        )
        out = io.StringIO()
        out.write(",".join(header) + "\n")
        for i in range(len(self.y)):
            row = [f"{v:.6g}" for v in self.X[i]]
            row += [str(self.sensitive[name][i]) for name in self.sensitive]
            row.append(str(int(self.y[i])))
            if predictions is not None:
                row.append(str(int(predictions[i])))
            out.write(",".join(row) + "\n")
        return out.getvalue().encode()

    def schema(self, with_prediction: bool = False) -> list[dict]:
        schema = [{"name": c, "type": "double", "role": "feature"} for c in self.columns]
        schema += [{"name": s, "type": "string", "role": "sensitive"} for s in self.sensitive]
        schema.append({"name": "label", "type": "int64", "role": "label"})
        if with_prediction:
            schema.append({"name": "prediction", "type": "int64", "role": "prediction"})
        return schema


def make_data(seed: int, columns: list[str], rows: int = 400) -> DemoData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(columns))).astype(np.float32)
    weights = rng.normal(size=len(columns))
    y = (X @ weights + rng.normal(scale=0.5, size=rows) > 0).astype(np.int64)
    sensitive = {
        "sex": rng.choice(["female", "male"], size=rows),
        "age_band": rng.choice(["18-30", "31-50", "51+"], size=rows),
    }
    return DemoData(columns=columns, X=X, y=y, sensitive=sensitive)


def onnx_logistic(data: DemoData, seed: int = 0) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500, random_state=seed).fit(data.X, data.y)
    onx = to_onnx(model, data.X[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    return onx.SerializeToString()


def skops_gradient_boosting(data: DemoData, seed: int = 0) -> bytes:
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=seed).fit(data.X, data.y)
    return sio.dumps(model)


def predictions_for(data: DemoData, seed: int = 0) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500, random_state=seed).fit(data.X, data.y).predict(data.X)
