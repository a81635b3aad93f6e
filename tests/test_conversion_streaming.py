"""`data convert` at the FrameSet end: compact storage of LeRobot video, staged publishing.

Known answers: a video-sourced camera stored as the source video decodes to exactly the
frames a direct PyAV decode of the source gives (stated maximum error: 0 levels); the set
is at most 2x the source's size; a conversion that fails half-way (a decode error, a full
disk) publishes nothing and leaves an existing set byte-identical.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from test_data_readers import _lerobot_eps, _write_lerobot_v21, _write_lerobot_v30

from realgap.cli import main
from realgap.data import FrameSet, convert
from realgap.data.checks import validate
from realgap.errors import DataError


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _direct_decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realgap: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_video_kept_as_video_exact_and_within_2x(tmp_path: Path, version: str) -> None:
    eps = _lerobot_eps([5, 4, 3])
    writer = _write_lerobot_v21 if version == "v2.1" else _write_lerobot_v30
    src = writer(tmp_path / "src", eps)
    fs = convert(src, tmp_path / "fs")
    assert _size(tmp_path / "fs") <= 2 * _size(src), (_size(tmp_path / "fs"), _size(src))
    codecs = {c: e["codec"] for r in fs._store.records for c, e in r["images"].items()}
    assert codecs == {"top": "video", "wrist": "zstd-up"}
    # each distinct source video is stored once (v3.0: episodes 0 and 1 share file-000)
    assert len(list((tmp_path / "fs" / "videos").iterdir())) == (3 if version == "v2.1" else 2)
    # frames equal a direct decode of the source video, to the last bit
    if version == "v2.1":
        direct = {e: _direct_decode(src / f"videos/chunk-000/observation.images.top/"
                                          f"episode_{e:06d}.mp4") for e in range(3)}
    else:
        key = "observation.images.top"
        f0 = _direct_decode(src / f"videos/{key}/chunk-000/file-000.mp4")
        direct = {0: f0[:5], 1: f0[5:9], 2: _direct_decode(src / f"videos/{key}/chunk-000/file-001.mp4")}
    for e in range(3):
        got = fs.select(episode=e).images("top")
        np.testing.assert_array_equal(got, direct[e])
        # and the lossy codec was not a no-op: the decode is within 4 levels of the originals
        assert np.abs(got.astype(int) - eps[e]["images"]["top"]).mean() < 4
    # the same frames as storing the decoded frames losslessly
    lossless = convert(src, tmp_path / "fs_lossless", video_storage="lossless")
    np.testing.assert_array_equal(lossless.images("top"), fs.images("top"))
    assert {e["codec"] for r in lossless._store.records for e in r["images"].values()} == {"zstd-up"}
    assert lossless.content_hash != fs.content_hash  # the hash covers the stored files
    assert validate(tmp_path / "fs")["n_frames"] == 12


def test_video_that_does_not_reproduce_the_frames_is_stored_losslessly(tmp_path: Path,
                                                                       monkeypatch) -> None:
    import realgap.data._images as images

    src = _write_lerobot_v21(tmp_path / "src", _lerobot_eps([3, 2]))
    real_decode = images.decode_video
    calls = []

    def off_by_one(path, pts):  # a decoder that disagrees with the reader's on one episode
        out = real_decode(path, pts)
        calls.append(1)
        return out + np.uint8(1) if len(calls) == 1 else out

    monkeypatch.setattr(images, "decode_video", off_by_one)
    fs = convert(src, tmp_path / "fs")
    monkeypatch.undo()
    codecs = [r["images"]["top"]["codec"] for r in fs._store.records]
    assert sorted(codecs) == ["video", "zstd-up"]
    assert len(list((tmp_path / "fs/videos").iterdir())) == 1  # the unused copy was removed
    direct = _direct_decode(src / "videos/chunk-000/observation.images.top/episode_000000.mp4")
    np.testing.assert_array_equal(fs.select(episode=0).images("top"), direct)


def test_failure_while_decoding_publishes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    import realgap.data.readers.lerobot as lr

    src = _write_lerobot_v21(tmp_path / "src", _lerobot_eps([3, 3, 3]))
    out = tmp_path / "fs"
    assert main(["data", "convert", str(src), "--out", str(out), "--domain", "sim",
                 "--no-progress"]) == 0
    capsys.readouterr()
    before = _snapshot(out)
    real = lr.decode_video
    n = {"calls": 0}

    def fails_on_third(path, times, fps):  # the up-front pass cannot see this fault
        n["calls"] += 1
        if n["calls"] == 3:
            raise DataError(f"{path}: video cannot be decoded (Invalid data found); copy it again")
        return real(path, times, fps)

    monkeypatch.setattr(lr, "decode_video", fails_on_third)
    err = _one_line(capsys, ["data", "convert", str(src), "--out", str(out), "--domain", "real",
                             "--append", "--no-progress"])
    assert "video cannot be decoded" in err and "episode_000002.mp4" in err
    assert n["calls"] == 3  # episodes 0 and 1 converted (staged) before the fault
    assert _snapshot(out) == before  # ... and nothing of them was published
    n["calls"] = 0
    _one_line(capsys, ["data", "convert", str(src), "--out", str(tmp_path / "new"), "--no-progress"])
    assert not (tmp_path / "new").exists()  # a new set is not created at all
    monkeypatch.undo()
    assert main(["data", "convert", str(src), "--out", str(out), "--domain", "real",
                 "--append", "--no-progress"]) == 0
    assert sorted(FrameSet.open(out).domains) == ["real", "sim"] and len(FrameSet.open(out)) == 18


def test_disk_full_publishes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    import realgap.data._images as images

    src = _write_lerobot_v21(tmp_path / "src", _lerobot_eps([3, 3, 3]))
    out = tmp_path / "fs"
    convert(src, out, domain="sim")
    before = _snapshot(out)
    real = images.write_zstd
    n = {"calls": 0}

    def full_disk(path, frames, sync):
        n["calls"] += 1
        if n["calls"] == 2:
            with open(path, "wb") as f:
                f.write(b"\0" * 10)  # a partial file, as a real full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, frames, sync)

    monkeypatch.setattr(images, "write_zstd", full_disk)
    err = _one_line(capsys, ["data", "convert", str(src), "--out", str(out), "--domain", "real",
                             "--append", "--no-progress"])
    assert f"{out}: no space left on the device while writing episode" in err
    assert "nothing of this conversion was published" in err
    assert _snapshot(out) == before


def _write_av1(path: Path, frames: np.ndarray, fps: int) -> None:
    """AV1 (SVT-AV1, its default random-access structure) in mp4, as the G1 dataset uses."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libsvtav1", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_av1_video_is_kept_and_decodes_exactly(tmp_path: Path) -> None:
    import av

    try:
        av.codec.Codec("libsvtav1", "w")
    except Exception:  # noqa: BLE001 - this FFmpeg build has no AV1 encoder
        pytest.skip("no AV1 encoder in this PyAV build")
    eps = _lerobot_eps([6, 5])
    src = _write_lerobot_v21(tmp_path / "src", eps)
    vids = [src / f"videos/chunk-000/observation.images.top/episode_{e:06d}.mp4" for e in (0, 1)]
    for e, v in enumerate(vids):
        big = np.repeat(np.repeat(eps[e]["images"]["top"], 2, axis=1), 2, axis=2)  # 64x64
        _write_av1(v, big, 10)
    info_path = src / "meta/info.json"
    import json

    info = json.loads(info_path.read_text())
    info["features"]["observation.images.top"]["shape"] = [64, 64, 3]
    info_path.write_text(json.dumps(info))
    fs = convert(src, tmp_path / "fs")
    assert [r["images"]["top"]["codec"] for r in fs._store.records] == ["video", "video"]
    for e, v in enumerate(vids):
        np.testing.assert_array_equal(fs.select(episode=e).images("top"), _direct_decode(v))
    assert _size(tmp_path / "fs") <= 2 * _size(src)


def test_failed_video_conversion_into_a_set_without_videos_adds_nothing(tmp_path: Path, capsys,
                                                                       monkeypatch) -> None:
    import realgap.data.readers.lerobot as lr

    src = _write_lerobot_v21(tmp_path / "src", _lerobot_eps([3, 3]))
    out = tmp_path / "fs"
    convert(src, out, domain="sim", video_storage="lossless")  # no videos/ directory
    before = _snapshot(out)
    real = lr.decode_video
    n = {"calls": 0}

    def fails_on_second(path, times, fps):
        n["calls"] += 1
        if n["calls"] == 2:
            raise DataError(f"{path}: video cannot be decoded; copy it again")
        return real(path, times, fps)

    monkeypatch.setattr(lr, "decode_video", fails_on_second)
    _one_line(capsys, ["data", "convert", str(src), "--out", str(out), "--domain", "real",
                       "--append", "--no-progress"])
    assert _snapshot(out) == before
