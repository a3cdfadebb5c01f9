"""Measure the SUSY simulator against real UCI SUSY events; write docs/susy_sim_realism.md.

Needs the real 10,000-event sample (``susy_real_10k.csv.gz`` in ``$COURSE_DATA_DIR``) and
scikit-learn. Measures, per class (0 = WW background, 1 = chargino signal):

* the feature definitions: the high-level features recomputed by ``susy_sim.raw_features`` from the
  real events' own low-level features, against the values in the file;
* the Kolmogorov-Smirnov distance of each feature, simulated vs real;
* a classifier two-sample test: HistGradientBoosting told to separate simulated from real events of
  the same class, 5-fold cross-validated ROC AUC (0.5: indistinguishable);
* transfer: HistGradientBoosting and logistic regression trained on simulated events, ROC AUC on
  the real events (the real events' own 5-fold CV AUCs are the yardstick);
* a scan of chargino/neutralino masses (two-sample AUC of the signal class), and the speed.

    python bench/susy_realism.py            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import course_data  # noqa: E402
from autograder.datasets import susy_sim  # noqa: E402

DOC = ROOT / "docs" / "susy_sim_realism.md"
TWO_SAMPLE_GOAL = 0.70
TRANSFER_GOAL = 0.83
# 5-fold CV ROC AUC on the real 10k events themselves (data README).
REAL_CV = {"HistGradientBoosting": 0.862, "logistic regression": 0.861}


# The real events are split once, by this seed, into two halves of 5,000: the simulator's knobs are
# tuned on the first (bench/susy_tune.py) and its realism is reported on the second (this script).
REAL_SPLIT_SEED = 2026


def split_real(Xr, yr, seed: int = REAL_SPLIT_SEED):
    """(tuning half, held-out half) of the real events, each an (X, y) pair, stratified by class."""
    rng = np.random.default_rng(seed)
    tune, held = [], []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(yr == c))
        tune.append(idx[: len(idx) // 2])
        held.append(idx[len(idx) // 2:])
    tune, held = np.sort(np.concatenate(tune)), np.sort(np.concatenate(held))
    return (Xr[tune], yr[tune]), (Xr[held], yr[held])


def load_real():
    """The 10,000 real UCI events (``susy_real_10k.csv.gz`` in $COURSE_DATA_DIR)."""
    real_path = Path(os.environ.get(course_data.DATA_DIR_ENV, "")) / "susy_real_10k.csv.gz"
    if not real_path.exists():
        sys.exit(f"need {real_path}: set {course_data.DATA_DIR_ENV} to the folder holding susy_real_10k.csv.gz")
    return course_data.read_susy_file(real_path, cache=False)


def ks(a, b):
    """Two-sample Kolmogorov-Smirnov distance."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))))


def two_sample_auc(real, sim, seed=0):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X = np.vstack([real, sim])
    y = np.r_[np.zeros(len(real)), np.ones(len(sim))]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(HistGradientBoostingClassifier(random_state=seed), X, y, cv=folds, scoring="roc_auc").mean())


def transfer(Xs, ys, Xr, yr):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    }
    out = {}
    for name, model in models.items():
        model.fit(Xs, ys)
        out[name] = float(roc_auc_score(yr, model.predict_proba(Xr)[:, 1]))
    # Logistic regression on the low-level features only (the paper's "low-level" benchmark).
    low = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(Xs[:, :8], ys)
    out["logistic regression, 8 low-level features"] = float(roc_auc_score(yr, low.predict_proba(Xr[:, :8])[:, 1]))
    return out


def definitions(Xr):
    """Recompute the high-level features from the real low-level ones; median and 95% |relative| deviation."""
    raw = Xr.astype(np.float64) * susy_sim.UCI_SCALE + susy_sim.UCI_OFFSET
    pt1, eta1, phi1, pt2, eta2, phi2, met, met_phi = raw[:, :8].T

    def four(pt, eta, phi):
        return np.column_stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])

    met_xy = np.column_stack([met * np.cos(met_phi), met * np.sin(met_phi)])
    again = (susy_sim.raw_features(four(pt1, eta1, phi1), four(pt2, eta2, phi2), met_xy) - susy_sim.UCI_OFFSET) / susy_sim.UCI_SCALE
    rows = []
    for j in range(8, 18):
        scale = np.abs(Xr[:, j]).mean()
        dev = np.abs(again[:, j] - Xr[:, j]) / scale
        rows.append((susy_sim.FEATURES[j], float(np.median(dev)), float(np.percentile(dev, 95))))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=200_000, help="simulated events to train on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--events", choices=("held-out", "all"), default="held-out",
                        help="measure on the held-out half of the real events (default) or on all 10,000")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that it runs: 4,000 simulated events, one seed, one mass point; the report goes "
                        "to a temporary folder")
    args = parser.parse_args(argv)
    if args.smoke:
        args.train, args.out = 4000, Path(tempfile.mkdtemp(prefix="susy-realism-smoke-")) / "susy_sim_realism.md"

    Xr, yr = load_real()
    if args.events == "held-out":
        _, (Xr, yr) = split_real(Xr, yr)
    t_start = time.perf_counter()

    t = time.perf_counter()
    Xs, ys = susy_sim.simulate(args.train, seed=args.seed)
    speed = args.train / (time.perf_counter() - t)
    print(f"simulated {args.train:,} events at {speed:,.0f} events/s", flush=True)

    by_class = {c: (Xr[yr == c], Xs[ys == c]) for c in (0, 1)}
    ks_rows = [(name, *(ks(by_class[c][0][:, j], by_class[c][1][:, j]) for c in (0, 1)),
                *(float(np.median(by_class[c][k][:, j])) for c in (0, 1) for k in (0, 1)))
               for j, name in enumerate(susy_sim.FEATURES)]
    two = {c: two_sample_auc(by_class[c][0], by_class[c][1][: len(by_class[c][0])]) for c in (0, 1)}
    print(f"two-sample AUC: background {two[0]:.3f}, signal {two[1]:.3f}", flush=True)
    trans = transfer(Xs, ys, Xr, yr)
    print("sim -> real AUC:", {k: round(v, 3) for k, v in trans.items()}, flush=True)
    # How much the transfer AUCs move with the simulated sample (two more seeds).
    spread = {k: [v] for k, v in trans.items()}
    for seed in () if args.smoke else (args.seed + 1, args.seed + 2):
        for k, v in transfer(*susy_sim.simulate(args.train, seed=seed), Xr, yr).items():
            spread[k].append(v)
    print(f"over {len(next(iter(spread.values())))} seed(s):", {k: (round(min(v), 3), round(max(v), 3)) for k, v in spread.items()},
          flush=True)
    defs = definitions(Xr)

    masses = [(150, 0), (200, 0), (250, 100), (300, 150), (400, 100), (400, 250)][: 1 if args.smoke else None]
    scan = []
    real_sig = by_class[1][0]
    for mc, mn in masses:
        sig = susy_sim.simulate_process(len(real_sig), "chargino", seed=args.seed + 7, chargino_mass=mc, neutralino_mass=mn)
        scan.append((mc, mn, two_sample_auc(real_sig, sig), float(np.median(sig[:, 0])), float(np.median(sig[:, 6]))))
        print(f"mass point {mc}/{mn}: two-sample AUC {scan[-1][2]:.3f}", flush=True)

    write_doc(args, speed, ks_rows, two, trans, spread, defs, scan, real_sig, time.perf_counter() - t_start,
              real_counts=(int((yr == 0).sum()), int((yr == 1).sum())))
    print(f"wrote {args.out}")


def write_doc(args, speed, ks_rows, two, trans, spread, defs, scan, real_sig, seconds, real_counts=(0, 0)):
    ks_bkg = [r[1] for r in ks_rows]
    ks_sig = [r[2] for r in ks_rows]
    worst = sorted(ks_rows, key=lambda r: -max(r[1], r[2]))[:4]
    ok2 = all(v <= TWO_SAMPLE_GOAL for v in two.values())
    L = []
    w = L.append
    w("# How close the SUSY simulator comes to the real events")
    w("")
    w(f"Written by `python bench/susy_realism.py` on {dt.date.today().isoformat()} ({platform.machine()}, "
      f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}; {seconds:.0f} s). "
      + (f"Real events: the held-out half of `susy_real_10k.csv.gz` ({sum(real_counts)} events: "
         f"{real_counts[0]} background, {real_counts[1]} signal; split with seed {REAL_SPLIT_SEED}); the simulator's "
         "knobs were tuned on the other half only (`bench/susy_tune.py`, docs/susy_sim_tuning.md). "
         if args.events == "held-out" else
         f"Real events: all 10,000 of `susy_real_10k.csv.gz` ({real_counts[0]} background, {real_counts[1]} signal). ")
      + f"Simulated: "
      f"`susy_sim.simulate({args.train:,}, seed={args.seed})` with the defaults: chargino "
      f"{susy_sim.CHARGINO_MASS:g} GeV, neutralino {susy_sim.NEUTRALINO_MASS:g} GeV, signal fraction "
      f"{susy_sim.SIGNAL_FRACTION}.")
    w("")
    w("## Summary")
    w("")
    w("| measure | background (WW) | signal (charginos) | goal |")
    w("|---|---|---|---|")
    w(f"| classifier two-sample AUC (sim vs real, 5-fold CV) | {two[0]:.3f} | {two[1]:.3f} | <= {TWO_SAMPLE_GOAL} |")
    w(f"| KS distance, 18 features: range | {min(ks_bkg):.3f} - {max(ks_bkg):.3f} | {min(ks_sig):.3f} - {max(ks_sig):.3f} | |")
    w(f"| KS distance: median over features | {np.median(ks_bkg):.3f} | {np.median(ks_sig):.3f} | |")
    w("")
    w("| trained on simulated events, ROC AUC on the real events | AUC | 3 simulated samples: min - max "
      "| real events' own 5-fold CV | goal |")
    w("|---|---|---|---|---|")
    for name, auc in trans.items():
        ref = REAL_CV.get(name, 0.834 if "low-level" in name else None)
        goal = f">= {TRANSFER_GOAL}" if name in REAL_CV else ""
        w(f"| {name} | {auc:.3f} | {min(spread[name]):.3f} - {max(spread[name]):.3f} | {ref:.3f} | {goal} |")
    w("")
    w(f"Simulator speed: {speed:,.0f} events/s (selected events, features included; `mt2` package installed).")
    w("")
    w("## What falls short, and why")
    w("")
    short = []
    if not ok2:
        short.append(f"- The two-sample AUC misses the {TWO_SAMPLE_GOAL} goal for "
                     + " and ".join(n for c, n in ((0, "background"), (1, "signal")) if two[c] > TWO_SAMPLE_GOAL) + ".")
    for name, auc in trans.items():
        if name in REAL_CV and min(spread[name]) < TRANSFER_GOAL:
            short.append(f"- {name.capitalize()} trained on simulated events reaches {min(spread[name]):.3f} to "
                         f"{max(spread[name]):.3f} on real events: not safely above the {TRANSFER_GOAL} goal.")
        elif name in REAL_CV and min(spread[name]) < TRANSFER_GOAL + 0.01:
            short.append(f"- {name.capitalize()} trained on simulated events meets the {TRANSFER_GOAL} goal with little "
                         f"margin ({min(spread[name]):.3f} to {max(spread[name]):.3f}), well below the "
                         f"{REAL_CV[name]:.3f} it reaches trained on real events.")
    short.append(f"- A gradient-boosted classifier still tells simulated from real events (AUC {two[0]:.2f} "
                 f"and {two[1]:.2f}, where 0.5 would be indistinguishable).")
    L += short
    w("- Worst features (largest KS distance): " + "; ".join(
        f"{r[0]} ({r[1]:.3f} bkg, {r[2]:.3f} sig)" for r in worst) + ".")
    w("- The transfer AUCs are close to what the real events give themselves, but the simulated classes are "
      "less alike in the details: models trained on simulation weight the features differently (logistic "
      "regression most visibly), so an assignment should train and test on the real data and use the "
      "simulator for exercises, offline tests and CI.")
    knobs = ("the chargino and neutralino masses (scan below), the radiation scale and power (`ISR_SCALE`, "
             "`ISR_POWER`), the soft-term resolution (`SOFT_RESOLUTION`) and the effective fall of the WW "
             "cross-section (`WW_SIGMA_POWER` 1.5; the pure t-channel gives 1), the soft activity "
             "(`UNDERLYING_SUM_ET`)")
    if args.events == "held-out":
        w(f"- The knobs ({knobs}) were chosen on the other half of the real events; these figures are "
          "out of sample. The real events' own CV AUCs (yardstick column) are from all 10,000.")
    else:
        w(f"- The knobs were chosen against these same events, so the two-sample AUCs are in-sample: {knobs}. "
          "Seven numbers for 18 features times two classes, but a fresh real sample would likely score a little "
          "worse; `--events held-out` (the default) measures on events the tuning never saw.")
    w("- Physics left out, roughly in order of effect: W polarisation and spin correlations (tried for "
      "WW as a fixed (-, +) helicity fraction: the real events preferred little or none, so decays are "
      "isotropic); "
      "the full q qbar -> WW matrix element (s/t-channel interference: replaced by the effective "
      "exponent); parton showers (one recoil 'jet' stands for all radiation); the real detector's "
      "missing-energy response (a Gaussian soft term; the real recoil |pT(ll) + MET| has longer tails, "
      "above all for signal); approximate parton densities; gg -> WW and other backgrounds (the UCI "
      "background is WW only).")
    w("- The UCI file does not say which chargino and neutralino masses it used; the default is the best "
      "of the scanned points, not the paper's value.")
    w("")
    w("## Per-feature KS distance (simulated vs real, per class)")
    w("")
    w("| feature | KS background | KS signal | median real / sim (bkg) | median real / sim (sig) |")
    w("|---|---|---|---|---|")
    for name, kb, ks_, rb, sb, rs, ss in ks_rows:
        w(f"| {name} | {kb:.3f} | {ks_:.3f} | {rb:.3f} / {sb:.3f} | {rs:.3f} / {ss:.3f} |")
    w("")
    w("## Feature definitions and the UCI normalisation")
    w("")
    w("The high-level features of the real events are functions of their low-level ones. Recomputing them "
      "with `susy_sim.raw_features` from the real events' own leptons and missing energy (undoing the UCI "
      "normalisation with `UCI_SCALE` / `UCI_OFFSET`) gives back the file's values, which pins down both the "
      "definitions and the normalisation (|deviation| relative to the feature's mean |value|):")
    w("")
    w("| feature | median deviation | 95th percentile |")
    w("|---|---|---|")
    for name, med, p95 in defs:
        w(f"| {name} | {med:.1e} | {p95:.1e} |")
    w("")
    w("How the normalisation was recovered: R / (M_TR_2 / M_R) is one constant on every real event; "
      "M_R = sqrt((E1+E2)^2 - (pz1+pz2)^2) is matched exactly with one ratio of the two leptons' pT scales "
      "(also the sharp upper edge of pT2/pT1, the leading lepton coming first); S_R then fixes the "
      "missing-energy scale; axial MET is the missing momentum along the dilepton direction, standardised "
      "(an offset of -27.6 GeV). The absolute scale comes from the common 20 GeV lepton threshold (both "
      "leptons' smallest normalised pT sit on it) and agrees with the WW MT2 edge near the W mass. eta and phi "
      "are divided by their spread, dPhi_r_b by its mean; cos(theta_r1) is |cos| unscaled. MET_rel also "
      "counts jets, which the file does not list, hence its larger deviations. MT2 and M_Delta_R deviate "
      "by ~0.3% (a detail of the original code: rounding, or lepton masses); the rest stay within ~0.5% "
      "(the eta and phi scales are estimated from the real sample's extremes, which limits the agreement).")
    w("")
    w("## Chargino / neutralino mass scan (signal class)")
    w("")
    w("| m(chargino) GeV | m(neutralino) GeV | two-sample AUC | median lepton 1 pT (real "
      f"{np.median(real_sig[:, 0]):.3f}) | median MET (real {np.median(real_sig[:, 6]):.3f}) |")
    w("|---|---|---|---|---|")
    for mc, mn, auc, pt, met in scan:
        w(f"| {mc} | {mn} | {auc:.3f} | {pt:.3f} | {met:.3f} |")
    w("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
