"""Background textures for the simulator and the proxy-real domain.

Two sources, both offline and deterministic:

- :func:`procedural_textures` draws ``n`` distinct, varied patterns (checkers, stripes,
  band-limited noise, gradients, marble, dots, plaid) with random colours, scales and
  orientations. These are what the ``BG`` randomization factor samples from in the
  *sim* domain, as in the domain-randomization study (vla-domain-randomization-study.txt,
  section 3.2.3: "background texture" is one of the visual factors).
- :func:`photo_textures` returns real photographs bundled with scikit-image (``brick``,
  ``grass``, ``gravel``, ``coffee``, ``rocket``, ...). The *real-proxy* domain dresses
  its table and walls with these, so that its surfaces carry the statistics of real
  camera images (sim-to-real-glossary.txt: the "visual gap" of textures, lighting and
  noise), which no procedural pattern reproduces.

Images are ``uint8 (size, size, 3)`` RGB arrays, C-contiguous, values 0..255.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from realgap._optional import require
from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError

__all__ = ["PATTERN_KINDS", "PHOTO_NAMES", "photo_textures", "procedural_textures"]

#: Photographs of scikit-image that ship inside the wheel (no pooch download needed),
#: chosen to look like surfaces a robot might see: masonry, vegetation, stone, a cafe
#: table, outdoor scenes, tissue-like and noisy-sky textures.
PHOTO_NAMES: tuple[str, ...] = (
    "brick",
    "grass",
    "gravel",
    "coffee",
    "rocket",
    "chelsea",
    "astronaut",
    "immunohistochemistry",
    "hubble_deep_field",
    "camera",
    "moon",
    "coins",
)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): ``(y, x)`` each float32 (size, size)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(t, t, indexing="ij")


def _rotated(size: int, rng: np.random.Generator) -> np.ndarray:
    """A coordinate along a random direction, float32 (size, size), roughly in [-1, 1]."""
    y, x = _grid(size)
    theta = rng.uniform(0.0, np.pi)
    return (x - 0.5) * np.cos(theta) + (y - 0.5) * np.sin(theta)


def _smooth_noise(size: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Band-limited Gaussian noise, scaled to [0, 1]: float32 (size, size).

    White noise circularly convolved with a Gaussian of ``sigma`` px, done in the Fourier
    domain (the transfer function of a Gaussian of std ``sigma`` is
    ``exp(-2 pi^2 sigma^2 f^2)``, ``f`` in cycles/px), so the cost does not grow with
    ``sigma`` and the texture tiles seamlessly.
    """
    white = rng.standard_normal((size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    gain = np.exp(-2.0 * np.pi**2 * sigma**2 * (fx * fx + fy * fy))
    field = np.fft.irfft2(np.fft.rfft2(white) * gain, s=(size, size)).astype(np.float32)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _colors(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` random RGB colours in [0, 1], float32 (k, 3), kept apart in brightness."""
    base = rng.uniform(0.0, 1.0, size=(k, 3)).astype(np.float32)
    # Push alternate colours to opposite halves of the brightness range, so two-colour
    # patterns never collapse to a near-flat image.
    shift = np.where(np.arange(k) % 2 == 0, 0.35, -0.35).astype(np.float32)[:, None]
    return np.clip(base * 0.6 + 0.2 + shift, 0.0, 1.0)


def _mix(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Blend two colours with weights ``t`` in [0, 1]: float32 (size, size, 3)."""
    return c0[None, None, :] * (1.0 - t[..., None]) + c1[None, None, :] * t[..., None]


def _checkers(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    n = int(rng.integers(3, 17))
    t = ((np.floor(x * n) + np.floor(y * n)) % 2).astype(np.float32)
    c = _colors(rng, 2)
    return _mix(t, c[0], c[1])


def _stripes(size: int, rng: np.random.Generator) -> np.ndarray:
    u = _rotated(size, rng)
    freq = rng.uniform(3.0, 20.0)
    duty = rng.uniform(0.3, 0.7)
    t = ((u * freq) % 1.0 < duty).astype(np.float32)
    c = _colors(rng, 2)
    return _mix(t, c[0], c[1])


def _noise(size: int, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(1.0, size / 16)
    t = _smooth_noise(size, rng, sigma)
    c = _colors(rng, 2)
    return _mix(t, c[0], c[1])


def _gradient(size: int, rng: np.random.Generator) -> np.ndarray:
    u = _rotated(size, rng)
    t = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    if rng.random() < 0.5:  # radial instead of linear
        y, x = _grid(size)
        cy, cx = rng.uniform(0.2, 0.8, size=2)
        r = np.hypot(x - cx, y - cy)
        t = r / max(float(r.max()), 1e-6)
    c = _colors(rng, 2)
    return _mix(t.astype(np.float32), c[0], c[1])


def _marble(size: int, rng: np.random.Generator) -> np.ndarray:
    # Classic marble: a sine of a coordinate perturbed by multi-octave turbulence
    # (Perlin, "An image synthesizer", SIGGRAPH 1985).
    u = _rotated(size, rng)
    turb = sum(
        _smooth_noise(size, rng, size / (8 * 2**o)) / 2**o for o in range(3)
    )
    freq = rng.uniform(4.0, 12.0)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (u * freq + rng.uniform(2.0, 5.0) * turb))
    c = _colors(rng, 2)
    return _mix(t.astype(np.float32) ** 1.5, c[0], c[1])


def _dots(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    n = int(rng.integers(4, 14))
    radius = rng.uniform(0.15, 0.4)
    fx, fy = (x * n) % 1.0 - 0.5, (y * n) % 1.0 - 0.5
    t = (np.hypot(fx, fy) < radius).astype(np.float32)
    c = _colors(rng, 2)
    return _mix(t, c[0], c[1])


def _plaid(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    n1, n2 = rng.uniform(3.0, 12.0, size=2)
    a = 0.5 + 0.5 * np.sin(2 * np.pi * x * n1)
    b = 0.5 + 0.5 * np.sin(2 * np.pi * y * n2)
    c = _colors(rng, 3)
    out = _mix(a, c[0], c[1]) * 0.5 + _mix(b, c[0], c[2]) * 0.5
    return out


#: Pattern generators, cycled in this order by :func:`procedural_textures`.
_PATTERNS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "checkers": _checkers,
    "stripes": _stripes,
    "noise": _noise,
    "gradient": _gradient,
    "marble": _marble,
    "dots": _dots,
    "plaid": _plaid,
}
PATTERN_KINDS: tuple[str, ...] = tuple(_PATTERNS)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8))


def procedural_textures(n: int, size: int = 256, rng: RngLike = 0) -> list[np.ndarray]:
    """Draw ``n`` distinct procedural textures.

    Kinds cycle through :data:`PATTERN_KINDS` (so any 7 consecutive textures cover every
    kind); colours, scales, orientations and noise are drawn from ``rng``. Same ``rng``
    seed, same bytes.

    Args:
        n: number of textures (>= 0).
        size: side length in pixels (>= 8).
        rng: a Generator, an int seed or None (see :func:`realgap._rng.as_rng`).

    Returns:
        ``n`` arrays, each ``uint8 (size, size, 3)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"procedural_textures: n must be an integer >= 0, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ConfigError(f"procedural_textures: size must be an integer >= 8 px, got {size!r}")
    gen = as_rng(rng)
    kinds = list(_PATTERNS.values())
    return [_to_uint8(kinds[i % len(kinds)](int(size), gen)) for i in range(int(n))]


def _load_photo(name: str) -> np.ndarray:
    """One bundled scikit-image photograph as uint8 (H, W, 3) RGB."""
    data = require("skimage.data")
    img = np.asarray(getattr(data, name)())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


@functools.lru_cache(maxsize=8)
def _photo_textures_cached(size: int) -> tuple[tuple[str, np.ndarray], ...]:
    from threadpoolctl import threadpool_limits

    transform = require("skimage.transform")
    out = []
    for name in PHOTO_NAMES:
        img = _load_photo(name)
        h, w = img.shape[:2]
        s = min(h, w)  # centre square crop keeps the aspect ratio undistorted
        y0, x0 = (h - s) // 2, (w - s) // 2
        crop = img[y0 : y0 + s, x0 : x0 + s]
        # Area-weighted resampling: anti-aliased when shrinking, exact at the native
        # size, and ~4x faster than a Gaussian pre-filter plus bilinear resize.
        # One BLAS thread: the products are small, and a multi-threaded OpenBLAS under
        # load (rollout workers, a busy parent) spin-waits for seconds per call.
        with threadpool_limits(limits=1, user_api="blas"):
            res = transform.resize_local_mean(crop, (size, size), channel_axis=-1,
                                              preserve_range=True)
        arr = np.clip(np.rint(res), 0, 255).astype(np.uint8)
        arr.setflags(write=False)
        out.append((name, arr))
    return tuple(out)


def photo_textures(size: int = 256) -> dict[str, np.ndarray]:
    """Real photographs bundled with scikit-image, as square textures.

    Each photograph in :data:`PHOTO_NAMES` is centre-cropped to a square and resized
    to ``size`` by area-weighted averaging (``skimage.transform.resize_local_mean``); grayscale ones are replicated to
    three channels. Nothing is downloaded. Results are cached per size; the returned
    arrays are fresh writable copies.

    Returns:
        dict name -> ``uint8 (size, size, 3)``, in :data:`PHOTO_NAMES` order.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ConfigError(f"photo_textures: size must be an integer >= 8 px, got {size!r}")
    return {name: arr.copy() for name, arr in _photo_textures_cached(int(size))}
