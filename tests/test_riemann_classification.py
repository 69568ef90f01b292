"""Riemannian classifiers: parity with pyRiemann 0.12, interoperability, scikit-learn API, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks

from neuroenc.errors import LabelError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.riemann import FGDA, MDM, Covariances, FgMDM, TangentSpace, TSClassifier

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyriemann.classification import MDM as PrMDM
    from pyriemann.classification import FgMDM as PrFgMDM
    from pyriemann.classification import TSClassifier as PrTSClassifier
    from pyriemann.estimation import Covariances as PrCovariances
    from pyriemann.tangentspace import FGDA as PrFGDA

TOL = 1e-8


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def physionet(data_dir):
    from neuroenc.datasets import load_physionet_mi

    epochs = load_physionet_mi(subject=1, task="imagery_lr", data_dir=data_dir, l_freq=8.0, h_freq=30.0)
    return epochs.data, epochs.obs["condition"].to_numpy()


@pytest.fixture(scope="module")
def physionet_covs(physionet):
    """Covariances of all 64 channels (V^2), as numpy computes them."""
    X, y = physionet
    Xc = X - X.mean(axis=-1, keepdims=True)
    return Xc @ Xc.transpose(0, 2, 1) / X.shape[-1], y


@pytest.fixture(scope="module")
def physionet_covs16(physionet_covs):
    """16 channels: FGDA fits a shrinkage LDA on n (n + 1) / 2 features, slow at 64 channels (2080)."""
    C, y = physionet_covs
    keep = np.arange(0, 64, 4)
    return C[:, keep][:, :, keep], y


def synthetic_three_classes(seed: int = 0, n_per_class: int = 20, n: int = 6):
    """Covariances of three classes that differ by a channel-gain pattern."""
    rng = np.random.default_rng(seed)
    covs, labels = [], []
    for k, name in enumerate(["a", "b", "c"]):
        gain = np.ones(n)
        gain[k] = 2.0
        S = rng.standard_normal((n_per_class, n, 4 * n)) * gain[:, None]
        covs.append(S @ S.transpose(0, 2, 1) / (4 * n))
        labels += [name] * n_per_class
    order = rng.permutation(3 * n_per_class)
    return np.concatenate(covs)[order], np.array(labels)[order]


def pairs():
    """(neuroenc, pyRiemann) estimator pairs with the same settings."""
    return [
        (MDM(), PrMDM()),
        (MDM(metric="logeuclid"), PrMDM(metric="logeuclid")),
        (
            MDM(metric={"mean": "logeuclid", "distance": "riemann"}),
            PrMDM(metric={"mean": "logeuclid", "distance": "riemann"}),
        ),
        (MDM(metric="wasserstein"), PrMDM(metric="wasserstein")),
        (MDM(metric="kullback_sym"), PrMDM(metric="kullback_sym")),
        (FgMDM(), PrFgMDM()),
        (TSClassifier(), PrTSClassifier()),
        (
            TSClassifier(metric="logeuclid", clf=LDA(solver="lsqr", shrinkage="auto")),
            PrTSClassifier(metric="logeuclid", clf=LDA(solver="lsqr", shrinkage="auto")),
        ),
    ]


PAIR_IDS = ["mdm", "mdm-logeuclid", "mdm-dict", "mdm-wasserstein", "mdm-kullback", "fgmdm", "ts-lr", "ts-lda"]


def check_same_predictions(ours, ref, X_train, y_train, X_test, w=None):
    kwargs = {} if w is None else {"sample_weight": w}
    ours.fit(X_train, y_train, **kwargs)
    ref.fit(X_train, y_train, **kwargs)
    assert np.array_equal(ours.classes_, ref.classes_)
    assert np.array_equal(ours.predict(X_test), ref.predict(X_test))
    assert rel(ours.predict_proba(X_test), ref.predict_proba(X_test)) < TOL
    if hasattr(ref, "transform"):
        assert rel(ours.transform(X_test), ref.transform(X_test)) < TOL


@pytest.mark.parametrize("i", range(len(pairs())), ids=PAIR_IDS)
def test_parity_physionet(physionet_covs, physionet_covs16, i):
    ours, ref = pairs()[i]
    C, y = physionet_covs16 if isinstance(ours, FgMDM) else physionet_covs
    check_same_predictions(ours, ref, C[::2], y[::2], C[1::2])


@pytest.mark.parametrize("i", range(len(pairs())), ids=PAIR_IDS)
def test_parity_synthetic_three_classes_weighted(i):
    X, y = synthetic_three_classes()
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    ours, ref = pairs()[i]
    check_same_predictions(ours, ref, X[:40], y[:40], X[40:], w[:40])


def test_mdm_predict_proba_definition(physionet_covs):
    C, y = physionet_covs
    mdm = MDM().fit(C, y)
    d = mdm.transform(C)
    expected = np.exp(-(d**2) - (-(d**2)).max(axis=1, keepdims=True))
    assert rel(mdm.predict_proba(C), expected / expected.sum(axis=1, keepdims=True)) < 1e-13
    assert np.array_equal(mdm.predict(C), mdm.classes_[d.argmin(axis=1)])


def test_fgda_parity(physionet_covs16):
    C, y = physionet_covs16
    ours = FGDA().fit(C[:30], y[:30])
    ref = PrFGDA().fit(C[:30], y[:30])
    assert rel(ours.transform(C[30:]), ref.transform(C[30:])) < TOL
    assert rel(FGDA().fit_transform(C, y), PrFGDA().fit_transform(C, y)) < TOL
    X3, y3 = synthetic_three_classes(2)
    assert rel(FGDA(metric="logeuclid").fit_transform(X3, y3), PrFGDA(metric="logeuclid").fit_transform(X3, y3)) < TOL


def test_neuroenc_and_pyriemann_covariances_interchange(physionet):
    """A neuroenc covariance feeds a pyRiemann classifier and a pyRiemann covariance a neuroenc one."""
    X, y = physionet
    X = X[:, ::4]  # 16 channels (FgMDM's LDA)
    ours_cov = Covariances("oas").fit_transform(X)
    ref_cov = PrCovariances("oas").fit_transform(X)
    assert rel(ours_cov, ref_cov) < TOL
    for ours, ref in [(MDM(), PrMDM()), (TSClassifier(), PrTSClassifier()), (FgMDM(), PrFgMDM())]:
        a = make_pipeline(Covariances("oas"), clone(ref)).fit(X[::2], y[::2])  # neuroenc -> pyRiemann
        b = make_pipeline(PrCovariances("oas"), clone(ours)).fit(X[::2], y[::2])  # pyRiemann -> neuroenc
        assert np.array_equal(a.predict(X[1::2]), b.predict(X[1::2]))
        assert rel(a.predict_proba(X[1::2]), b.predict_proba(X[1::2])) < TOL
    # neuroenc outputs are plain SPD arrays: FGDA-filtered matrices into pyRiemann's MDM
    filtered = FGDA().fit_transform(ours_cov, y)
    assert rel(PrMDM().fit(filtered, y).transform(filtered), MDM().fit(filtered, y).transform(filtered)) < TOL


# --------------------------------------------------------------------------- scikit-learn API

ESTIMATORS = [MDM(), FgMDM(), TSClassifier(), FGDA(), TangentSpace()]
ESTIMATOR_IDS = ["MDM", "FgMDM", "TSClassifier", "FGDA", "TangentSpace"]

# The checks that do not need 2-D (n_samples, n_features) data: check_estimator as a whole
# feeds tabular data, which SPD estimators reject by design.
API_CHECKS = [
    "check_get_params_invariance",
    "check_set_params",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_sklearn_api_checks(estimator, check):
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_unfitted_estimators_raise_not_fitted(estimator):
    X, _ = synthetic_three_classes(3, n_per_class=4)
    method = "predict" if hasattr(estimator, "predict") else "transform"
    with pytest.raises(NotFittedError):
        getattr(clone(estimator), method)(X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_fit_returns_self_and_is_idempotent(estimator):
    X, y = synthetic_three_classes(4, n_per_class=8)
    est = clone(estimator)
    assert est.fit(X, y) is est
    method = "predict_proba" if hasattr(est, "predict_proba") else "transform"
    first = getattr(est, method)(X)
    second = getattr(est.fit(X, y), method)(X)
    assert np.array_equal(first, second)
    assert est.n_features_in_ == X.shape[-1]


def test_clone_get_set_params():
    mdm = MDM(metric={"mean": "logeuclid", "distance": "riemann"}, n_jobs=1)
    twin = clone(mdm)
    assert twin.get_params() == {"metric": {"mean": "logeuclid", "distance": "riemann"}, "n_jobs": 1}
    twin.set_params(metric="logeuclid")
    assert twin.metric == "logeuclid" and mdm.metric == {"mean": "logeuclid", "distance": "riemann"}
    ts = TSClassifier(clf=LogisticRegression(C=0.5))
    assert ts.get_params()["clf__C"] == 0.5
    ts.set_params(clf__C=2.0)
    assert ts.clf.C == 2.0
    X, y = synthetic_three_classes(5)
    ts.fit(X, y)
    assert ts.clf_ is not ts.clf and not hasattr(ts.clf, "coef_")  # the given classifier stays unfitted
    assert clone(TSClassifier()).get_params()["clf"] is None


def test_pipeline_and_grid_search_over_metric(physionet):
    X, y = physionet
    pipe = make_pipeline(Covariances("oas"), MDM())
    grid = GridSearchCV(pipe, {"mdm__metric": ["riemann", "logeuclid", "euclid"]}, cv=StratifiedKFold(3))
    grid.fit(X, y)
    assert grid.best_params_["mdm__metric"] in ("riemann", "logeuclid", "euclid")
    assert grid.predict(X).shape == (len(X),)
    ts = GridSearchCV(
        make_pipeline(Covariances("oas"), TSClassifier(clf=LogisticRegression())),
        {"tsclassifier__metric": ["riemann", "logeuclid"], "tsclassifier__clf__C": [0.1, 1.0]},
        cv=StratifiedKFold(3),
    ).fit(X, y)
    assert set(ts.cv_results_["param_tsclassifier__metric"]) == {"riemann", "logeuclid"}
    scores = cross_val_score(make_pipeline(Covariances("oas"), FgMDM()), X, y, cv=StratifiedKFold(3))
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    assert 0.0 <= make_pipeline(Covariances("oas"), MDM()).fit(X, y).score(X, y) <= 1.0


# --------------------------------------------------------------------------- bad input


def test_classifier_bad_input():
    X, y = synthetic_three_classes(6, n_per_class=5)
    for est in (MDM(), FgMDM(), TSClassifier(), FGDA()):
        with pytest.raises(LabelError, match="y has 14 entries but there are 15 matrices"):
            clone(est).fit(X, y[:-1])
        with pytest.raises(LabelError, match="1-D"):
            clone(est).fit(X, y[:, None])
        bad = X.copy()
        bad[7] = -bad[7]
        with pytest.raises(NotSPDError, match=r"X\[7\] is not positive definite"):
            clone(est).fit(bad, y)
        fitted = clone(est).fit(X, y)
        method = "predict" if hasattr(est, "predict") else "transform"
        with pytest.raises(ShapeError, match="fitted on 6 x 6"):
            getattr(fitted, method)(X[:, :4, :4])
        with pytest.raises(ShapeError):
            getattr(fitted, method)(X[0])
    with pytest.raises(UnknownNameError, match="'riemann', 'logeuclid'"):
        MDM(metric="riemannian").fit(X, y)
    with pytest.raises(ShapeError, match="missing \\['distance'\\]"):
        MDM(metric={"mean": "riemann"}).fit(X, y)
    with pytest.raises(UnknownNameError, match="tangent-space metric"):
        TSClassifier(metric="logdet").fit(X, y)
    with pytest.raises(TypeError, match="clf must be a scikit-learn classifier"):
        TSClassifier(clf=TangentSpace()).fit(X, y)
    with pytest.raises(LabelError, match="two classes"):
        FGDA().fit(X, np.zeros(len(X)))
    with pytest.raises(LabelError, match="sample_weight has 3 entries"):
        MDM().fit(X, y, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match="features"):
        TangentSpace().fit(X).inverse_transform(np.ones((2, 5)))
