"""Transitions format and the gap measures: ~0 for the same dynamics, rising with gravity; the
fast replicate routes equal the plain resample and permutation of :mod:`realgap.stats`.

Environment for the trends: InvertedPendulum-v5 (4-d state, 1-d action; fast), random
policy, gravity scales 1.0 / 1.5 / 2.0, source and target collected with different seeds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main
from realgap.dynamics import (
    Transitions,
    collect_perturbed,
    factor_perturbation,
    load,
    prediction_gap,
    save,
    transition_c2st,
)
from realgap.dynamics.gap import balanced_accuracy_score, excess_error_score
from realgap.dynamics.runs import GapCurveConfig
from realgap.errors import ConfigError, DataError, FormatVersionError, MissingFileError
from realgap.stats import bootstrap_ci, permutation_test

pytest.importorskip("mujoco")
ENV = "InvertedPendulum-v5"
SCALES = (1.0, 1.5, 2.0)


@pytest.fixture(scope="module")
def domains() -> dict[float, Transitions]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {0.0: collect_perturbed(ENV, None, 3000, max_episode_steps=100, rng=0)}
        for s in SCALES:
            out[s] = collect_perturbed(ENV, factor_perturbation("gravity", s), 3000,
                                       max_episode_steps=100, rng=1)
    return out


def test_collect_is_deterministic_and_records_state(domains: dict[float, Transitions]) -> None:
    again = collect_perturbed(ENV, factor_perturbation("gravity", 1.5), 3000,
                              max_episode_steps=100, rng=1)
    ref = domains[1.5]
    for k in ("obs", "action", "next_obs", "episode", "qpos", "next_qvel"):
        assert np.array_equal(getattr(ref, k), getattr(again, k)), k
    assert ref.meta["factors"]["PHYS"]["gravity"] == 1.5
    assert ref.qpos.shape == (3000, 2) and ref.obs.shape == (3000, 4)
    # InvertedPendulum's observation is [qpos, qvel]: the recorded state must agree.
    np.testing.assert_allclose(ref.obs, np.hstack([ref.qpos, ref.qvel]))


def test_save_load_roundtrip_and_version(tmp_path: Path, domains: dict[float, Transitions]) -> None:
    tr = domains[1.0]
    back = load(save(tr, tmp_path / "t.npz"))
    assert np.array_equal(back.next_obs, tr.next_obs) and back.meta == tr.meta
    np.savez(tmp_path / "v9.npz", format_version=9, obs=tr.obs, action=tr.action,
             next_obs=tr.next_obs, episode=tr.episode)
    with pytest.raises(FormatVersionError, match="format_version 9"):
        load(tmp_path / "v9.npz")
    with pytest.raises(MissingFileError):
        load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"obs": np.zeros((5, 3)), "action": np.zeros((5, 1)), "next_obs": np.zeros((5, 2)),
          "episode": np.zeros(5, int)}, "next_obs has 2"),
        ({"obs": np.zeros((5, 3)), "action": np.zeros((4, 1)), "next_obs": np.zeros((5, 3)),
          "episode": np.zeros(5, int)}, "row counts differ"),
        ({"obs": np.zeros((5, 3)), "action": np.zeros((5, 1)), "episode": np.zeros(5, int)},
         "missing array 'next_obs'"),
    ],
)
def test_bad_transitions_are_rejected(arrays: dict, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        Transitions.validated(**arrays)


def test_mismatched_dimensions_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               domains: dict[float, Transitions]) -> None:
    src = save(domains[1.0], tmp_path / "src.npz")
    other = domains[1.0]
    np.savez(tmp_path / "tgt.npz", obs=other.obs[:, :3], action=other.action,
             next_obs=other.next_obs[:, :3], episode=other.episode)
    assert main(["dynamics", "gap", "--source", str(src), "--target", str(tmp_path / "tgt.npz"),
                 "--no-latent", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "obs/action dims 4/1" in err[0] and "3/1" in err[0], err
    np.savez(tmp_path / "bad.npz", obs=other.obs, action=other.action[:10],
             next_obs=other.next_obs, episode=other.episode)
    assert main(["dynamics", "sysid", "--sim-env", ENV, "--real", str(tmp_path / "bad.npz"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row counts differ" in err[0], err


def _rows(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic per-row values over 12 + 9 trajectories of 1-7 rows each (source, target)."""
    g = np.random.default_rng(seed)
    lens = g.integers(1, 8, size=21)
    groups = np.repeat(np.arange(21) % 12, lens)  # ids reused across domains on purpose
    is_t = np.repeat(np.arange(21) >= 12, lens)
    return g.gamma(1.0, 1.0, size=groups.size) * (1 + 0.3 * is_t), is_t, groups


@pytest.mark.parametrize("seed, geometric", [(0, False), (1, False), (2, True), (3, True)])
def test_excess_error_fast_route_equals_plain_resample(seed: int, geometric: bool) -> None:
    err, is_t, groups = _rows(seed)

    def ratio(e: np.ndarray, t: np.ndarray) -> float:
        if geometric:
            return float(np.exp(np.log(e[t]).mean() - np.log(e[~t]).mean()) - 1.0)
        return float(e[t].mean() / e[~t].mean() - 1.0)

    fast, _ = excess_error_score(err, is_t, groups, n_boot=300, n_perm=0, rng=seed,
                                 geometric=geometric)
    plain = bootstrap_ci(ratio, err, is_t, groups=groups, strata=is_t, n_boot=300, rng=seed)
    assert fast.value == pytest.approx(plain.value, rel=1e-12)
    assert (fast.lo, fast.hi) == pytest.approx((plain.lo, plain.hi), rel=1e-9)
    assert (fast.n, fast.n_frames, fast.n_boot) == (plain.n, plain.n_frames, plain.n_boot) == (21, err.size, 300)
    # one fold: the within-fold null is the plain whole-trajectory permutation null
    _, null = excess_error_score(err, is_t, groups, n_boot=0, n_perm=200, rng=seed,
                                 geometric=geometric)
    ref = permutation_test(lambda m: ratio(err, m), groups, is_t, n_perm=200, rng=seed)
    assert null.p_value == ref.p_value and null.null_mean == pytest.approx(ref.null_mean, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_balanced_accuracy_fast_route_equals_plain_resample(seed: int) -> None:
    _, is_t, groups = _rows(seed)
    says = (np.random.default_rng(seed + 9).random(is_t.size) < 0.4 + 0.3 * is_t).astype(float)

    def bal(s: np.ndarray, t: np.ndarray) -> float:
        return float(s[t].mean() + (1 - s[~t]).mean() - 1.0)

    fast, _ = balanced_accuracy_score(says, is_t, groups, n_boot=300, n_perm=0, rng=seed)
    plain = bootstrap_ci(bal, says, is_t, groups=groups, strata=is_t, n_boot=300, rng=seed)
    assert fast.value == pytest.approx(plain.value, rel=1e-12)
    assert (fast.lo, fast.hi) == pytest.approx((plain.lo, plain.hi), rel=1e-9)
    _, null = balanced_accuracy_score(says, is_t, groups, n_boot=0, n_perm=200, rng=seed)
    ref = permutation_test(lambda m: bal(says, m), groups, is_t, n_perm=200, rng=seed)
    assert null.p_value == ref.p_value and null.effect == pytest.approx(ref.effect, rel=1e-9)


def test_gap_scores_by_hand() -> None:
    # two source trajectories (errors 1, 1 | 3) and two target ones (4 | 4, 4): source row mean
    # 5/3, target 4: arithmetic gap = 4 / (5/3) - 1 = 1.4. Calls: target rows all "target", source rows
    # "target" once in three: balanced accuracy (2/3 + 1) / 2, gap 2/3.
    err = np.array([1.0, 1.0, 3.0, 4.0, 4.0, 4.0])
    is_t = np.array([0, 0, 0, 1, 1, 1], bool)
    groups = np.array([0, 0, 1, 0, 1, 1])
    e, null = excess_error_score(err, is_t, groups, n_boot=0, n_perm=50, rng=0)
    assert e.value == pytest.approx(1.4) and np.isnan(e.lo) and null.n_perm == 50
    # geometric means: source (1 * 1 * 3)^(1/3), target 4
    g, _ = excess_error_score(err, is_t, groups, n_boot=0, n_perm=0, geometric=True)
    assert g.value == pytest.approx(4 / 3 ** (1 / 3) - 1)
    c, _ = balanced_accuracy_score(np.array([0, 0, 1, 1, 1, 1.0]), is_t, groups, n_boot=0,
                                   n_perm=0)
    assert c.value == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="n_perm"):
        excess_error_score(err, is_t, groups, n_perm=-1)


@pytest.mark.parametrize("kw, needle", [({"factor": "gravty"}, "did you mean gravity"),
                                        ({"scales": ()}, "scales"), ({"scales": (0.0,)}, "positive"),
                                        ({"steps": 0}, "steps"), ({"n_boot": -1}, "n_boot")])
def test_bad_gap_curve_config_fails_before_any_collection(kw: dict, needle: str) -> None:
    with pytest.raises((ConfigError, KeyError), match=needle):
        GapCurveConfig(env_id=ENV, **kw)


def test_cli_gap_unknown_body_fails_before_collecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.dynamics import runs

    def no_collection(*a: object, **k: object) -> None:
        raise AssertionError("collected transitions before checking the body name")

    monkeypatch.setattr(runs, "collect_perturbed", no_collection)
    assert main(["dynamics", "gap", "--env", ENV, "--factor", "length:polee", "--steps", "100",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown body 'polee'; did you mean pole" in err[0], err


def test_prediction_gap_is_zero_for_same_dynamics_and_rises(domains: dict[float, Transitions]) -> None:
    g = {s: prediction_gap(domains[0.0], domains[s], n_boot=200, n_perm=200, rng=0)
         for s in SCALES}
    assert abs(g[1.0].value) < 0.5 and g[1.0].lo <= 0.0 <= g[1.0].hi
    assert g[1.0].p_value > 0.05 and g[1.5].p_value < 0.01 and g[2.0].p_value < 0.01
    assert g[1.0].value < g[1.5].value < g[2.0].value
    assert g[1.5].lo > g[1.0].hi and g[2.0].lo > g[1.5].hi
    for s, e in g.items():
        n_traj = np.unique(domains[0.0].episode).size + np.unique(domains[s].episode).size
        assert e.n == n_traj and e.estimate.n_frames == 6000 and e.estimate.n_boot == 200
        assert e.details["folds"] == 5 and e.null.n_perm == 200 and e.details["geometric"]
    again = prediction_gap(domains[0.0], domains[1.5], n_boot=200, n_perm=200, rng=0)
    assert again == g[1.5]


def test_c2st_is_chance_for_same_dynamics_and_rises(domains: dict[float, Transitions]) -> None:
    c = {s: transition_c2st(domains[0.0], domains[s], max_iter=40, n_boot=200, n_perm=200, rng=0)
         for s in SCALES}
    assert abs(c[1.0].value) < 0.1 and c[1.0].lo <= 0.0 <= c[1.0].hi and c[1.0].p_value > 0.05
    assert c[1.0].value < c[1.5].value < c[2.0].value
    assert c[1.5].lo > c[1.0].hi and c[1.5].p_value < 0.01
    d = c[2.0].details
    acc = (d["k_source"] / d["n_source"] + d["k_target"] / d["n_target"]) / 2
    assert d["balanced_accuracy"] == pytest.approx(acc)
    assert c[2.0].value == pytest.approx(2 * acc - 1)
    assert c[2.0].n == d["n_test_trajectories"]


def test_cli_gap_curve_writes_db_and_report(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.store import ResultsDB

    assert main(["dynamics", "gap", "--env", ENV, "--scales", "1,2", "--steps", "600",
                 "--n-boot", "50", "--no-latent", "--out", str(tmp_path)]) == 0
    assert "gravity=2  prediction_gap=" in capsys.readouterr().out
    with ResultsDB(tmp_path, read_only=True) as db:
        sc = db.scores(db.latest_run("dynamics-gap"))
    assert sorted(set(sc.grp)) == ["gravity=1", "gravity=2"]
    assert sorted(set(sc.metric)) == ["c2st_gap", "prediction_gap"]
    assert (sc.n > 1).all() and (sc.lo < sc.hi).all()
    extra = [json.loads(x) for x in sc.extra]
    # the null and the interval's own fields travel with every score
    assert all(0 < e["p_value"] <= 1 and "effect" in e and "bias" in e for e in extra)
    p = sc.set_index(["metric", "grp"]).value
    assert p["prediction_gap", "gravity=2"] > p["prediction_gap", "gravity=1"]
    html = (tmp_path / "report.html").read_text()
    assert "Gap measures against perturbation size" in html and "dyn-gap-" in html


@pytest.mark.parametrize("out, needle", [("dir", "is a directory"), ("file/x.npz", "File exists")])
def test_cli_collect_bad_out_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             out: str, needle: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    assert main(["dynamics", "collect", "--env", ENV, "--steps", "5",
                 "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("realgap: error: ") and needle in err[0], err
