"""Pipelines from YAML and Python files: what they build, and every way a file can be wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC

from neuroenc.errors import CorruptFileError, DataError, MissingFileError, UnknownNameError
from neuroenc.evaluation.pipelines import (
    ALLOWED_PREFIXES,
    STEP_CLASSES,
    build_estimator,
    load_pipelines,
    pipelines_from_spec,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pipelines_mi.yml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_file_builds_the_documented_pipelines():
    from mne.decoding import CSP

    from neuroenc.riemann import MDM, Covariances, TangentSpace

    pipes = load_pipelines(EXAMPLE)
    assert list(pipes) == ["CSP + LDA", "Covariances + MDM", "Tangent space + LR"]
    assert all(isinstance(p, Pipeline) for p in pipes.values())
    csp, lda = (s for _, s in pipes["CSP + LDA"].steps)
    assert isinstance(csp, CSP) and csp.n_components == 6 and isinstance(lda, LinearDiscriminantAnalysis)
    cov, mdm = (s for _, s in pipes["Covariances + MDM"].steps)
    assert isinstance(cov, Covariances) and cov.estimator == "oas" and isinstance(mdm, MDM)
    cov, ts, lr = (s for _, s in pipes["Tangent space + LR"].steps)
    assert isinstance(ts, TangentSpace) and ts.metric == "riemann"
    assert isinstance(lr, LogisticRegression) and lr.max_iter == 1000


def test_yaml_pipelines_score_like_the_same_pipelines_built_in_python(data_dir):
    from mne.decoding import CSP

    from neuroenc.datasets import load_physionet_mi
    from neuroenc.riemann import MDM, Covariances

    epochs = load_physionet_mi(1, "imagery_lr", data_dir=data_dir, l_freq=8.0, h_freq=30.0).crop(0.5, 2.5)
    motor = [n for n in epochs.feature_names if n[:2] in ("C1", "C2", "C3", "C4", "C5", "C6", "Cz", "Cp")]
    X, y = epochs.pick_features(motor).data, epochs.conditions
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    pipes = load_pipelines(EXAMPLE)
    by_hand = {
        "CSP + LDA": make_pipeline(CSP(n_components=6), LinearDiscriminantAnalysis()),
        "Covariances + MDM": make_pipeline(Covariances("oas"), MDM()),
    }
    for name, reference in by_hand.items():
        assert repr(pipes[name]) == repr(reference)
        np.testing.assert_array_equal(
            cross_val_score(pipes[name], X, y, cv=cv), cross_val_score(reference, X, y, cv=cv)
        )


def test_pyriemann_dotted_paths_and_nested_estimators(tmp_path):
    import pyriemann

    path = write(
        tmp_path,
        "p.yaml",
        """
pipelines:
  - name: pyriemann TS + SVC
    steps:
      - {class: pyriemann.estimation.Covariances, params: {estimator: lwf}}
      - {class: pyriemann.classification.TSClassifier, params: {clf: {class: SVC, params: {C: 0.5}}}}
  - name: only LDA
    steps: [LDA]
""",
    )
    pipes = load_pipelines(path)
    cov, tsc = (s for _, s in pipes["pyriemann TS + SVC"].steps)
    assert isinstance(cov, pyriemann.estimation.Covariances) and cov.estimator == "lwf"
    assert isinstance(tsc.clf, SVC) and tsc.clf.C == 0.5
    assert isinstance(pipes["only LDA"].steps[0][1], LinearDiscriminantAnalysis)


def test_moabb_layout_is_accepted():
    spec = {
        "name": "CSP+LDA",
        "paradigms": ["LeftRightImagery"],
        "pipeline": [
            {"name": "CSP", "from": "mne.decoding", "parameters": {"nfilter": 4}},
            {"name": "LinearDiscriminantAnalysis", "from": "sklearn.discriminant_analysis"},
        ],
    }
    # MOABB's CSP yaml uses the old ``nfilter`` name: the error says which step and why.
    with pytest.raises(DataError, match=r"pipeline 'CSP\+LDA', step 0: cannot build CSP .*nfilter"):
        pipelines_from_spec(spec, "moabb.yml")
    spec["pipeline"][0]["parameters"] = {"n_components": 4}
    pipe = pipelines_from_spec(spec)["CSP+LDA"]
    assert pipe.steps[0][1].n_components == 4


def test_every_short_name_resolves_to_an_allowed_class():
    for short, dotted in STEP_CLASSES.items():
        est = build_estimator(short)
        assert type(est).__name__ == dotted.rsplit(".", 1)[1]
        assert type(est).__module__.startswith(tuple(p.rstrip(".") for p in ALLOWED_PREFIXES))


def test_python_file_with_pipelines_dict_and_custom_class_runs_in_worker_processes(tmp_path):
    from joblib import Parallel, delayed

    path = write(
        tmp_path,
        "mine.py",
        """
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import make_pipeline
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

class Flatten(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self
    def transform(self, X):
        return X.reshape(len(X), -1)

PIPELINES = {"flat + LDA": make_pipeline(Flatten(), LinearDiscriminantAnalysis())}
""",
    )
    pipe = load_pipelines(path)["flat + LDA"]
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3, 5)), np.repeat([0, 1], 20)
    X[y == 1] += 0.5
    serial = pipe.fit(X, y).predict(X)
    # The file is not importable by name: worker processes get its classes by value.
    parallel = Parallel(n_jobs=2, backend="loky")(delayed(lambda p: p.fit(X, y).predict(X))(pipe) for _ in range(2))
    for pred in parallel:
        np.testing.assert_array_equal(pred, serial)


def test_python_file_with_moabb_style_variables(tmp_path):
    lst = write(
        tmp_path,
        "a.py",
        "from sklearn.svm import SVC\npipelines = [{'name': 'svc', 'pipeline': SVC(C=2.0)}]\n",
    )
    one = write(
        tmp_path,
        "b.py",
        "from sklearn.svm import SVC\nPIPELINE = {'name': 'svc1', 'paradigms': ['x'], 'pipeline': SVC()}\n",
    )
    assert load_pipelines(lst)["svc"].C == 2.0
    assert list(load_pipelines(one)) == ["svc1"]
    assert sorted(load_pipelines(tmp_path)) == ["svc", "svc1"]  # a folder of files


def test_yaml_steps_cannot_reach_arbitrary_code(tmp_path):
    for name in ("os.system", "subprocess.Popen", "builtins.eval"):
        with pytest.raises(DataError, match="not allowed"):
            build_estimator(name)
    # objects re-exported by an allowed module are refused too
    with pytest.raises(DataError, match="not a class defined in"):
        build_estimator("sklearn.pipeline.defaultdict")
    with pytest.raises(DataError, match="not a class defined in"):
        build_estimator("sklearn.pipeline.make_pipeline")
    # safe_load: python-specific tags are a YAML error, not an object
    path = write(tmp_path, "evil.yml", "name: x\nsteps: [!!python/object/apply:os.system ['echo hi']]\n")
    with pytest.raises(CorruptFileError, match="invalid YAML"):
        load_pipelines(path)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("name: a\nsteps: [LDA\n", CorruptFileError, r"bad\.yml: invalid YAML at line \d+"),
        (
            "name: a\nsteps:\n  - LDA\n  - Foo\n",
            UnknownNameError,
            r"bad\.yml, pipeline 'a', step 1: unknown step class 'Foo'",
        ),
        (
            "name: a\nsteps:\n  - sklearn.nothing.Here\n",
            UnknownNameError,
            r"pipeline 'a', step 0: cannot import 'sklearn.nothing.Here'",
        ),
        (
            "name: a\nsteps:\n  - {class: SVC, params: {nope: 1}}\n",
            DataError,
            r"pipeline 'a', step 0: cannot build SVC .*nope",
        ),
        ("name: a\nsteps:\n  - {class: SVC, params: [1, 2]}\n", DataError, r"step 0: 'params' must be a mapping"),
        ("name: a\nsteps:\n  - {klass: SVC}\n", DataError, r"step 0: a step mapping needs a 'class' key"),
        ("name: a\nsteps:\n  - {class: SVC, parms: {}}\n", DataError, r"step 0: unknown step key"),
        ("name: a\nsteps:\n  - 3\n", DataError, r"step 0: a step must be a class name"),
        ("name: a\nsteps: []\n", DataError, r"pipeline 'a': 'steps' must be a non-empty list"),
        ("steps: [LDA]\n", DataError, r"entry 0 needs a non-empty string 'name'"),
        ("name: a\nsteps: [LDA]\nparams: {}\n", DataError, r"pipeline 'a': unknown key"),
        (
            "name: a\nsteps: [LDA]\n---\nname: a\nsteps: [SVC]\n",
            DataError,
            r"pipeline 'a': pipeline name defined twice",
        ),
        ("", DataError, r"no pipeline defined"),
        ("- 1\n- 2\n", DataError, r"pipeline entry 0 must be a mapping"),
    ],
)
def test_bad_yaml_files_fail_with_file_pipeline_and_step(tmp_path, text, error, message):
    path = write(tmp_path, "bad.yml", text)
    with pytest.raises(error, match=message):
        load_pipelines(path)


def test_bad_python_and_path_errors(tmp_path):
    with pytest.raises(MissingFileError, match="pipeline file not found"):
        load_pipelines(tmp_path / "missing.yml")
    with pytest.raises(DataError, match="unknown pipeline file type '.txt'"):
        load_pipelines(write(tmp_path, "p.txt", "x"))
    with pytest.raises(CorruptFileError, match="invalid Python at line 1"):
        load_pipelines(write(tmp_path, "syntax.py", "def (:\n"))
    with pytest.raises(DataError, match="defines no PIPELINES"):
        load_pipelines(write(tmp_path, "empty.py", "x = 1\n"))
    with pytest.raises(DataError, match="neither an estimator nor a callable"):
        load_pipelines(write(tmp_path, "num.py", "PIPELINES = {'a': 3}\n"))
    with pytest.raises(DataError, match="must be a dict of name -> estimator"):
        load_pipelines(write(tmp_path, "lst.py", "PIPELINES = [1]\n"))
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(DataError, match="folder holds no"):
        load_pipelines(empty)


def test_loaded_pipelines_pickle(tmp_path):
    pipes = load_pipelines(EXAMPLE)
    back = pickle.loads(pickle.dumps(pipes))
    assert {k: repr(v) for k, v in back.items()} == {k: repr(v) for k, v in pipes.items()}
