"""Embedding maps: projections with known answers, the store layout, and the report's hover
checked in headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from realgap.errors import DataError
from realgap.explain.embedding_map import pca_map, select_frames, umap_map
from realgap.jobs.embedding_map import thumbnail_jpeg
from realgap.report import build_report
from realgap.store import ResultsDB
from realgap.store.embedding_map import (
    MAP_ARTIFACT,
    MapFrame,
    read_run_maps,
    write_encoder_maps,
    write_map_frames,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _clouds(shift: float, n: int = 120, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sim and real share one latent factor that drives the first 4 features (so it is the
    sim's first principal axis even after standardization); real is shifted along it."""
    gen = np.random.default_rng(seed)
    load = np.r_[np.ones(4), np.zeros(dim - 4)]

    def draw(offset: float) -> np.ndarray:
        return np.outer(gen.normal(size=n) + offset, load) + 0.3 * gen.normal(size=(n, dim))

    return draw(0.0), draw(shift / 5.0)


def test_pca_is_fitted_on_sim_only() -> None:
    sim, real = _clouds(shift=0.0)
    base = pca_map(sim, real)
    outlier = real.copy()
    outlier[0] = 1e4                                   # one absurd real frame
    moved = pca_map(sim, outlier)
    np.testing.assert_allclose(base.sim, moved.sim)    # the sim map does not move
    np.testing.assert_allclose(base.real[1:], moved.real[1:], rtol=1e-5, atol=1e-5)
    assert "sim frames only" in base.note


def test_pca_shows_a_shift_along_the_sim_axis() -> None:
    sim, real = _clouds(shift=0.0)
    _, far = _clouds(shift=60.0)
    near_gap = abs(pca_map(sim, real).real[:, 0].mean())
    far_map = pca_map(sim, far)
    # a shift of 12 latent sd along the sim's main axis shows on PC1
    assert abs(far_map.real[:, 0].mean() - far_map.sim[:, 0].mean()) > 8
    assert near_gap < 1


def test_umap_is_seeded_and_separates_domains() -> None:
    sim, real = _clouds(shift=80.0, n=60)
    a = umap_map(sim, real, rng=3)
    b = umap_map(sim, real, rng=3)
    np.testing.assert_array_equal(a.sim, b.sim)
    np.testing.assert_array_equal(a.real, b.real)
    # two clusters: every real point is nearer the real centroid than the sim centroid
    cs, cr = a.sim.mean(0), a.real.mean(0)
    assert (np.linalg.norm(a.real - cr, axis=1) < np.linalg.norm(a.real - cs, axis=1)).mean() > 0.95


def test_select_frames_spreads_over_episodes() -> None:
    episodes = np.repeat(np.arange(10), 50)
    rows = select_frames(episodes, 40, rng=0)
    assert rows.size == 40 and np.all(np.diff(rows) > 0)
    assert np.bincount(episodes[rows]).tolist() == [4] * 10
    assert np.array_equal(rows, select_frames(episodes, 40, rng=0))
    assert select_frames(episodes, 1000).size == 500


def _fill(db_dir: Path, *, tamper: bool = False) -> Path:
    sim, real = _clouds(shift=40.0, n=30)
    gen = np.random.default_rng(1)
    frames = ([MapFrame(f"s{i}", "sim", i // 10, i % 10, {"BG.texture": i % 3}) for i in range(30)]
              + [MapFrame(f"r{i}", "real-proxy", i // 10, i % 10, {}) for i in range(30)])
    thumbs = [thumbnail_jpeg(gen.integers(0, 255, size=(32, 32, 3), dtype=np.uint8))
              for _ in frames]
    with ResultsDB(db_dir / "results.duckdb") as db:
        run = db.new_run("gap", {"encoders": ["enc-a"]}, name="enc-a")
        write_map_frames(db, run, frames, thumbs)
        m = pca_map(sim, real)
        flags = np.r_[np.zeros(30, bool), np.arange(30) < 5]
        write_encoder_maps(db, run, "enc-a", [("pca", m.note, np.concatenate([m.sim, m.real]))],
                           flags)
        if tamper:
            db.add_artifact(run, MAP_ARTIFACT, b"{not json", mime="application/json",
                            subject="enc-b")
        db.finish_run(run, "ok")
    return db_dir / "results.duckdb"


def test_store_round_trip_and_tampered_artifact(tmp_path: Path) -> None:
    path = _fill(tmp_path)
    with ResultsDB(path, read_only=True) as db:
        maps = read_run_maps(db, db.latest_run("gap"))
    assert maps is not None and len(maps.frames) == 60 and len(maps.thumbs) == 60
    (enc,) = maps.encoders
    assert enc.encoder == "enc-a" and enc.flagged.sum() == 5 and enc.maps[0][2].shape == (60, 2)
    bad = _fill(tmp_path / "bad", tamper=True)
    with ResultsDB(bad, read_only=True) as db, pytest.raises(DataError, match="not valid JSON"):
        read_run_maps(db, db.latest_run("gap"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps installs it)")
def test_map_hover_shows_thumbnail_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _fill(tmp_path)
    report = build_report(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.on("pageerror", lambda e: console.append(str(e)))
        page.goto(report.as_uri())
        tip = page.locator("#emap-tip")
        assert tip.is_hidden()
        point = page.locator('svg.emap [data-f="35"]')     # a flagged real frame (a cross)
        point.scroll_into_view_if_needed()
        point.hover(force=True)
        assert tip.is_visible()
        text = tip.inner_text()
        assert "real-proxy" in text and "episode 0" in text and "frame r5" in text
        src = tip.locator("img").get_attribute("src")
        assert src is not None and src.startswith("data:image/jpeg;base64,")
        loaded = page.evaluate("document.querySelector('#emap-tip img').complete && "
                               "document.querySelector('#emap-tip img').naturalWidth")
        assert loaded == 64
        page.locator('svg.emap [data-f="3"]').hover(force=True)
        assert "BG.texture: 0" in tip.inner_text()
        assert page.locator("svg.emap path[data-f]").count() == 5   # flagged drawn as crosses
        browser.close()
    assert console == [], console
