"""The readers' shared checks (``realgap.data.readers._base``), with answers known by
construction: paths that stay in or leave a root, path templates, pixel and vector
checks, and the per-episode rules checked against the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realgap.data.readers._base import (
    ReadEpisode,
    check_episodes,
    check_finite,
    check_images,
    check_read_size,
    decode_image,
    format_path,
    inside_root,
)
from realgap.errors import DataError


def test_inside_root_keeps_paths_in_and_refuses_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"o")
    assert inside_root(root, "a/x.png", "f", "image path") == root / "a" / "x.png"
    assert inside_root(root, "a/../a/x.png", "f", "image path") == root / "a/../a/x.png"
    assert inside_root(root, "a/missing.png", "f", "p").name == "missing.png"  # absent: in, allowed
    (root / "in_link").symlink_to(root / "a")  # a symlink that stays inside is fine
    inside_root(root, "in_link/x.png", "f", "p")
    (root / "out_link").symlink_to(tmp_path)
    (root / "loop").symlink_to(root / "loop")
    for bad in ("../outside.png", str(tmp_path / "outside.png"), "out_link/outside.png",
                "a/../../outside.png", "loop/x", "a/x\x00.png"):
        with pytest.raises(DataError, match=r"^manifest.csv: image path .* points outside the dataset"):
            inside_root(root, bad, "manifest.csv", "image path")


def test_format_path_allows_only_the_given_fields() -> None:
    fields = {"episode_index": 7, "episode_chunk": 0}
    assert format_path("data/chunk-{episode_chunk:03d}/ep_{episode_index:06d}.parquet", fields,
                       "info.json", "data_path") == "data/chunk-000/ep_000007.parquet"
    for tmpl, phrase in [("{foo}", "unknown field {foo}"),
                         ("{episode_index.__class__}", "unknown field {episode_index.__class__}"),
                         ("{episode_index[0]}", "unknown field {episode_index[0]}"),
                         ("{episode_index!r}", "unknown field {episode_index}"),
                         ("{}", "unknown field {}"),
                         ("data/{episode_index", "is not a valid path template"),
                         ("{episode_index:s}", "is not a valid path template"),
                         (3, "is not a string")]:
        with pytest.raises(DataError, match=r"^info.json: data_path .*" + phrase.replace("{", r"\{")
                           .replace("}", r"\}").replace("[", r"\[").replace("]", r"\]")):
            format_path(tmpl, fields, "info.json", "data_path")


def test_check_images_scales_expands_and_refuses() -> None:
    x = np.full((2, 3, 4), 0.5, np.float32)  # grayscale floats in [0, 1]
    out = check_images("f", "img", x)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4, 3) and (out == 128).all()
    x[1, 2, 3] = np.nan  # used to become 0, a black pixel
    with pytest.raises(DataError, match=r"^f: img has 1 NaN/inf values \(first in frame 1\)"):
        check_images("f", "img", x)
    with pytest.raises(DataError, match="not numeric pixels"):
        check_images("f", "img", np.array([[["a"]]]))
    with pytest.raises(DataError, match="not numeric pixels"):
        check_images("f", "img", np.zeros((1, 2, 2, 3), np.complex64))
    with pytest.raises(DataError, match=r"values outside \[0, 255\]"):
        check_images("f", "img", np.full((1, 2, 2, 3), 256, np.int32))


def test_check_finite_refuses_what_a_float32_frameset_would_change() -> None:
    np.testing.assert_array_equal(check_finite("f", "a", [1.0, 2.0]), [[1.0], [2.0]])
    with pytest.raises(DataError, match=r"^f: a has values beyond float32 \(first at step 1, dim 0"):
        check_finite("f", "a", [1.0, 1e39])
    with pytest.raises(DataError, match="complex numbers"):
        check_finite("f", "a", np.array([1 + 2j]))
    with pytest.raises(DataError, match="^f: a of x is not numeric"):
        check_finite("f", "a", np.array([b"up", b"down"]), " of x")
    with pytest.raises(DataError, match="^f: a is not numeric"):
        check_finite("f", "a", [[1.0, 2.0], [3.0]])


def test_check_read_size_and_decode_image() -> None:
    check_read_size("f", "x", (2**20, 2**9), 8)  # exactly 4 GiB: allowed
    with pytest.raises(DataError, match=r"^f: x declares shape \(1048577, 512\)"):
        check_read_size("f", "x", (2**20 + 1, 2**9), 8)
    with pytest.raises(DataError, match="^f: row 3 cannot be decoded"):
        decode_image(b"\x89PNG\r\n\x1a\nnot really", "f", "row 3")


def _ep(n: int, a_dim: int = 2, size: int = 4, task: str = "t", img_n: int | None = None) -> ReadEpisode:
    return ReadEpisode(task=task, episode=n, source=f"x:/src#ep={n}",
                       images={"cam": np.zeros((img_n or 3, size, size, 3), np.uint8)},
                       actions=np.zeros((3, a_dim)), states=np.zeros((3, 1)))


@pytest.mark.parametrize(("bad", "phrase"), [
    (_ep(1, a_dim=3), "actions have 3 dims, episode 0's 2"),
    (_ep(1, size=5), "images {'cam': (5, 5, 3)} differ from episode 0's {'cam': (4, 4, 3)}"),
    (_ep(1, img_n=2), "camera 'cam' has 2 frames, the actions 3"),
    (_ep(1, task=""), "the task name is empty"),
])
def test_check_episodes_blames_the_source(bad: ReadEpisode, phrase: str) -> None:
    it = check_episodes("/src", iter([_ep(0), bad]))
    assert next(it).episode == 0  # the first, good episode passes through unchanged
    with pytest.raises(DataError) as info:
        next(it)
    assert str(info.value).startswith("/src: episode 1 (ep=1)") and phrase in str(info.value)
