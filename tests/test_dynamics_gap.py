"""Transitions format and the gap measures: ~0 for the same dynamics, rising with gravity.

Environment for the trends: InvertedPendulum-v5 (4-d state, 1-d action; fast), random
policy, gravity scales 1.0 / 1.5 / 2.0, source and target collected with different seeds.
"""

from __future__ import annotations

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
from realgap.dynamics._stats import cluster_bootstrap, hierarchical_mean_ci
from realgap.dynamics.runs import GapCurveConfig
from realgap.errors import ConfigError, DataError, FormatVersionError, MissingFileError

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


def test_cluster_bootstrap_and_hierarchical_mean_hand_values() -> None:
    # Constant clusters: every replicate equals the point value.
    v, lo, hi = cluster_bootstrap([np.array([0, 0, 1, 1])], lambda i: 3.0, n_boot=20, rng=0)
    assert (v, lo, hi) == (3.0, 3.0, 3.0)
    x = np.array([1.0, 1.0, 5.0, 5.0])
    v, lo, hi = cluster_bootstrap([np.array([0, 0, 1, 1])], lambda i: x[i].mean(), n_boot=400, rng=0)
    assert v == 3.0 and lo == 1.0 and hi == 5.0  # replicate means are 1, 3 or 5
    m, lo, hi, _ = hierarchical_mean_ci([np.array([1.0, 3.0]), np.array([5.0, 7.0])], rng=0)
    assert m == 4.0 and 1.0 <= lo <= m <= hi <= 7.0
    with pytest.raises(ConfigError, match="n_boot"):
        cluster_bootstrap([np.array([0, 1])], lambda i: 0.0, n_boot=-1)


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
    g = {s: prediction_gap(domains[0.0], domains[s], n_boot=200, rng=0) for s in SCALES}
    assert abs(g[1.0].value) < 0.5 and g[1.0].lo <= 0.0 <= g[1.0].hi
    assert g[1.0].value < g[1.5].value < g[2.0].value
    assert g[1.5].lo > g[1.0].hi and g[2.0].lo > g[1.5].hi
    for s, e in g.items():
        assert e.lo <= e.value <= e.hi and e.n == np.unique(domains[s].episode).size
    again = prediction_gap(domains[0.0], domains[1.5], n_boot=200, rng=0)
    assert again == g[1.5]


def test_c2st_is_chance_for_same_dynamics_and_rises(domains: dict[float, Transitions]) -> None:
    c = {s: transition_c2st(domains[0.0], domains[s], n_folds=3, max_iter=40, n_boot=200, rng=0)
         for s in SCALES}
    assert abs(c[1.0].value) < 0.1 and c[1.0].lo <= 0.0 <= c[1.0].hi
    assert c[1.0].value < c[1.5].value < c[2.0].value
    assert c[2.0].lo > c[1.0].hi
    d = c[2.0].details
    assert d["accuracy"] == pytest.approx(d["k"] / d["n_rows"])
    assert c[2.0].value == pytest.approx(2 * d["accuracy"] - 1)


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
    assert (sc.lo <= sc.value).all() and (sc.value <= sc.hi).all() and (sc.n > 1).all()
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
