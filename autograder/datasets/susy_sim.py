"""Offline simulator of the UCI SUSY benchmark: chargino pairs against WW, both to two leptons.

It follows the recipe behind the UCI data set (Baldi, Sadowski, Whiteson 2014) at parton level, with
numpy only and every step vectorised over events:

* production at an 8 TeV pp collider: the pair's invariant mass and rapidity come from a q-qbar
  parton luminosity (simple valence + sea PDF shapes) times the partonic cross-section: s-channel
  fermion pair (``beta (3 - beta^2) / 2 / s``) for charginos, the t-channel ``log`` rise for WW
  (falling as ``s^-WW_SIGMA_POWER``); production angles from the matching matrix elements; transverse recoil from initial-state
  radiation;
* two-body decays in the parent's rest frame, boosted back: chargino -> W neutralino, W -> l nu or
  W -> tau nu with tau -> l nu nu (Michel spectrum); W masses from a relativistic Breit-Wigner;
* a detector: lepton resolution and efficiency, |eta| < 2.5 and pT > 20 GeV for both leptons,
  jets from the recoil, missing transverse momentum rebuilt from what was seen plus soft-term noise;
* the 18 features of the UCI file with the paper's definitions (razor, MT2, super-razor, MET_rel,
  axial MET), divided by the scales the UCI file uses (see ``UCI_SCALE``).

    X, y = simulate(100_000, seed=1)          # float32 (n, 18), int8 labels
    write_uci_csv("susy_sim.csv.gz", X, y)    # the UCI format: label first, %.18e, no header

MT2 uses the ``mt2`` package (Lester & Nachman's bisection) when it is installed, else a slower
numpy solution (the whole simulation then runs at about 45k instead of 120k events/s). What this
simulator leaves out is measured in ``docs/susy_sim_realism.md`` (``bench/susy_realism.py``).
"""

from __future__ import annotations

import functools
import gzip
import os

import numpy as np

# Physics constants (GeV).
SQRT_S = 8000.0
MW, GAMMA_W = 80.385, 2.085
MTAU = 1.777
TAU_TO_LEPTON = 0.352  # BR(tau -> e or mu + 2 nu)

# Benchmark defaults. The paper does not print its masses; these reproduce the real events' lepton
# and missing-energy spectra best among the points tried (see docs/susy_sim_realism.md).
CHARGINO_MASS = 250.0
NEUTRALINO_MASS = 100.0
SIGNAL_FRACTION = 0.4553
# Effective fall of q qbar -> WW with energy: sigma ~ log((1+b)/(1-b)) / s_hat^WW_SIGMA_POWER. Pure
# t-channel exchange gives power 1; the s-channel interference that restores unitarity makes the
# real cross-section fall faster above threshold. 1.5 matches the real events best (1 to 2 tried).
WW_SIGMA_POWER = 1.5

# Detector (ATLAS-like, as in Delphes' card).
LEPTON_PT_MIN = 20.0
LEPTON_ETA_MAX = 2.5
JET_PT_MIN = 25.0
JET_ETA_MAX = 4.5
# Radiation and soft activity: the two knobs a generator tune would set, chosen against the real
# events (docs/susy_sim_realism.md). The real events' recoil |pT(ll) + MET| is large (median 42 GeV
# for WW) and mostly measurement noise: leptons end up isotropic about the recoil in the R frame
# (dPhi_r_b), which true radiation would not do.
ISR_SCALE = 0.07  # Q0 = ISR_SCALE * sqrt(s_hat), see _isr_pt
ISR_POWER = 1.9
SOFT_RESOLUTION = 2.0  # GeV^(1/2): sigma(MET_x) = SOFT_RESOLUTION * sqrt(sum ET)
UNDERLYING_SUM_ET = 200.0  # GeV, mean scalar sum of the soft activity (underlying event, pile-up)

FEATURES = (
    "lepton 1 pT", "lepton 1 eta", "lepton 1 phi", "lepton 2 pT", "lepton 2 eta", "lepton 2 phi",
    "missing energy magnitude", "missing energy phi", "MET_rel", "axial MET", "M_R", "M_TR_2", "R",
    "MT2", "S_R", "M_Delta_R", "dPhi_r_b", "cos(theta_r1)",
)

# How the UCI file normalises each raw feature: (raw - UCI_OFFSET) / UCI_SCALE. Energies are in GeV;
# eta and phi are divided by their spread; axial MET (which can be negative) is standardised;
# dPhi_r_b (radians) is divided by its mean; cos(theta_r1) is left as it is. The values were
# recovered from the real events: the high-level features are exact functions of the low-level
# ones (R = M_TR/M_R; the razor and super-razor masses scale linearly with the momenta), which
# fixes every ratio, and both leptons' 20 GeV pT threshold fixes the absolute scale.
UCI_SCALE = np.array([
    78.52, 1.1893, 1.8111, 46.66, 1.2140, 1.8111, 87.63, 1.8050, 58.37, 87.14,
    150.1, 73.72, 0.5534, 33.43, 299.1, 44.92, 1.9734, 1.0,
])
UCI_OFFSET = np.zeros(18)
UCI_OFFSET[9] = -27.59


# ---------------------------------------------------------------------------------------------
# Four-vector helpers: arrays (..., 4) ordered (E, px, py, pz).

def _boost(p, beta):
    """Boost four-vectors ``p`` by velocity ``beta`` (..., 3) (ROOT's TLorentzVector::Boost)."""
    b2 = np.sum(beta * beta, axis=-1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p[..., 1:], axis=-1)
    safe = np.where(b2 > 0, b2, 1.0)
    g2 = np.where(b2 > 0, (gamma - 1.0) / safe, 0.0)
    out = np.empty_like(p)
    out[..., 0] = gamma * (p[..., 0] + bp)
    out[..., 1:] = p[..., 1:] + (g2 * bp + gamma * p[..., 0])[..., None] * beta
    return out


def _two_body(rng, parent, m1, m2):
    """Decay ``parent`` isotropically in its rest frame into masses m1, m2 (scalars or per-event
    arrays); return both daughters boosted back to the parent's frame."""
    n = len(parent)
    m1 = np.broadcast_to(np.asarray(m1, dtype=float), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=float), (n,))
    M = np.sqrt(np.maximum(parent[:, 0] ** 2 - np.sum(parent[:, 1:] ** 2, axis=1), 0.0))
    lam = (M**2 - (m1 + m2) ** 2) * (M**2 - (m1 - m2) ** 2)
    p = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * M)
    d = _isotropic(rng, n) * p[:, None]
    a = np.column_stack([np.sqrt(p**2 + m1**2), d])
    b = np.column_stack([np.sqrt(p**2 + m2**2), -d])
    beta = parent[:, 1:] / parent[:, :1]
    return _boost(a, beta), _boost(b, beta)


def _isotropic(rng, n):
    """Unit vectors uniform on the sphere, (n, 3)."""
    cos = rng.uniform(-1.0, 1.0, n)
    sin = np.sqrt(1.0 - cos**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    return np.column_stack([sin * np.cos(phi), sin * np.sin(phi), cos])


def _bw_mass(rng, n, lo, hi):
    """W masses from a relativistic Breit-Wigner in m^2, truncated to [lo, hi] (arrays allowed)."""
    mg = MW * GAMMA_W
    a = np.arctan((np.asarray(lo) ** 2 - MW**2) / mg)
    b = np.arctan((np.asarray(hi) ** 2 - MW**2) / mg)
    return np.sqrt(MW**2 + mg * np.tan(a + (b - a) * rng.random(n)))


# ---------------------------------------------------------------------------------------------
# Production.

def _xq(x):
    """Rough momentum densities x*f(x) at Q ~ 100 GeV: (u, ubar, d, dbar, s, sbar)."""
    sea = 0.14 * x**-0.22 * (1.0 - x) ** 7.5
    uv = 1.9 * x**0.62 * (1.0 - x) ** 3.4
    dv = 0.75 * x**0.62 * (1.0 - x) ** 4.4
    return uv + sea, sea, dv + 1.05 * sea, 1.05 * sea, 0.55 * sea, 0.55 * sea


@functools.lru_cache(maxsize=16)
def _production_grid(process: str, mass: float, ww_power: float = 1.0):
    """Tabulate d(sigma)/d(ln s_hat)/dy on a grid; return (cdf, ln s_hat edges, y edges, P(quark from proton 1))."""
    s = SQRT_S**2
    threshold = 2.0 * mass
    lo = np.log(threshold**2 * (1.0001 if process == "chargino" else 0.92))
    ln_shat = np.linspace(lo, np.log(min(6000.0, SQRT_S) ** 2), 321)
    y = np.linspace(-5.0, 5.0, 201)
    lc, yc = 0.5 * (ln_shat[1:] + ln_shat[:-1]), 0.5 * (y[1:] + y[:-1])
    shat = np.exp(lc)[:, None]
    tau = shat / s
    x1, x2 = np.sqrt(tau) * np.exp(yc), np.sqrt(tau) * np.exp(-yc)
    ok = (x1 < 1) & (x2 < 1)
    x1c, x2c = np.where(ok, x1, 0.5), np.where(ok, x2, 0.5)
    f1, f2 = _xq(x1c), _xq(x2c)
    # q from proton 1 and qbar from proton 2, or the other way round (u, d, s alike: W and Z couple
    # to all; per-flavour couplings change the rate, hardly the shapes).
    forward = sum(f1[i] * f2[i + 1] for i in (0, 2, 4))
    backward = sum(f1[i + 1] * f2[i] for i in (0, 2, 4))
    beta = np.sqrt(np.clip(1.0 - threshold**2 / shat, 0.0, 1.0))
    if process == "chargino":
        sigma = beta * (3.0 - beta**2) / 2.0 / shat  # spin-1/2 pair through a vector current
    else:
        # q qbar -> W+W-: the t-channel quark exchange gives the log rise above threshold; the
        # s-channel interference a faster fall (ww_power, see WW_SIGMA_POWER).
        sigma = np.log((1.0 + beta) / np.maximum(1.0 - beta, 1e-12)) / shat**ww_power
    # In (ln s_hat, y): dx1 dx2 f(x1) f(x2) = d ln s_hat dy (x1 f1)(x2 f2).
    w = np.where(ok, (forward + backward) * sigma, 0.0)
    cdf = np.cumsum(w.ravel())
    cdf /= cdf[-1]
    p_forward = np.where(ok, forward / np.maximum(forward + backward, 1e-300), 0.5)
    return cdf, ln_shat, y, p_forward


def _sample_production(rng, n, process, mass):
    """Sample the pair's s_hat, rapidity and whether the quark came from proton 1."""
    cdf, ln_shat, y, p_forward = _production_grid(process, float(mass), float(WW_SIGMA_POWER))
    cell = np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)
    i, j = np.divmod(cell, len(y) - 1)
    ln_s = ln_shat[i] + (ln_shat[i + 1] - ln_shat[i]) * rng.random(n)
    rap = y[j] + (y[j + 1] - y[j]) * rng.random(n)
    quark_fwd = rng.random(n) < p_forward[i, j]
    return np.exp(ln_s), rap, quark_fwd


def _production_cos(rng, beta, process):
    """cos(theta*) of the first parent relative to the incoming quark."""
    if process == "chargino":
        # q qbar -> gamma*/Z -> chi+ chi-: 2 - b^2 + b^2 c^2 (1 + c^2 for massless, flat at threshold).
        n = len(beta)
        out = np.empty(n)
        todo = np.arange(n)
        while len(todo):
            c = rng.uniform(-1.0, 1.0, len(todo))
            b = beta[todo]
            keep = rng.random(len(todo)) * 2.0 < 2.0 - b**2 + b**2 * c**2
            out[todo[keep]] = c[keep]
            todo = todo[~keep]
        return out
    return _t_channel_cos(rng, beta)


def _t_channel_cos(rng, beta):
    """cos(theta*) for q qbar -> W W through t-channel quark exchange, by inverting the CDF.

    |M|^2 ~ (u t - mW^4) / t^2 = s pT^2 / t^2, i.e. f(c) = (1 - c^2) / (D - b c)^2 with
    D = (1 + b^2) / 2: Ws go forward, more so the higher the energy. With u = D - b c the integral
    of f is known in closed form, G(u) = (D^2/b^2 - 1)/u + 2 D ln(u)/b^2 - u/b^2, and
    the CDF is (G(u(-1)) - G(u(c))) / b, inverted by bisection.
    """
    b = np.clip(beta, 0.02, 0.999999)
    d = 0.5 * (1.0 + b**2)

    def g(c):
        u = d - b * c
        return (d**2 / b**2 - 1.0) / u + 2.0 * d * np.log(u) / b**2 - u / b**2

    g_lo = g(-1.0)
    target = (g_lo - g(1.0)) * rng.random(len(b))
    lo, hi = -np.ones(len(b)), np.ones(len(b))
    for _ in range(45):
        mid = 0.5 * (lo + hi)
        below = (g_lo - g(mid)) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _isr_pt(rng, shat):
    """Transverse momentum of the pair from initial-state radiation (GeV).

    dN/dpT^2 ~ 1/(pT^2 + Q0^2)^ISR_POWER: flat below Q0 (soft emissions resummed), a power law
    above (hard emissions); Q0 grows with the hard scale sqrt(s_hat) (more phase space to radiate).
    """
    q0 = ISR_SCALE * np.sqrt(shat)
    u = rng.random(len(shat))
    return q0 * np.sqrt(np.maximum(u, 1e-12) ** (-1.0 / (ISR_POWER - 1.0)) - 1.0)


# ---------------------------------------------------------------------------------------------
# Decays.

def _w_to_lepton(rng, w):
    """W -> l nu, with 15% of leptons coming through W -> tau nu, tau -> l nu nu.

    Among dilepton final states each W gives e or mu directly (BR 2 x 10.8%) or through a tau
    (10.8% x 35.2%): P(tau) = 0.038/0.254. W polarisation is left out: decays are isotropic in
    the W rest frame. Returns (visible lepton, total invisible momentum).
    """
    n = len(w)
    via_tau = rng.random(n) < (0.108 * TAU_TO_LEPTON) / (0.216 + 0.108 * TAU_TO_LEPTON)
    m_l = np.where(via_tau, MTAU, 0.0)
    lep, nu = _two_body(rng, w, m_l, 0.0)
    if via_tau.any():
        tau = lep[via_tau]
        # tau -> l nu nu: lepton energy fraction x = 2E/m_tau from the (unpolarised) Michel
        # spectrum 2 x^2 (3 - 2x), isotropic in the tau rest frame.
        k = int(via_tau.sum())
        x = _michel(rng, k)
        e = 0.5 * MTAU * x
        l_rest = np.column_stack([e, e[:, None] * _isotropic(rng, k)])
        l_lab = _boost(l_rest, tau[:, 1:] / tau[:, :1])
        nu[via_tau] += tau - l_lab
        lep[via_tau] = l_lab
    return lep, nu


def _michel(rng, n):
    """Sample x in [0, 1] from 2 x^2 (3 - 2x) by accept-reject (max 2 at x = 1)."""
    out = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        x = rng.random(len(todo))
        keep = rng.random(len(todo)) * 2.0 < 2.0 * x**2 * (3.0 - 2.0 * x)
        out[todo[keep]] = x[keep]
        todo = todo[~keep]
    return out


def _pair_in_cm(rng, shat, m1, m2, cos):
    """Parents of masses m1, m2 back to back in the partonic frame at angle theta to the z axis."""
    n = len(shat)
    rs = np.sqrt(shat)
    lam = (shat - (m1 + m2) ** 2) * (shat - (m1 - m2) ** 2)
    p = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * rs)
    sin = np.sqrt(1.0 - cos**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    d = np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1) * p[:, None]
    a = np.column_stack([np.sqrt(p**2 + m1**2), d])
    b = np.column_stack([np.sqrt(p**2 + m2**2), -d])
    return a, b


def _generate(rng, n, process, m_chi, m_lsp):
    """Generate n parton-level events; return leptons (n,2,4), invisible sum (n,4), recoil (n,4)."""
    mass = m_chi if process == "chargino" else MW
    shat, rap, quark_fwd = _sample_production(rng, n, process, mass)
    rs = np.sqrt(shat)
    if process == "chargino":
        m1 = m2 = np.full(n, float(m_chi))
    else:
        # Off-shell W pairs: both masses from the Breit-Wigner, within the available energy.
        m1 = _bw_mass(rng, n, 10.0, np.minimum(rs - 10.0, 200.0))
        m2 = _bw_mass(rng, n, 10.0, np.minimum(rs - m1, 200.0))
    beta = np.sqrt(np.clip((shat - (m1 + m2) ** 2) * (shat - (m1 - m2) ** 2), 0, None)) / shat
    cos = _production_cos(rng, beta, process)
    cos = np.where(quark_fwd, cos, -cos)
    a, b = _pair_in_cm(rng, shat, m1, m2, cos)

    invisible = np.zeros((n, 4))
    leptons = []
    for parent in (a, b):
        if process == "chargino":
            # chi+ -> W+ chi0: the W mass is limited by m_chi - m_chi0 (off-shell when compressed).
            mw = _bw_mass(rng, n, 10.0, max(m_chi - m_lsp - 0.01, 10.5))
            w, lsp = _two_body(rng, parent, mw, m_lsp)
            invisible += lsp
        else:
            w = parent
        lep, nu = _w_to_lepton(rng, w)
        invisible += nu
        leptons.append(lep)
    leptons = np.stack(leptons, axis=1)

    # Initial-state radiation gives the pair transverse momentum: boost the whole final state
    # transversely (the pair keeps its mass), then longitudinally with the pair's rapidity.
    pt = _isr_pt(rng, shat)
    phi = rng.uniform(-np.pi, np.pi, n)
    et = np.sqrt(shat + pt**2)
    bt = np.column_stack([pt * np.cos(phi) / et, pt * np.sin(phi) / et, np.zeros(n)])
    bz = np.column_stack([np.zeros(n), np.zeros(n), np.tanh(rap)])
    leptons = _boost(_boost(leptons, bt[:, None, :]), bz[:, None, :])
    invisible = _boost(_boost(invisible, bt), bz)
    # The recoiling radiation, at a rapidity near the pair's.
    recoil_eta = rap + rng.normal(0.0, 1.6, n)
    recoil = np.column_stack([pt * np.cosh(recoil_eta), -pt * np.cos(phi), -pt * np.sin(phi), pt * np.sinh(recoil_eta)])
    return leptons, invisible, recoil


# ---------------------------------------------------------------------------------------------
# Detector.

def _pt_eta_phi(p):
    pt = np.hypot(p[..., 1], p[..., 2])
    eta = np.arcsinh(p[..., 3] / np.maximum(pt, 1e-12))
    phi = np.arctan2(p[..., 2], p[..., 1])
    return pt, eta, phi


def _detector(rng, leptons, recoil):
    """Smear, select and rebuild what the detector sees.

    Returns massless leptons (m, 2, 4) leading first, the missing momentum (m, 2), the recoil jet
    (m, 4), whether that jet is reconstructed (m,), and which of the n events were kept (n,).
    """
    n = len(leptons)
    pt, eta, phi = _pt_eta_phi(leptons)
    muon = rng.random((n, 2)) < 0.5
    e = pt * np.cosh(eta)
    # Electrons: calorimeter, sigma_E/E = 10%/sqrt(E) (+) 0.7%; muons: tracker, 1.5% (+) 0.01%/GeV.
    sig_e = np.sqrt((0.10 / np.sqrt(np.maximum(e, 1.0))) ** 2 + 0.007**2)
    sig_m = np.sqrt(0.015**2 + (1e-4 * pt) ** 2)
    pt = pt * np.maximum(1.0 + rng.normal(0.0, 1.0, (n, 2)) * np.where(muon, sig_m, sig_e), 0.05)
    eff = np.where(muon, 0.95, np.where(np.abs(eta) < 1.5, 0.95, 0.85))
    seen = (rng.random((n, 2)) < eff) & (np.abs(eta) < LEPTON_ETA_MAX) & (pt > LEPTON_PT_MIN)
    keep = seen.all(axis=1)
    pt, eta, phi = pt[keep], eta[keep], phi[keep]
    # Leading lepton first.
    swap = pt[:, 1] > pt[:, 0]
    for a in (pt, eta, phi):
        a[swap] = a[swap][:, ::-1]
    lep = np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)

    m = int(keep.sum())
    rec = recoil[keep]
    rpt, reta, rphi = _pt_eta_phi(rec)
    # Hadronic recoil measured with jet resolution (sigma/pT = 100%/sqrt(pT) (+) 5%) ...
    rpt_reco = rpt * np.maximum(1.0 + rng.normal(0.0, 1.0, m) * np.sqrt(1.0 / np.maximum(rpt, 1.0) + 0.05**2), 0.0)
    rphi = rphi + rng.normal(0.0, 0.05, m)
    rx, ry = rpt_reco * np.cos(rphi), rpt_reco * np.sin(rphi)
    # ... plus the soft term (underlying event): Gaussian per component, k sqrt(sum ET).
    sum_et = 2.0 * rpt + rng.gamma(3.0, UNDERLYING_SUM_ET / 3.0, m)
    soft = rng.normal(0.0, 1.0, (m, 2)) * (SOFT_RESOLUTION * np.sqrt(sum_et))[:, None]
    # Missing transverse momentum: minus everything seen (the neutrinos and neutralinos balance
    # the leptons and the recoil, so nothing else is needed).
    met_xy = -(lep[:, :, 1:3].sum(axis=1) + np.column_stack([rx, ry]) + soft)
    jet = np.column_stack([rpt_reco * np.cosh(reta), rx, ry, rpt_reco * np.sinh(reta)])
    jet_ok = (rpt_reco > JET_PT_MIN) & (np.abs(reta) < JET_ETA_MAX)
    return lep, met_xy, jet, jet_ok, keep


# ---------------------------------------------------------------------------------------------
# Features.

def _dphi(a, b):
    return np.abs((a - b + np.pi) % (2.0 * np.pi) - np.pi)


def mt2_massless(l1x, l1y, l2x, l2y, mx, my):
    """MT2 for massless visible and invisible particles, vectorised.

    Uses the ``mt2`` package (Lester & Nachman's bisection, compiled) when installed, else the
    slower numpy solution of the dual problem (``_mt2_dual``); both agree to 0.01 GeV.
    """
    try:
        from mt2 import mt2
    except ImportError:
        out = _mt2_dual(l1x, l1y, l2x, l2y, mx, my)
    else:
        out = mt2(0.0, l1x, l1y, 0.0, l2x, l2y, mx, my, 0.0, 0.0)
    # Exactly zero when the missing momentum lies between the leptons (pmiss = a p1 + b p2 with
    # a, b >= 0: each invisible particle can be collinear with its lepton), as in the UCI file.
    det = l1x * l2y - l1y * l2x
    safe = np.where(det != 0, det, 1.0)
    a = (mx * l2y - my * l2x) / safe
    b = (l1x * my - l1y * mx) / safe
    return np.where((det != 0) & (a >= 0) & (b >= 0), 0.0, out)


def _mt2_dual(l1x, l1y, l2x, l2y, mx, my, iterations=60):
    """MT2 for massless particles without the ``mt2`` package, through the dual problem.

    mT^2(p, q) = 2(|p||q| - p.q) is the support function of the disc of radius 2|p| centred on -2p
    (it touches the origin), so min over q1 + q2 = pmiss of lambda mT1^2 + (1 - lambda) mT2^2 is the
    support function, in the direction pmiss, of the intersection of the two discs scaled by lambda
    and 1 - lambda: the best of the discs' own support points and the circles' crossings. MT2^2 is
    the maximum of that concave function of lambda (minimax), found by golden-section search.
    """
    p1, p2, m = np.stack([l1x, l1y], -1), np.stack([l2x, l2y], -1), np.stack([mx, my], -1)
    n1, n2, nm = np.linalg.norm(p1, axis=-1), np.linalg.norm(p2, axis=-1), np.linalg.norm(m, axis=-1)
    mh = m / np.where(nm > 0, nm, 1.0)[:, None]

    def dot(a, b):
        return np.einsum("ij,ij->i", a, b)

    def support(lam):
        c1, r1 = -2.0 * lam[:, None] * p1, 2.0 * lam * n1
        c2, r2 = -2.0 * (1.0 - lam)[:, None] * p2, 2.0 * (1.0 - lam) * n2
        tol = 1e-9 * (r1 + r2 + 1.0)
        u1, u2 = c1 + r1[:, None] * mh, c2 + r2[:, None] * mh  # each disc's own support point
        best = np.where(np.linalg.norm(u1 - c2, axis=-1) <= r2 + tol, dot(c1, m) + r1 * nm, -np.inf)
        best = np.maximum(best, np.where(np.linalg.norm(u2 - c1, axis=-1) <= r1 + tol, dot(c2, m) + r2 * nm, -np.inf))
        dv = c2 - c1
        d = np.linalg.norm(dv, axis=-1)
        dn = np.where(d > 0, d, 1.0)
        a = (r1**2 - r2**2 + d**2) / (2.0 * dn)
        e = dv / dn[:, None]
        half_chord = np.sqrt(np.maximum(r1**2 - a**2, 0.0))
        cross = dot(c1 + a[:, None] * e, m) + half_chord * np.abs(e[:, 0] * m[:, 1] - e[:, 1] * m[:, 0])
        meet = (d > 0) & (d <= r1 + r2 + tol) & (d >= np.abs(r1 - r2) - tol)
        return np.maximum(np.maximum(best, np.where(meet, cross, -np.inf)), 0.0)

    g = (np.sqrt(5.0) - 1.0) / 2.0
    lo, hi = np.zeros(len(m)), np.ones(len(m))
    for _ in range(iterations):
        x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
        right = support(x1) < support(x2)
        lo, hi = np.where(right, x1, lo), np.where(right, hi, x2)
    return np.sqrt(support(0.5 * (lo + hi)))


def _super_razor(l1, l2, met_xy):
    """Super-razor variables (Buckley, Lykken, Rogan, Spiropulu, arXiv:1310.4827) for two leptons.

    Follows Rogan's reference code: boost along z to the leptons' longitudinal rest frame,
    estimate the event's invariant mass sqrt(s_R) and boost transversely to the R frame, then to
    the R+1 frames of each lepton. Returns (sqrt(s_R), M_Delta^R, dPhi_R^beta, |cos theta_R+1|).
    """
    n = len(l1)
    zeros = np.zeros(n)
    bz = (l1[:, 3] + l2[:, 3]) / (l1[:, 0] + l2[:, 0])
    beta_z = np.column_stack([zeros, zeros, bz])
    a, b = _boost(l1, -beta_z), _boost(l2, -beta_z)
    ll = a + b
    ptcm = ll[:, 1:3] + met_xy
    dot = np.sum(ll[:, 1:3] * ptcm, axis=1)
    p2 = np.sum(ptcm * ptcm, axis=1)
    e = ll[:, 0]
    shat = np.sqrt(2.0 * (e * e - dot + e * np.sqrt(np.maximum(e * e + p2 - 2.0 * dot, 0.0))))
    beta_t = np.column_stack([ptcm / np.sqrt(p2 + shat**2)[:, None], zeros])
    a, b, ll = _boost(a, -beta_t), _boost(b, -beta_t), _boost(ll, -beta_t)
    dphi_r_b = _dphi(np.arctan2(ll[:, 2], ll[:, 1]), np.arctan2(beta_t[:, 1], beta_t[:, 0]))
    beta_r = (a[:, 1:] - b[:, 1:]) / (a[:, 0] + b[:, 0])[:, None]
    a = _boost(a, -beta_r)
    m_delta = 2.0 * a[:, 0]
    norm = np.linalg.norm(a[:, 1:], axis=1) * np.linalg.norm(beta_r, axis=1)
    cos = np.sum(a[:, 1:] * beta_r, axis=1) / np.where(norm > 0, norm, 1.0)
    return shat, m_delta, dphi_r_b, np.abs(cos)


def raw_features(l1, l2, met_xy, jets=None, jet_ok=None):
    """The 18 UCI features in physical units (GeV, radians) from reconstructed objects.

    ``l1``, ``l2``: massless lepton four-vectors (n, 4), leading first; ``met_xy``: (n, 2);
    ``jets`` (n, 4) with ``jet_ok`` (n,): jets that also count in MET_rel's angle.
    """
    pt1, eta1, phi1 = _pt_eta_phi(l1)
    pt2, eta2, phi2 = _pt_eta_phi(l2)
    met = np.hypot(met_xy[:, 0], met_xy[:, 1])
    met_phi = np.arctan2(met_xy[:, 1], met_xy[:, 0])
    # MET_rel: the missing energy perpendicular to the nearest lepton or jet when closer than pi/2.
    dmin = np.minimum(_dphi(met_phi, phi1), _dphi(met_phi, phi2))
    if jets is not None:
        dj = np.where(jet_ok, _dphi(met_phi, np.arctan2(jets[:, 2], jets[:, 1])), np.pi)
        dmin = np.minimum(dmin, dj)
    met_rel = np.where(dmin < np.pi / 2, met * np.sin(dmin), met)
    # Axial MET: the missing momentum projected on the dilepton transverse direction.
    llx, lly = l1[:, 1] + l2[:, 1], l1[:, 2] + l2[:, 2]
    axial = (met_xy[:, 0] * llx + met_xy[:, 1] * lly) / np.maximum(np.hypot(llx, lly), 1e-12)
    # Razor (Rogan 2010): M_R = sqrt((E1+E2)^2 - (pz1+pz2)^2), M_T^R from the missing momentum.
    m_r = np.sqrt(np.maximum((l1[:, 0] + l2[:, 0]) ** 2 - (l1[:, 3] + l2[:, 3]) ** 2, 0.0))
    m_tr = np.sqrt(np.maximum(met * (pt1 + pt2) - (met_xy[:, 0] * llx + met_xy[:, 1] * lly), 0.0) / 2.0)
    r = m_tr / np.maximum(m_r, 1e-12)
    mt2 = mt2_massless(l1[:, 1], l1[:, 2], l2[:, 1], l2[:, 2], met_xy[:, 0], met_xy[:, 1])
    s_r, m_delta_r, dphi_r_b, cos_r1 = _super_razor(l1, l2, met_xy)
    return np.column_stack([
        pt1, eta1, phi1, pt2, eta2, phi2, met, met_phi, met_rel, axial,
        m_r, m_tr, r, mt2, s_r, m_delta_r, dphi_r_b, cos_r1,
    ])


# ---------------------------------------------------------------------------------------------
# Public API.

def simulate_process(n_events, process, *, seed=0, chargino_mass=CHARGINO_MASS, neutralino_mass=NEUTRALINO_MASS,
                     raw=False):
    """Simulate ``n_events`` selected events of one process ("chargino" or "ww"); float32 (n, 18).

    ``raw=True`` returns float64 features in GeV and radians instead of the UCI normalisation.
    """
    if process not in ("chargino", "ww"):
        raise ValueError(f"process must be 'chargino' or 'ww', not {process!r}")
    if process == "chargino" and not chargino_mass > neutralino_mass >= 0:
        raise ValueError(f"need chargino_mass > neutralino_mass >= 0, got {chargino_mass}, {neutralino_mass}")
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    parts, have = [np.empty((0, 18))], 0
    while have < n_events:
        # About 35-45% of generated events pass the selection; generate in batches of <= 200k.
        batch = int(min(max(2.6 * (n_events - have), 1000), 200_000))
        leptons, _, recoil = _generate(rng, batch, process, float(chargino_mass), float(neutralino_mass))
        lep, met_xy, jets, jet_ok, _ = _detector(rng, leptons, recoil)
        f = raw_features(lep[:, 0], lep[:, 1], met_xy, jets, jet_ok)
        parts.append(f)
        have += len(f)
    f = np.concatenate(parts)[:n_events]
    return f if raw else ((f - UCI_OFFSET) / UCI_SCALE).astype(np.float32)


def simulate(n_events, *, signal_fraction=SIGNAL_FRACTION, seed=0, chargino_mass=CHARGINO_MASS,
             neutralino_mass=NEUTRALINO_MASS, shuffle=True):
    """Simulate a labelled sample like UCI SUSY: ``(X float32 (n, 18), y int8 (n,))``, 1 = signal.

    ``round(signal_fraction * n_events)`` events are signal (chargino pairs, masses in GeV), the rest
    WW background. The same seed gives the same events.
    """
    if not 0.0 <= signal_fraction <= 1.0:
        raise ValueError(f"signal_fraction must be in [0, 1], got {signal_fraction}")
    n_events = int(n_events)
    n_sig = int(round(signal_fraction * n_events))
    rng = np.random.default_rng(seed)
    sig = simulate_process(n_sig, "chargino", seed=rng, chargino_mass=chargino_mass, neutralino_mass=neutralino_mass)
    bkg = simulate_process(n_events - n_sig, "ww", seed=rng)
    X = np.concatenate([sig, bkg])
    y = np.concatenate([np.ones(n_sig, np.int8), np.zeros(n_events - n_sig, np.int8)])
    if shuffle:
        order = rng.permutation(n_events)
        X, y = X[order], y[order]
    return X, y


def write_uci_csv(path, X, y, *, chunk=100_000, compresslevel=6):
    """Write ``(X, y)`` in the UCI SUSY format: label then 18 features, %.18e, no header (gzip if .gz)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 18 or len(y) != len(X):
        raise ValueError(f"expected X (n, 18) and y (n,), got {X.shape} and {y.shape}")
    path = os.fspath(path)
    if path.endswith(".gz"):
        f = gzip.open(path, "wb", compresslevel=compresslevel)
    else:
        f = open(path, "wb")
    with f:
        for lo in range(0, len(X), chunk):
            block = np.column_stack([y[lo:lo + chunk].astype(np.float64), X[lo:lo + chunk].astype(np.float64)])
            np.savetxt(f, block, fmt="%.18e", delimiter=",")
