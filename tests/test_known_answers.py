"""Known answers for the gap metrics (issue 8, "Done when" (a), (b), (c), (e)).

Every set here is made by the test, so the right answer is known by construction:

(a) two disjoint halves of one domain: no two-sample score may reject at 5% in more than 3 of
    20 seeds, and the C2ST interval holds 0.5 (a 95% interval: in at least 17 of 20 seeds);
(b) a ladder of graded appearance shifts of re-rendered held-out scenes, read with the
    ``pixels`` encoder: centroid distance, MMD, Fréchet distance and C2ST rise, DIS falls;
(c) an obvious appearance shift: C2ST >= 0.95 with ``pixels``;
(e) an encoder that outputs the action-relevant coordinates ranks first with AS >= 0.9;
    pure-noise encoders score AS near 0, rank last and are marked tied with each other.

(f), the fast bootstrap against a plain resample, is in ``test_metrics_bootstrap.py``.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from realgap.metrics import gap_suite, resample_plan, two_sample_gap
from realgap.stats import rank_with_ties

SIZE = 32


# -- (a) ------------------------------------------------------------------------------------
def _halves(seed: int, n_eps: int = 24, steps: int = 8, dim: int = 8):
    """One domain: an episode effect plus frame noise; its episodes split in two halves."""
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.normal(size=(n_eps, dim)) * 0.7, steps, 0) + rng.normal(size=(n_eps * steps, dim))
    ep = np.repeat(np.arange(n_eps), steps)
    first = np.isin(ep, rng.permutation(n_eps)[: n_eps // 2])
    return x[first], x[~first], ep[first], ep[~first]


def test_a_two_halves_of_one_domain_do_not_reject() -> None:
    rejections: dict[str, int] = {}
    c2st_holds_half = 0
    for seed in range(20):
        xs, xr, es, er = _halves(seed)
        r = two_sample_gap(xs, xr, es, er, space_k=8, n_boot=100, n_perm=40, rng=seed)
        for name, null in r.nulls.items():
            rejections[name] = rejections.get(name, 0) + int(null.p_value <= 0.05)
        c = r.estimates["c2st_acc"]
        c2st_holds_half += int(c.lo <= 0.5 <= c.hi)
    assert set(rejections) == {"centroid_distance", "dis", "dis_cal", "mmd", "fd", "c2st_acc"}
    assert max(rejections.values()) <= 3, rejections
    assert c2st_holds_half >= 17, c2st_holds_half


# -- (b), (c): images --------------------------------------------------------------------------
def _scenes(seed: int, shift: float, n_eps: int = 16, steps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A red object reached by a blue gripper on a textured grey table, ``(N, 32, 32, 3)``
    uint8. ``shift`` in [0, 1] moves the appearance as a real camera would: background
    stripes, colour response (red up, blue down), blur and sensor noise. The scenes (states)
    depend on ``seed`` only, so a ladder re-renders the same held-out scenes."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = np.random.default_rng(seed + 1000)
    xx = np.mgrid[0:SIZE, 0:SIZE][1]
    imgs, eps = [], []
    for e in range(n_eps):
        obj, grip = rng.uniform(4, SIZE - 8, 2), rng.uniform(4, SIZE - 8, 2)
        base, tex = rng.uniform(100, 160), rng.normal(0, 8, (SIZE, SIZE))
        for t in range(steps):
            g = grip + (obj - grip) * t / steps
            img = np.empty((SIZE, SIZE, 3))
            img[:] = base
            img += tex[..., None] + shift * 60 * np.sin(xx / 2.0)[..., None]
            oy, ox = obj.astype(int)
            img[oy:oy + 5, ox:ox + 5] = (220, 40, 40)
            gy, gx = g.astype(int)
            img[gy:gy + 4, gx:gx + 4] = (40, 60, 220)
            img *= np.array([1 + 0.4 * shift, 1.0, 1 - 0.4 * shift])
            if shift > 0:
                img = gaussian_filter(img, (1.2 * shift, 1.2 * shift, 0))
                img += noise.normal(0, 25 * shift, img.shape)
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
            eps.append(e)
    return np.stack(imgs), np.array(eps)


@pytest.fixture(scope="module")
def pixels_sim() -> tuple[object, np.ndarray, np.ndarray]:
    from realgap.encoders import create_encoder

    enc = create_encoder("pixels")
    sim, es = _scenes(0, 0.0)
    return enc, enc.embed(sim), es


def test_b_graded_shift_ladder_is_monotone(pixels_sim: tuple[object, np.ndarray, np.ndarray]) -> None:
    enc, zs, es = pixels_sim
    ladder = (0.03, 0.06, 0.15, 0.4)
    rows = []
    for s in ladder:
        real, er = _scenes(1, s)  # held-out scenes (other states), re-rendered at each level
        rows.append(two_sample_gap(zs, enc.embed(real), es, er, n_boot=0, n_perm=0, rng=0).estimates)
    for name in ("centroid_distance", "mmd", "fd"):
        v = [r[name].value for r in rows]
        assert all(a < b for a, b in pairwise(v)), (name, v)
    dis = [r["dis"].value for r in rows]
    assert all(a > b for a, b in pairwise(dis)), dis
    c2st = [r["c2st_acc"].value for r in rows]
    # C2ST rises until it saturates at 1
    assert all(a < b or a == b == 1.0 for a, b in pairwise(c2st)), c2st
    assert c2st[0] < 0.9 and c2st[-1] == 1.0, c2st


def test_c_obvious_shift_is_found_by_c2st_on_pixels(
        pixels_sim: tuple[object, np.ndarray, np.ndarray]) -> None:
    enc, zs, es = pixels_sim
    real, er = _scenes(1, 1.0)
    r = two_sample_gap(zs, enc.embed(real), es, er, n_boot=100, n_perm=50, rng=0)
    assert r.estimates["c2st_acc"].value >= 0.95
    assert r.estimates["c2st_acc"].lo >= 0.9
    for name, null in r.nulls.items():
        assert null.p_value <= 1 / 51 + 1e-12, name


# -- (e): an oracle ranks first, noise ranks last, tied ----------------------------------------
def _reach(seed: int, n_eps: int = 30, steps: int = 10):
    """Reaching frames: object ``o`` (fixed per episode) and gripper ``g`` in the plane; the
    action is the step toward the object, ``a = 0.3 (o - g)`` plus motor noise. The gripper
    is placed anew at each step, so the action distribution of every set of episodes is the
    same (transfer AS standardizes real actions with sim statistics: two sets whose action
    spread differed would give even a constant probe AS = 1 - var_real / var_sim > 0)."""
    rng = np.random.default_rng(seed)
    coords, acts, eps = [], [], []
    for e in range(n_eps):
        o = rng.uniform(-1, 1, 2)
        for _ in range(steps):
            g = rng.uniform(-1, 1, 2)
            coords.append(np.r_[o, g])
            acts.append(0.3 * (o - g) + rng.normal(0, 0.01, 2))
            eps.append(e)
    return np.array(coords), np.array(acts), np.array(eps)


def test_e_oracle_ranks_first_and_noise_ranks_last_with_ties_marked() -> None:
    cs, ys, es = _reach(0)
    cr, yr, er = _reach(1)
    rng = np.random.default_rng(2)
    basis = rng.normal(size=(4, 16))  # the action-relevant coordinates in an encoder's basis
    encoders = {
        "oracle": (cs @ basis, cr @ basis),
        "noise-a": (rng.normal(size=(len(cs), 16)), rng.normal(size=(len(cr), 16))),
        "noise-b": (rng.normal(size=(len(cs), 16)), rng.normal(size=(len(cr), 16))),
    }
    plan = resample_plan(es, er, 200, rng=3)
    suites = {n: gap_suite(s, r, ys, yr, es, er, plan=plan, n_perm=50, space_k=8, rng=4)
              for n, (s, r) in encoders.items()}
    names = list(suites)
    ranking = rank_with_ties(names, [suites[n]["combined"].value for n in names],
                             np.vstack([suites[n]["replicates"]["combined"] for n in names]))
    by = {e.name: e for e in ranking}
    assert suites["oracle"]["as_sim"].value >= 0.9 and suites["oracle"]["as_transfer"].value >= 0.9
    assert by["oracle"].rank == 1 and not by["oracle"].tied and ranking[0].name == "oracle"
    for n in ("noise-a", "noise-b"):
        assert suites[n]["as_sim"].value <= 0.1 and suites[n]["as_transfer"].value <= 0.1, n
        # the floor (shuffled actions) scores the same nothing
        assert suites[n]["as_sim"].hi <= suites[n]["as_sim_floor"].hi + 0.05, n
        assert by[n].rank == 2, (n, by[n])  # one encoder (the oracle) is better beyond noise
    assert by["noise-a"].tied_with == ("noise-b",) and by["noise-b"].tied_with == ("noise-a",)
