"""The proxy-real camera model: each stage checked against a value worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from realgap.errors import ConfigError
from realgap.sim.camera_model import (
    IDENTITY_CAMERA,
    REAL_PROXY_CAMERA,
    CameraModel,
    distort_points,
)


def _photo(size: int = 64) -> np.ndarray:
    from realgap.sim.textures import photo_textures

    return photo_textures(size)["coffee"]


def test_identity_returns_input_exactly() -> None:
    img = _photo()
    out = IDENTITY_CAMERA.apply(img, rng=0)
    assert out is not img and np.array_equal(out, img)
    assert IDENTITY_CAMERA.is_identity and not REAL_PROXY_CAMERA.is_identity


@pytest.mark.parametrize(
    ("level", "shot", "read"), [(100.0, 0.5, 3.0), (50.0, 0.0, 4.0), (200.0, 1.0, 0.0)]
)
def test_noise_std_on_flat_image_matches_setting(level: float, shot: float, read: float) -> None:
    cam = CameraModel(shot_gain=shot, read_std=read)
    out = cam.apply(np.full((256, 256, 3), level, np.uint8), rng=1).astype(float)
    # Foi et al. 2008: var = shot*y + read^2; rounding to integers adds 1/12 DN^2.
    # (100, .5, 3) -> sqrt(59.083) = 7.687; (50, 0, 4) -> 4.010; (200, 1, 0) -> 14.145
    expected = np.sqrt(shot * level + read**2 + 1 / 12)
    assert out.std() == pytest.approx(expected, abs=0.06)  # SE ~ sigma/sqrt(2N) ~ 0.02
    assert out.mean() == pytest.approx(level, abs=0.1)


def test_distort_points_matches_hand_computation() -> None:
    # 64x64, k1=-0.1: cx=cy=31.5, f=32; corner r^2 = 2*(31.5/32)^2 = 1.937988,
    # zoom = 1/(1 - 0.1937988) = 1.240385. Point (50, 20): x=0.578125, y=-0.359375,
    # r^2 = 0.463379, s = 0.9536621; s*zoom = 1.182908;
    # u_d = 31.5 + 18.5*1.182908 = 53.3838, v_d = 31.5 - 11.5*1.182908 = 17.8966.
    (ud, vd), = distort_points(np.array([[50.0, 20.0]]), (64, 64), k1=-0.1, k2=0.0)
    assert ud == pytest.approx(53.3838, abs=1e-3)
    assert vd == pytest.approx(17.8966, abs=1e-3)
    # the principal point never moves
    assert np.allclose(distort_points(np.array([[31.5, 31.5]]), (64, 64), -0.1, 0.05),
                       [[31.5, 31.5]])


def test_distortion_moves_a_bright_pixel_where_the_formula_says() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    img[20, 50] = 255  # row v=20, column u=50
    out = CameraModel(k1=-0.1).apply(img, rng=0).astype(float)[..., 0]
    vv, uu = np.mgrid[0:64, 0:64]
    cu, cv = (out * uu).sum() / out.sum(), (out * vv).sum() / out.sum()
    assert cu == pytest.approx(53.38, abs=0.4)
    assert cv == pytest.approx(17.90, abs=0.4)


def test_barrel_distortion_fills_the_frame() -> None:
    out = CameraModel(k1=-0.2, k2=0.02).apply(np.full((48, 64, 3), 90, np.uint8))
    assert out.min() == 90 and out.max() == 90  # no black corners after the zoom


def test_vignetting_corner_and_centre() -> None:
    out = CameraModel(vignetting=0.3).apply(np.full((65, 65, 3), 200, np.uint8))
    assert out[32, 32, 0] == 200  # rho = 0 at the centre
    assert out[0, 0, 0] == 140 and out[64, 64, 2] == 140  # 200 * (1 - 0.3)


def test_blur_of_an_impulse() -> None:
    img = np.zeros((21, 21, 3), np.uint8)
    img[10, 10] = 255
    out = CameraModel(blur_sigma=1.0).apply(img)
    # normalised 1-D kernel centre weight 1/sum_{k=-3..3} exp(-k^2/2) = 0.398943;
    # 255 * 0.398943^2 = 40.58 -> 41
    assert out[10, 10, 0] == 41
    assert abs(int(out[..., 0].astype(int).sum()) - 255) <= 12  # mass kept up to rounding


def test_white_balance_colour_matrix_and_gamma() -> None:
    px = np.array([[[100, 50, 200]]], np.uint8)
    swap_rb = (0, 0, 1, 0, 1, 0, 1, 0, 0)
    out = CameraModel(white_balance=(1.1, 1.0, 0.9), color_matrix=swap_rb).apply(px)
    assert out[0, 0].tolist() == [180, 50, 110]  # (110, 50, 180) with R and B swapped
    out = CameraModel(gamma=0.5).apply(np.full((2, 2, 3), 64, np.uint8))
    assert out[0, 0, 0] == 128  # 255 * sqrt(64/255) = 127.75


def test_same_seed_same_bytes_different_seed_differs() -> None:
    img = _photo()
    a = REAL_PROXY_CAMERA.apply(img, rng=7)
    assert np.array_equal(a, REAL_PROXY_CAMERA.apply(img, rng=7))
    assert not np.array_equal(a, REAL_PROXY_CAMERA.apply(img, rng=8))
    batch = REAL_PROXY_CAMERA.apply_batch(np.stack([img, img]), rng=7)
    assert np.array_equal(batch[0], a) and not np.array_equal(batch[1], a)


def test_real_proxy_preset_changes_the_image_visibly() -> None:
    img = _photo()
    out = REAL_PROXY_CAMERA.apply(img, rng=0).astype(int)
    assert np.abs(out - img.astype(int)).mean() > 5.0
    # Warm white balance on grey: WB gives (1.08, 1, 0.86) g; the colour matrix rows give
    # R = 0.86*1.08 + 0.10 + 0.04*0.86 = 1.0632 g, B = 0.03*1.08 + 0.12 + 0.85*0.86 =
    # 0.8834 g; gamma 0.9 keeps ratios as (R/B)^0.9 = 1.2035^0.9 = 1.1813.
    grey = REAL_PROXY_CAMERA.apply(np.full((64, 64, 3), 128, np.uint8), rng=0).astype(float)
    assert grey[..., 0].mean() / grey[..., 2].mean() == pytest.approx(1.1813, abs=0.02)
    assert REAL_PROXY_CAMERA.to_dict()["k1"] == -0.06


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vignetting": 1.0}, "vignetting"),
        ({"blur_sigma": -1.0}, "blur_sigma"),
        ({"k1": 2.0}, "k1/k2"),
        ({"white_balance": (1.0, 0.0, 1.0)}, "white_balance"),
        ({"color_matrix": (1.0, 0.0)}, "color_matrix"),
        ({"gamma": 0.0}, "gamma"),
    ],
)
def test_bad_parameters_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CameraModel(**kwargs)


def test_bad_image_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="uint8"):
        REAL_PROXY_CAMERA.apply(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ConfigError, match="uint8"):
        REAL_PROXY_CAMERA.apply(np.zeros((8, 8), np.uint8))


_images = arrays(np.uint8, st.tuples(st.integers(2, 12), st.integers(2, 12), st.just(3)))


@settings(max_examples=40, deadline=None)
@given(img=_images, v=st.floats(0.0, 0.95))
def test_vignetting_never_brightens(img: np.ndarray, v: float) -> None:
    out = CameraModel(vignetting=v).apply(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.all(out <= img)


@settings(max_examples=40, deadline=None)
@given(img=_images, k1=st.floats(-0.3, 0.3), k2=st.floats(-0.1, 0.1),
       sigma=st.floats(0.0, 2.0), gamma=st.floats(0.5, 2.0))
def test_noise_free_model_is_deterministic_and_bounded_by_the_input_range(
    img: np.ndarray, k1: float, k2: float, sigma: float, gamma: float
) -> None:
    cam = CameraModel(k1=k1, k2=k2, blur_sigma=sigma)
    out = cam.apply(img)
    # bilinear resampling and a normalised blur are convex combinations of input pixels
    assert out.min() >= img.min() and out.max() <= img.max()
    assert np.array_equal(out, cam.apply(img, rng=123))  # no noise: rng is irrelevant
    lut = CameraModel(gamma=gamma).apply(np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
                                         .repeat(3, axis=2))[..., 0].ravel()
    assert np.all(np.diff(lut.astype(int)) >= 0)  # the tone curve is monotone
