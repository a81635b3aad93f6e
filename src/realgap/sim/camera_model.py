"""A parametric camera model that turns clean renders into proxy-real camera frames.

Real cameras differ from a simulator's ideal pinhole in ways a visual policy sees
(sim-to-real-glossary.txt, "the reality gap": sensor noise, lighting, colour; "sensor
gap": idealised cameras versus their noisy real counterparts). :class:`CameraModel`
applies, in the order light meets them:

1. **Lens** (geometry): radial distortion, Brown-Conrady model with two coefficients
   (Brown, "Decentering distortion of lenses", 1966; OpenCV's ``k1, k2``)::

       r^2 = x_u^2 + y_u^2,   (x_d, y_d) = (x_u, y_u) * (1 + k1 r^2 + k2 r^4)

   with ``x = (u - cx) / f``, ``y = (v - cy) / f`` in normalised image coordinates,
   ``cx = (W-1)/2``, ``cy = (H-1)/2`` the pixel-centre of the image and ``f = max(H, W)/2``
   (so the middle of the longer edge sits at radius 1). ``k1 < 0`` is barrel distortion.
   Barrel distortion pulls the frame's border inwards; like a camera that crops its
   sensor to a full rectangle (OpenCV ``getOptimalNewCameraMatrix`` with ``alpha=0``),
   the distorted coordinates are then scaled by ``zoom = max(1, 1/m)``, where ``m`` is
   the smallest ratio, over the input's border pixels, of distorted to undistorted
   extent along the edge's axis (for pure barrel, ``m = 1 + k1 r_c^2 + k2 r_c^4`` at the
   corner radius ``r_c``), so no output pixel samples outside the render.
   The output pixel at distorted position ``d`` samples the input at the undistorted
   position ``u`` solving ``d = zoom * distort(u)`` (fixed-point iteration),
   bilinearly; the sampling map is precomputed once per (H, W, k1, k2) and cached.
2. **Lens** (photometry): vignetting ``I * (1 - vignetting * rho^2)`` with ``rho`` the
   distance from the centre normalised to 1 at the corners; Gaussian optical blur of
   ``blur_sigma`` pixels.
3. **Sensor**: Poissonian-Gaussian noise in the heteroscedastic normal approximation
   (Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for
   single-image raw-data", IEEE TIP 2008, eq. 3)::

       z = y + sqrt(shot_gain * y + read_std^2) * n,   n ~ N(0, 1)

   in 8-bit digital numbers (DN, 0..255): ``shot_gain`` is DN per photo-electron, so a
   flat patch at level ``y`` has noise standard deviation ``sqrt(shot_gain*y + read_std^2)``.
4. **ISP**: white-balance gains per channel, then a 3x3 colour matrix (rows: output
   R, G, B), then the tone curve ``out = 255 * (x / 255) ** gamma``; clip and round to
   uint8.

Every stage whose parameters are neutral is skipped, so the identity model returns its
input unchanged (bit-exact). Images are ``uint8 (H, W, 3)`` RGB throughout.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from realgap._optional import require
from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError

__all__ = ["IDENTITY_CAMERA", "MILD_PROXY_CAMERA", "REAL_PROXY_CAMERA", "CameraModel",
           "distort_points"]

_IDENTITY_MATRIX: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _geometry(h: int, w: int) -> tuple[float, float, float]:
    """Principal point ``(cx, cy)`` in pixels and normalising focal length ``f`` (px)."""
    return (w - 1) / 2.0, (h - 1) / 2.0, max(h, w) / 2.0


def _radial_scale(x: np.ndarray, y: np.ndarray, k1: float, k2: float) -> np.ndarray:
    r2 = x * x + y * y
    return 1.0 + k1 * r2 + k2 * r2 * r2


@functools.lru_cache(maxsize=64)
def _zoom(h: int, w: int, k1: float, k2: float) -> float:
    """Scale that makes the distorted render fill the frame (see the module docstring)."""
    cx, cy, f = _geometry(h, w)
    xe, ye = cx / f, cy / f  # normalised half extents (pixel centres of the border)
    ty = np.linspace(-ye, ye, 4 * h + 1)
    tx = np.linspace(-xe, xe, 4 * w + 1)
    ratios = [1.0]
    if xe > 0:  # left/right edges: the distorted |x| over the undistorted |x|
        ratios.append(float(np.min(_radial_scale(np.full_like(ty, xe), ty, k1, k2))))
    if ye > 0:
        ratios.append(float(np.min(_radial_scale(tx, np.full_like(tx, ye), k1, k2))))
    return max(1.0, 1.0 / min(ratios))


def distort_points(
    uv: np.ndarray, shape: tuple[int, int], k1: float, k2: float
) -> np.ndarray:
    """Where the lens moves undistorted pixel positions (forward Brown-Conrady map + zoom).

    Args:
        uv: float (N, 2) pixel positions ``(u=column, v=row)`` in the undistorted image.
        shape: image ``(H, W)``.
        k1, k2: radial coefficients (see the module docstring for the normalisation).

    Returns:
        float64 (N, 2) positions ``(u, v)`` in the distorted image.
    """
    h, w = int(shape[0]), int(shape[1])
    cx, cy, f = _geometry(h, w)
    pts = np.asarray(uv, dtype=np.float64)
    x, y = (pts[:, 0] - cx) / f, (pts[:, 1] - cy) / f
    s = _radial_scale(x, y, k1, k2) * _zoom(h, w, k1, k2)
    return np.stack([x * s * f + cx, y * s * f + cy], axis=1)


@functools.lru_cache(maxsize=32)
def _distortion_map(h: int, w: int, k1: float, k2: float) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear gather plan for the inverse map (output pixel -> input position).

    Returns flat indices of the four neighbours, int64 (4, H*W), and their weights,
    float32 (4, H*W); weights are zero where the source falls outside the render.
    """
    cx, cy, f = _geometry(h, w)
    z = _zoom(h, w, k1, k2)
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                       indexing="ij")
    xd, yd = (u - cx) / f / z, (v - cy) / f / z
    xu, yu = xd.copy(), yd.copy()
    # Invert x_d = x_u * s(r_u^2) by fixed-point iteration x_u <- x_d / s(r_u^2); it
    # converges for the mild distortions a camera model uses (|k1|, |k2| <= 0.5).
    for _ in range(30):
        s = _radial_scale(xu, yu, k1, k2)
        xu, yu = xd / s, yd / s
    su, sv = xu * f + cx, yu * f + cy
    eps = 1e-6
    valid = (su >= -eps) & (su <= w - 1 + eps) & (sv >= -eps) & (sv <= h - 1 + eps)
    su_c, sv_c = np.clip(su, 0, w - 1), np.clip(sv, 0, h - 1)
    u0 = np.clip(np.floor(su_c).astype(np.int64), 0, max(w - 2, 0))
    v0 = np.clip(np.floor(sv_c).astype(np.int64), 0, max(h - 2, 0))
    u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
    fu, fv = su_c - u0, sv_c - v0
    idx = np.stack([v0 * w + u0, v0 * w + u1, v1 * w + u0, v1 * w + u1]).reshape(4, -1)
    wts = np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv])
    wts = (wts * valid).reshape(4, -1).astype(np.float32)
    for arr in (idx, wts):
        arr.setflags(write=False)
    return idx, wts


def _remap(img: np.ndarray, idx: np.ndarray, wts: np.ndarray) -> np.ndarray:
    """Bilinear gather of ``uint8 (H, W, 3)`` with a :func:`_distortion_map` plan -> float32.

    Pixels are packed into one uint32 each (RGB + a zero byte) so each of the four
    neighbour reads is a single 1-D gather (about 2x faster than gathering RGB rows).
    """
    h, w, _ = img.shape
    rgba = np.zeros((h * w, 4), np.uint8)
    rgba[:, :3] = img.reshape(-1, 3)
    taps = rgba.view(np.uint32)[:, 0][idx].view(np.uint8).reshape(4, h * w, 4)
    out = taps[0].astype(np.float32) * wts[0][:, None]
    for k in range(1, 4):
        out += taps[k].astype(np.float32) * wts[k][:, None]
    return out[:, :3].reshape(h, w, 3)


@functools.lru_cache(maxsize=32)
def _vignette_map(h: int, w: int, strength: float) -> np.ndarray:
    """Multiplicative falloff float32 (H, W, 1): ``1 - strength * rho^2``, rho=1 at corners."""
    cx, cy, _ = _geometry(h, w)
    v, u = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    rho2 = ((u - cx) ** 2 + (v - cy) ** 2) / max(cx * cx + cy * cy, 1e-12)
    out = (1.0 - strength * rho2).astype(np.float32)[..., None]
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class CameraModel:
    """Lens, sensor and ISP effects applied to a clean render (see the module docstring).

    The default instance is the identity: :meth:`apply` returns the input unchanged.
    """

    k1: float = 0.0
    """Radial distortion coefficient of r^2 (normalised coordinates; < 0 barrel)."""
    k2: float = 0.0
    """Radial distortion coefficient of r^4."""
    vignetting: float = 0.0
    """Fractional light loss at the image corners, in [0, 1)."""
    blur_sigma: float = 0.0
    """Standard deviation of the Gaussian optical blur, pixels (>= 0)."""
    shot_gain: float = 0.0
    """Shot-noise gain, DN per photo-electron: noise variance grows by ``shot_gain * y``."""
    read_std: float = 0.0
    """Read-noise standard deviation, DN (8-bit scale)."""
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per-channel gains (R, G, B) applied before the colour matrix."""
    color_matrix: tuple[float, ...] = field(default=_IDENTITY_MATRIX)
    """Row-major 3x3 colour-correction matrix (9 floats); output = M @ (r, g, b)."""
    gamma: float = 1.0
    """Tone-curve exponent: ``out = 255 * (x/255) ** gamma`` (< 1 brightens mid-tones)."""

    def __post_init__(self) -> None:
        def bad(name: str, got: object, want: str) -> ConfigError:
            return ConfigError(f"CameraModel.{name}: got {got!r}, expected {want}")

        if not (abs(self.k1) <= 0.5 and abs(self.k2) <= 0.5):
            raise bad("k1/k2", (self.k1, self.k2), "|k| <= 0.5 (mild lens distortion)")
        if not 0.0 <= self.vignetting < 1.0:
            raise bad("vignetting", self.vignetting, "a value in [0, 1)")
        for name in ("blur_sigma", "shot_gain", "read_std"):
            val = getattr(self, name)
            if not (np.isfinite(val) and val >= 0):
                raise bad(name, val, "a finite value >= 0")
        if len(self.white_balance) != 3 or min(self.white_balance) <= 0:
            raise bad("white_balance", self.white_balance, "three positive gains")
        if len(self.color_matrix) != 9:
            raise bad("color_matrix", self.color_matrix, "9 floats (row-major 3x3)")
        if not (np.isfinite(self.gamma) and self.gamma > 0):
            raise bad("gamma", self.gamma, "a positive exponent")
        # Normalise sequences to tuples of floats so the dataclass stays hashable.
        object.__setattr__(self, "white_balance", tuple(float(g) for g in self.white_balance))
        object.__setattr__(self, "color_matrix", tuple(float(c) for c in self.color_matrix))

    @property
    def is_identity(self) -> bool:
        """True when every stage is neutral (``apply`` then returns the input bytes)."""
        return self == CameraModel()

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable parameters (for provenance in FrameSet ``factors``/meta)."""
        return {
            "k1": self.k1, "k2": self.k2, "vignetting": self.vignetting,
            "blur_sigma": self.blur_sigma, "shot_gain": self.shot_gain,
            "read_std": self.read_std, "white_balance": list(self.white_balance),
            "color_matrix": list(self.color_matrix), "gamma": self.gamma,
        }

    def apply(self, img: np.ndarray, rng: RngLike = None) -> np.ndarray:
        """Pass one clean render through the camera.

        Args:
            img: ``uint8 (H, W, 3)`` RGB.
            rng: randomness for the sensor noise (Generator, int seed or None). Only
                drawn from when ``shot_gain`` or ``read_std`` is non-zero.

        Returns:
            A new ``uint8 (H, W, 3)`` array.
        """
        arr = np.asarray(img)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ConfigError(
                f"CameraModel.apply: img must be uint8 (H, W, 3), got {arr.dtype} "
                f"{arr.shape}; convert with np.asarray(img, dtype=np.uint8)"
            )
        if self.is_identity:
            return arr.copy()
        h, w, _ = arr.shape
        if self.k1 != 0.0 or self.k2 != 0.0:
            x = _remap(arr, *_distortion_map(h, w, float(self.k1), float(self.k2)))
        else:
            x = arr.astype(np.float32)
        if self.vignetting:
            x = x * _vignette_map(h, w, float(self.vignetting))
        if self.blur_sigma:
            ndimage = require("scipy.ndimage")
            x = ndimage.gaussian_filter(x, (self.blur_sigma, self.blur_sigma, 0),
                                        mode="nearest", truncate=3.0)
        if self.shot_gain or self.read_std:
            gen = as_rng(rng)
            var = self.shot_gain * np.maximum(x, 0.0) + np.float32(self.read_std**2)
            x = x + np.sqrt(var) * gen.standard_normal(x.shape, dtype=np.float32)
        if self.white_balance != (1.0, 1.0, 1.0):
            x = x * np.asarray(self.white_balance, dtype=np.float32)
        if self.color_matrix != _IDENTITY_MATRIX:
            m = np.asarray(self.color_matrix, dtype=np.float32).reshape(3, 3)
            x = x @ m.T
        if self.gamma != 1.0:
            x = 255.0 * (np.clip(x, 0.0, 255.0) / 255.0) ** np.float32(self.gamma)
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)

    def apply_batch(self, imgs: np.ndarray, rng: RngLike = None) -> np.ndarray:
        """:meth:`apply` over ``uint8 (N, H, W, 3)``, one generator shared in order."""
        gen = as_rng(rng)
        arr = np.asarray(imgs)
        if arr.ndim != 4:
            raise ConfigError(
                f"CameraModel.apply_batch: imgs must be uint8 (N, H, W, 3), got {arr.shape}"
            )
        return np.stack([self.apply(im, gen) for im in arr]) if len(arr) else arr.copy()


#: The identity camera (a clean simulator render).
IDENTITY_CAMERA = CameraModel()

#: The sensor of the proxy-real domain: a small consumer camera. Slight barrel distortion
#: (k1=-0.06, as for a wide webcam lens), 30 % corner vignetting, 0.6 px blur, shot noise
#: of 0.5 DN/e- with 2 DN read noise (std ~8 DN at mid-grey), a warm white balance,
#: a colour matrix with channel crosstalk (rows sum to 1, so greys stay grey before white
#: balance) and a gamma of 0.9.
REAL_PROXY_CAMERA = CameraModel(
    k1=-0.06,
    k2=0.01,
    vignetting=0.3,
    blur_sigma=0.6,
    shot_gain=0.5,
    read_std=2.0,
    white_balance=(1.08, 1.0, 0.86),
    color_matrix=(0.86, 0.10, 0.04, 0.06, 0.88, 0.06, 0.03, 0.12, 0.85),
    gamma=0.9,
)

#: The sensor of the mild proxy-real domain (``real-proxy-mild``): every stage of
#: :data:`REAL_PROXY_CAMERA` at about half its departure from the identity (half the
#: distortion, vignetting, blur and noise; white balance, colour matrix and tone curve
#: half-way to neutral), i.e. a well-calibrated camera close to the simulator's.
MILD_PROXY_CAMERA = CameraModel(
    k1=-0.03,
    k2=0.005,
    vignetting=0.15,
    blur_sigma=0.3,
    shot_gain=0.25,
    read_std=1.0,
    white_balance=(1.04, 1.0, 0.93),
    color_matrix=(0.93, 0.05, 0.02, 0.03, 0.94, 0.03, 0.015, 0.06, 0.925),
    gamma=0.95,
)
