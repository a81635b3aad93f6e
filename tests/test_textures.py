"""Textures: procedural patterns and scikit-image photographs, offline and deterministic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from realgap.errors import ConfigError
from realgap.sim.textures import PATTERN_KINDS, PHOTO_NAMES, photo_textures, procedural_textures


def test_procedural_shapes_and_dtype() -> None:
    tex = procedural_textures(9, size=32, rng=0)
    assert len(tex) == 9
    for t in tex:
        assert t.shape == (32, 32, 3) and t.dtype == np.uint8 and t.flags.c_contiguous


def test_procedural_same_seed_same_bytes_different_seed_differs() -> None:
    a = procedural_textures(7, size=32, rng=3)
    b = procedural_textures(7, size=32, rng=3)
    c = procedural_textures(7, size=32, rng=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_procedural_textures_are_distinct_and_not_flat() -> None:
    tex = procedural_textures(2 * len(PATTERN_KINDS), size=48, rng=0)
    for t in tex:
        # every texture has visible structure: no channel-mean image is flat
        assert t.astype(float).mean(axis=2).std() > 8.0
    for a, b in itertools.combinations(tex, 2):
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 5.0


def test_procedural_zero_is_empty_and_bad_args_raise() -> None:
    assert procedural_textures(0, size=16) == []
    with pytest.raises(ConfigError, match="n must be"):
        procedural_textures(-1)
    with pytest.raises(ConfigError, match="size must be"):
        procedural_textures(2, size=4)


def test_photo_textures_offline_shapes_and_names() -> None:
    photos = photo_textures(size=40)
    assert list(photos) == list(PHOTO_NAMES)
    for img in photos.values():
        assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    # brick is a grayscale photograph replicated to RGB; coffee is colour
    brick, coffee = photos["brick"], photos["coffee"]
    assert np.array_equal(brick[..., 0], brick[..., 1])
    assert np.array_equal(brick[..., 1], brick[..., 2])
    assert not np.array_equal(coffee[..., 0], coffee[..., 2])


def test_photo_textures_native_size_is_the_photograph() -> None:
    from skimage import data

    # brick is 512x512 already: crop and resize to 512 must be the identity
    brick = photo_textures(size=512)["brick"]
    assert np.array_equal(brick[..., 0], data.brick())
    # coffee is 400x600: the centre square starts at column 100
    coffee = photo_textures(size=400)["coffee"]
    assert np.array_equal(coffee, data.coffee()[:, 100:500])


def test_photo_textures_returns_copies() -> None:
    a = photo_textures(size=16)
    a["brick"][:] = 0
    assert photo_textures(size=16)["brick"].max() > 0
