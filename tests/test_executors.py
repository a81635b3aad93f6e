"""The Ray executor gives the local executor's results, byte for byte, on a local Ray
cluster of 2 workers: embeddings (episodes x encoders as tasks, written into the same
cache), rollouts (episodes as tasks of an actor pool) and the gap job's numbers.

The cluster tests are ``slow``: starting Ray alone took minutes on the 2 shared cores of
the development machine (load average ~30), far over the default suite's budget. Run
them with ``pytest -m slow tests/test_executors.py``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realgap.errors import ConfigError, DataError
from realgap.executors import Executor, as_executor


def test_executor_options_are_checked() -> None:
    assert as_executor(None) == Executor() and not as_executor("local").is_ray
    assert as_executor("ray", "auto") == Executor("ray", "auto")
    with pytest.raises(ConfigError, match="--executor 'dask'"):
        Executor("dask")
    with pytest.raises(ConfigError, match="needs --executor ray"):
        Executor("local", "auto")
    with pytest.raises(ConfigError, match="num_cpus"):
        Executor("ray", num_cpus=0)


def test_cli_refuses_an_address_without_ray(tmp_path: Path, capsys: Any) -> None:
    from realgap.cli import main

    rc = main(["gap", "--frames", str(tmp_path), "--encoders", "pixels", "--out", str(tmp_path / "o"),
               "--ray-address", "auto"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["realgap: error: --ray-address 'auto' needs --executor ray"]


# -- on a local Ray cluster of 2 workers ------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Any:
    ray = pytest.importorskip("ray")
    pytest.importorskip("torch")
    from realgap.executors import _patient_local_start

    if ray.is_initialized():
        ray.shutdown()
    _patient_local_start()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from realgap.data.synthetic import write_synthetic

    # 6 frames per episode and chunks of 4 rows: chunks straddle episodes
    return write_synthetic(tmp_path_factory.mktemp("fs") / "fs", domains=("sim", "real"),
                           n_episodes=3, n_frames=6, size=16, rng=0)


def _chunks(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("chunk_*.npy"))}


@pytest.mark.slow
def test_embeddings_equal_local_and_fill_the_same_cache(cluster: Any, frames: Path,
                                                        tmp_path: Path) -> None:
    from realgap.data import FrameSet
    from realgap.encoders import create_encoder
    from realgap.encoders.cache import cache_path, embed_frameset, embed_framesets

    fs = FrameSet.open(frames)
    views = [fs, fs.select(domain="real")]
    encs = [create_encoder("pixels"), create_encoder("resnet18-random", seed=3)]
    jobs = [(e, v) for e in encs for v in views]
    local = [embed_frameset(e, v, "head", tmp_path / "a", batch_size=4, progress=False)
             for e, v in jobs]
    remote = embed_framesets(jobs, "head", tmp_path / "b", batch_size=4, progress=False,
                             executor="ray")
    for (e, v), x, y in zip(jobs, local, remote, strict=True):
        assert x.tobytes() == y.tobytes(), e.name
        a, b = cache_path(e, v, "head", tmp_path / "a"), cache_path(e, v, "head", tmp_path / "b")
        assert _chunks(a) == _chunks(b) and len(_chunks(a)) == -(-len(v) // 4)
        assert (a / "meta.json").read_bytes() == (b / "meta.json").read_bytes()

    # the Ray-filled cache answers a local run without recomputing anything, and a cache
    # with one chunk missing gets exactly that chunk back from Ray
    class Refuse:
        def __getattr__(self, name: str) -> Any:
            return getattr(encs[1], name)

        def embed(self, images: np.ndarray) -> np.ndarray:
            raise AssertionError("recomputed a cached chunk")

    again = embed_frameset(Refuse(), fs, "head", tmp_path / "b", batch_size=4, progress=False)  # type: ignore[arg-type]
    assert again.tobytes() == local[2].tobytes()
    folder = cache_path(encs[1], fs, "head", tmp_path / "b")
    (folder / "chunk_000002.npy").unlink()
    resumed = embed_frameset(encs[1], fs, "head", tmp_path / "b", batch_size=4, progress=False,
                             executor=Executor("ray"))
    assert resumed.tobytes() == local[2].tobytes()
    assert _chunks(folder) == _chunks(cache_path(encs[1], fs, "head", tmp_path / "a"))


@pytest.mark.slow
def test_a_task_error_arrives_as_itself(cluster: Any, frames: Path, tmp_path: Path) -> None:
    from realgap.encoders.cache import open_handle
    from realgap.executors import ray_map

    def boom(x: int) -> int:
        if x == 2:
            raise ConfigError(f"task {x}: bad")
        return x * x

    assert ray_map(Executor("ray"), boom, [(0,), (1,), (3,)]) == [0, 1, 9]
    with pytest.raises(ConfigError, match="^task 2: bad$"):
        ray_map(Executor("ray"), boom, [(1,), (2,)])
    # a worker that sees other files than the driver refuses them
    with pytest.raises(DataError, match="differs from the driver's"):
        open_handle({"root": str(frames), "set_hash": "0" * 64, "rows": np.arange(3),
                     "view_hash": "x"})


@pytest.mark.slow
def test_rollouts_equal_local(cluster: Any) -> None:
    pytest.importorskip("mujoco")
    os.environ.setdefault("MUJOCO_GL", "egl")
    from realgap.policy import EnvSpec, run_episodes
    from realgap.policy.episodes import episode_specs

    spec = EnvSpec("reach-box", image_size=32, max_steps=12)
    eps = episode_specs(None, [0, 1, 2, 3], {"TD": 2})
    local = run_episodes("expert", spec, eps, workers=1)
    remote = run_episodes("expert", spec, eps, workers=2, executor="ray")
    assert remote == local
    assert [o.seed for o in remote] == [0, 1, 2, 3]


@pytest.mark.slow
def test_gap_job_numbers_equal_local(cluster: Any, frames: Path, tmp_path: Path) -> None:
    from realgap.jobs.gap import GapConfig, run_gap

    def run(executor: str) -> Any:
        return run_gap(GapConfig(encoders=("pixels",), out=str(tmp_path / executor),
                                 frames=str(frames), real_domain="real", n_boot=20, n_perm=0,
                                 saliency_pairs=0, maps=(), progress=False, executor=executor))

    a, b = run("local"), run("ray")
    assert "embed:ray" in b.timings
    assert a.estimates == b.estimates and a.ranking == b.ranking
