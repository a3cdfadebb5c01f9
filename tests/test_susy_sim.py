"""The SUSY event simulator: shapes, physics, feature definitions, reproducibility, the UCI format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from autograder import course_data
from autograder.datasets import susy_sim

REAL_10K = Path(os.environ.get("COURSE_DATA_DIR", "/nonexistent")) / "susy_real_10k.csv.gz"


@pytest.fixture(scope="module")
def sample():
    return susy_sim.simulate(20_000, seed=3)


@pytest.fixture(scope="module")
def raw():
    """Unnormalised features (GeV, radians) of each process."""
    return {p: susy_sim.simulate_process(5000, p, seed=4, raw=True) for p in ("chargino", "ww")}


def test_shapes_dtypes_and_signal_fraction(sample):
    X, y = sample
    assert X.shape == (20_000, 18) and X.dtype == np.float32
    assert y.shape == (20_000,) and y.dtype == np.int8
    assert set(np.unique(y)) == {0, 1}
    assert y.sum() == round(0.4553 * 20_000)
    assert np.isfinite(X).all()
    assert susy_sim.FEATURES == course_data.SUSY_FEATURES
    X, y = susy_sim.simulate(1000, signal_fraction=0.2, seed=1)
    assert y.sum() == 200
    assert susy_sim.simulate(0)[0].shape == (0, 18)


def test_reproducible_with_a_seed():
    a = susy_sim.simulate(3000, seed=11)
    b = susy_sim.simulate(3000, seed=11)
    c = susy_sim.simulate(3000, seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_physical_ranges(raw):
    for f in raw.values():
        pt1, eta1, phi1, pt2, eta2, phi2, met, met_phi, met_rel, axial, m_r, m_tr, r, mt2, s_r, m_dr, dphi, cos = f.T
        assert (pt2 > susy_sim.LEPTON_PT_MIN).all() and (pt1 >= pt2).all()  # both pass, leading first
        assert (np.abs(eta1) < 2.5).all() and (np.abs(eta2) < 2.5).all()
        assert (np.abs(np.c_[phi1, phi2, met_phi]) <= np.pi).all()
        assert (met >= 0).all() and (met_rel <= met + 1e-9).all() and (np.abs(axial) <= met + 1e-9).all()
        np.testing.assert_allclose(r, m_tr / m_r)  # R = M_TR / M_R
        assert (r >= 0).all() and (mt2 >= 0).all() and (m_dr >= 0).all() and (s_r > 0).all()
        assert ((dphi >= 0) & (dphi <= np.pi)).all() and ((cos >= 0) & (cos <= 1)).all()
        # MT2 (massless invisible) is 0 when the missing momentum lies between the leptons.
        assert 0.02 < (mt2 == 0).mean() < 0.5


def test_normalisation_like_the_uci_file(sample):
    X, _ = sample
    assert np.abs(X[:, [1, 4]]).max() < 2.5 / 1.189  # eta divided by its spread: |eta| <= ~2.1
    assert np.abs(X[:, [2, 5, 7]]).max() <= np.pi / 1.8050 + 1e-6  # phi: |phi| <= ~1.74
    energies = [0, 3, 6, 10, 11, 13, 14, 15]
    assert np.all(np.abs(X[:, energies].mean(axis=0) - 1) < 0.35)  # divided by the real file's means
    assert X[:, 17].max() <= 1  # cos(theta_r1) is not rescaled


def test_momentum_balance_and_w_masses():
    rng = np.random.default_rng(0)
    for process in ("chargino", "ww"):
        leptons, invisible, recoil = susy_sim._generate(rng, 2000, process, 250.0, 100.0)
        total = leptons.sum(axis=1)[:, 1:3] + invisible[:, 1:3] + recoil[:, 1:3]
        assert np.abs(total).max() < 1e-6  # the ISR recoil balances everything in the transverse plane
    m = susy_sim._bw_mass(rng, 100_000, 10.0, 200.0)
    assert abs(np.median(m) - susy_sim.MW) < 0.3
    assert 1.5 < np.subtract(*np.percentile(m, [75, 25])) < 3.0  # half-width ~ Gamma_W


def test_two_body_decay_conserves_four_momentum():
    rng = np.random.default_rng(1)
    parent = np.column_stack([np.full(1000, 300.0), rng.normal(0, 50, (1000, 3))])
    a, b = susy_sim._two_body(rng, parent, 80.4, 100.0)
    np.testing.assert_allclose(a + b, parent, atol=1e-9)
    def mass(p):
        return np.sqrt(p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1))

    np.testing.assert_allclose(mass(a), 80.4, rtol=1e-9)
    np.testing.assert_allclose(mass(b), 100.0, rtol=1e-9)


def test_ww_production_angle_follows_the_t_channel():
    rng = np.random.default_rng(2)
    for beta in (0.3, 0.9):
        c = susy_sim._t_channel_cos(rng, np.full(200_000, beta))
        hist, edges = np.histogram(c, bins=10, range=(-1, 1), density=True)
        x = np.linspace(-1, 1, 200_001)
        d = 0.5 * (1 + beta**2)
        f = (1 - x**2) / (d - beta * x) ** 2
        f /= np.trapezoid(f, x)
        expected = [f[(x >= lo) & (x < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]
        np.testing.assert_allclose(hist, expected, rtol=0.05, atol=0.01)


def test_mt2_package_and_numpy_fallback_agree(raw):
    f = raw["ww"][:400]
    def px(pt, phi):
        return pt * np.cos(phi), pt * np.sin(phi)

    l1, l2, met = px(f[:, 0], f[:, 2]), px(f[:, 3], f[:, 5]), px(f[:, 6], f[:, 7])
    pytest.importorskip("mt2")
    fallback = susy_sim._mt2_dual(*l1, *l2, *met)
    np.testing.assert_allclose(fallback[f[:, 13] > 0], f[f[:, 13] > 0, 13], atol=0.01)
    assert (fallback[f[:, 13] == 0] < 0.01).all()


def test_signal_and_background_differ(sample):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X, y = sample
    model = LogisticRegression(max_iter=500).fit(X[:10_000], y[:10_000])
    assert roc_auc_score(y[10_000:], model.decision_function(X[10_000:])) > 0.7
    # Chargino pairs are heavier: harder leptons and more missing energy than WW.
    assert np.median(X[y == 1, 0]) > 1.3 * np.median(X[y == 0, 0])
    assert np.median(X[y == 1, 6]) > 1.3 * np.median(X[y == 0, 6])


def test_masses_change_the_signal():
    light = susy_sim.simulate_process(3000, "chargino", seed=1, chargino_mass=150, neutralino_mass=0)
    heavy = susy_sim.simulate_process(3000, "chargino", seed=1, chargino_mass=400, neutralino_mass=100)
    assert np.median(heavy[:, 14]) > 1.5 * np.median(light[:, 14])  # S_R follows the pair's mass
    with pytest.raises(ValueError):
        susy_sim.simulate(10, chargino_mass=100, neutralino_mass=200)


@pytest.mark.parametrize("name", ["sim.csv", "sim.csv.gz"])
def test_uci_csv_round_trip(tmp_path, name):
    X, y = susy_sim.simulate(500, seed=9)
    path = tmp_path / name
    susy_sim.write_uci_csv(path, X, y)
    first = (gzip_open(path) if name.endswith(".gz") else open(path, "rb")).readline().decode()
    assert first.count(",") == 18 and first.split(",")[0] in ("0.000000000000000000e+00", "1.000000000000000000e+00")
    X2, y2 = course_data.read_susy_file(path, cache=False)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def gzip_open(path):
    import gzip

    return gzip.open(path, "rb")


@pytest.mark.skipif(not REAL_10K.exists(), reason="real SUSY sample not available; set COURSE_DATA_DIR")
def test_spectra_near_the_real_events(sample):
    """A loose check only; docs/susy_sim_realism.md measures the differences properly."""
    real, labels = course_data.read_susy_file(REAL_10K, cache=False)
    X, y = sample
    for j in (0, 3, 6, 10, 14):  # lepton pTs, MET, M_R, S_R
        for c in (0, 1):
            ratio = np.median(X[y == c, j]) / np.median(real[labels == c, j])
            assert 0.8 < ratio < 1.25, (susy_sim.FEATURES[j], c, ratio)
