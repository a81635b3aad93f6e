"""Contact sheet of a FrameSet: pair picking, captions and the PNG itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from realgap.data.synthetic import write_synthetic
from realgap.errors import ConfigError
from realgap.sim.contact_sheet import contact_sheet, format_factors, pick_pairs


@pytest.fixture(scope="module")
def paired_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cs") / "fs"
    write_synthetic(path, domains=("real-proxy", "sim"), tasks=("reach-box", "reach-mug"),
                    n_episodes=3, n_frames=5, size=24)
    return path


def test_format_factors_summaries_and_hiding() -> None:
    factors = {
        "BG": {"wall": {"texture": 3, "tint": [1, 1, 1]}, "table": {"texture": 11, "tint": [1, 1, 1]}},
        "CP": {"dpos": [0.012, -0.0004, 0.03], "drot": [0.0174533, 0.0, -0.0349066]},
        "LT": {"key": {"intensity": 0.7123, "color": [1, 1, 1], "pos": [0, 0, 2]}},
        "TH": {"dz": -0.015},
        "TD": {"objects": [{"slot": 0}, {"slot": 3}]},
        "X": {"a": 0.71234, "rgb": [1.0, 0.5, 0.25]},
        "render_domain": "sim",
    }
    assert format_factors(factors).splitlines() == [
        "BG: tex wall=3 table=11",
        "CP: dpos (1.2,0,3) cm  drot (1,0,-2) deg",  # 0.0174533 rad = 1 deg
        "LT: intensity key=0.71",
        "TH: dz -1.5 cm",
        "TD: 2 objects",
        "X: a=0.71 rgb=(1,0.5,0.25)",
    ]
    assert format_factors(factors, keys=["TH"]) == "TH: dz -1.5 cm"
    assert format_factors({"render_domain": "sim"}) == "(nominal: no factor varies)"


def test_varying_factors_lists_only_non_constant_ones(paired_set: Path) -> None:
    from realgap.data import FrameSet
    from realgap.sim.contact_sheet import varying_factors

    fs = FrameSet.open(paired_set)
    # synthetic frames: BG is constant within an episode but differs across episodes,
    # LT.intensity differs per frame
    assert varying_factors(fs) == ["BG", "LT"]
    assert varying_factors(fs.select(rows=[0])) == []


def test_pick_pairs_spreads_over_tasks_and_episodes(paired_set: Path) -> None:
    from realgap.data import FrameSet

    man = FrameSet.open(paired_set).manifest
    pids = pick_pairs(man, 6)
    # round-robin over (task, episode) groups, middle step (round(0.5*4) = 2) first
    assert pids == [f"{t}/{e}/2" for e in range(3) for t in ("reach-box", "reach-mug")]
    more = pick_pairs(man, 8)
    assert more[6:] == ["reach-box/0/0", "reach-mug/0/0"]  # next round: first step
    assert len(set(pick_pairs(man, 30))) == 30  # all 30 states, none twice
    # 2 cells for 2 tasks x 3 episodes: linspace(0, 2, 1) = [0], the first episode
    assert pick_pairs(man, 2) == ["reach-box/0/2", "reach-mug/0/2"]
    # 4 cells: 2 episodes per task, linspace(0, 2, 2) = [0, 2]
    assert pick_pairs(man, 4) == ["reach-box/0/2", "reach-mug/0/2", "reach-box/2/2",
                                  "reach-mug/2/2"]


def test_contact_sheet_png_has_the_planned_size(paired_set: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    out = contact_sheet(paired_set, tmp_path / "sub" / "sheet.png", n_pairs=4,
                        pairs_per_row=2, dpi=50)
    img = iio.imread(out)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    # 2 cells per row x 2 domains x 1.55 in + 0.35 gap + 0.3 margin = 6.85 in -> 342 px at 50 dpi
    assert img.shape[1] == pytest.approx(342, abs=1)
    # the sheet is not blank: the frames (random pixels) make a large spread of values
    assert img[..., :3].std() > 30


def test_contact_sheet_without_pairs(tmp_path: Path) -> None:
    path = tmp_path / "fs"
    write_synthetic(path, domains=("sim", "real"), n_episodes=2, n_frames=3, size=16,
                    paired=False)
    out = contact_sheet(path, tmp_path / "sheet.png", n_pairs=3, dpi=40)
    assert out.is_file() and out.stat().st_size > 1000
    import imageio.v3 as iio

    img = iio.imread(out)
    # 2 cells per row x 2 domains (sim | real), as for paired sets: 6.85 in -> 274 px at 40 dpi
    assert img.shape[1] == pytest.approx(274, abs=1)
    assert img[..., :3].std() > 30  # the frames are drawn, not "missing" placeholders


def test_contact_sheet_bad_arguments(paired_set: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="camera 'wrist'"):
        contact_sheet(paired_set, tmp_path / "x.png", camera="wrist")
    with pytest.raises(ConfigError, match="n_pairs"):
        contact_sheet(paired_set, tmp_path / "x.png", n_pairs=0)
    assert not (tmp_path / "x.png").exists()
