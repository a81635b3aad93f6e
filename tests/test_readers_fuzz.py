"""Fuzzing the dataset readers (issue 10): a mutated source must convert or fail typed.

Each reader gets a small valid source in its published layout (the builders of
``test_data_readers``); hypothesis mutates one part of a fresh copy (raw bytes of a
file, a field of a JSON document, a column of a Parquet table or CSV manifest, an array
of an HDF5 file or zarr store: its contents, shape and dtype) and the copy is converted
with :func:`realgap.data.convert`. The only accepted outcomes are a successful
conversion or a :class:`realgap.errors.RealgapError` whose message names the source
(never the output set, never a bare library exception). The default suite runs a fixed,
derandomized budget; ``make test-slow`` runs a long random search.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_data_readers import (
    _episodes,
    _lerobot_eps,
    _write_folder,
    _write_lerobot_v21,
    _write_lerobot_v30,
    _write_robomimic,
    _write_zarr,
)

from realgap.data import convert
from realgap.errors import RealgapError

# -- the valid sources ----------------------------------------------------------------


def _small(lengths: list[int], cams: tuple[str, ...] = ("head", "wrist")) -> list[dict]:
    return _episodes(lengths, size=8, a_dim=2, s_dim=2, seed=1, cams=cams)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "folder-csv": lambda d: _write_folder(d / "src", _small([2, 2], ("head",)), "csv"),
    "folder-parquet": lambda d: _write_folder(d / "src", _small([2, 2], ("head",)), "parquet"),
    "robomimic": lambda d: _write_robomimic(d / "lift.hdf5", _small([2, 2]), [0, 1]),
    "zarr-v2": lambda d: _write_zarr(d / "buf.zarr", _small([2, 2], ("head",)), 2),
    "zarr-v3": lambda d: _write_zarr(d / "buf.zarr", _small([2, 2], ("head",)), 3),
    "zarr-zip": lambda d: _write_zarr(d / "buf.zarr.zip", _small([2, 2], ("head",)), 3, True),
    "lerobot-v2.1": lambda d: _write_lerobot_v21(d / "ds", _lerobot_eps([2, 2])),
    "lerobot-v3.0": lambda d: _write_lerobot_v30(d / "ds", _lerobot_eps([2, 1, 1])),
}

#: Examples per source in the default suite (about 0.1-0.3 s each on one core).
QUICK = {"folder-csv": 12, "folder-parquet": 8, "robomimic": 15, "zarr-v2": 10, "zarr-v3": 10,
         "zarr-zip": 8, "lerobot-v2.1": 12, "lerobot-v3.0": 10}
#: Examples per source under ``make test-slow`` (``REALGAP_FUZZ_EXAMPLES`` overrides).
LONG = int(os.environ.get("REALGAP_FUZZ_EXAMPLES", "400"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, build in BUILDERS.items():
        d = tmp_path_factory.mktemp(name.replace(".", ""))
        out[name] = build(d)
        assert len(convert(out[name], d / "check")) > 0  # the unmutated source converts
    return out


# -- mutations ------------------------------------------------------------------------

#: Images planted beside each mutated copy (outside it) in the fixtures' two sizes; paths
#: to them are among the drawn values, and their colour must never reach a FrameSet.
SECRET_RGB = (1, 2, 3)
SECRETS = ("../secret-8.png", "../secret-32.png")

JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from([*SECRETS, "../../etc/passwd", "/etc/passwd", "{foo}", "{",
                                           "{episode_index.__class__}", "v3.0", "video",
                                           "image", "float32", "", "\x00"]),
)
JSON_VALUE = st.recursive(JSON_LEAF, lambda c: st.one_of(st.lists(c, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), c,
                                                                         max_size=3)),
                          max_leaves=6)
DTYPES = st.sampled_from(["f8", "f4", "f2", "i8", "i1", "u1", "u8", "?", "S3", "c8"])


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _set(node: object, path: tuple, value: object, delete: bool) -> object:
    if not path:
        return value
    parent = node
    for k in path[:-1]:
        parent = parent[k]  # type: ignore[index]
    if delete:
        del parent[path[-1]]  # type: ignore[attr-defined]
    else:
        parent[path[-1]] = value  # type: ignore[index]
    return node


def mutate_json_doc(doc: object, data: st.DataObject) -> object:
    path = data.draw(st.sampled_from(_paths(doc)), label="json path")
    delete = bool(path) and data.draw(st.booleans(), label="delete")
    return _set(doc, path, None if delete else data.draw(JSON_VALUE, label="json value"), delete)


def mutate_bytes(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes())
    op = data.draw(st.sampled_from(["flip", "truncate", "zero", "append", "empty"]), label="op")
    if op == "empty" or not raw:
        raw = bytearray()
    elif op == "flip":
        for _ in range(data.draw(st.integers(1, 8), label="n flips")):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif op == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="keep")]
    elif op == "zero":
        a = data.draw(st.integers(0, len(raw) - 1), label="from")
        raw[a:a + data.draw(st.integers(1, 512), label="len")] = b"\0" * min(512, len(raw) - a)
    else:
        raw += data.draw(st.binary(min_size=1, max_size=64), label="tail")
    path.write_bytes(bytes(raw))


def mutate_json_file(path: Path, data: st.DataObject) -> None:
    if path.suffix == ".jsonl":
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        doc = mutate_json_doc(lines, data)
        path.write_text("\n".join(json.dumps(x) for x in doc) if isinstance(doc, list) else json.dumps(doc))
    else:
        path.write_text(json.dumps(mutate_json_doc(json.loads(path.read_text()), data)))


def _random_array(data: st.DataObject) -> np.ndarray:
    from hypothesis.extra.numpy import array_shapes, arrays

    dtype = np.dtype(data.draw(DTYPES, label="dtype"))
    shape = data.draw(array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5), label="shape")
    return data.draw(arrays(dtype, shape), label="array")


def _column_values(n: int, data: st.DataObject) -> list:
    kind = data.draw(st.sampled_from(["none", "float", "int", "text", "lists", "binary", "image"]),
                     label="column kind")
    one = {"none": st.none(), "float": st.floats(allow_nan=True, allow_infinity=True, width=32),
           "int": st.integers(-(2**63), 2**63 - 1),
           "text": st.sampled_from([*SECRETS, "../../etc/passwd", "a", "", "{foo}", "/tmp/x.png",
                                    "1.5"]),
           "image": st.fixed_dictionaries({"bytes": st.none(), "path": st.sampled_from(SECRETS)}),
           "lists": st.lists(st.floats(allow_nan=True, width=32), max_size=4),
           "binary": st.binary(max_size=16)}[kind]
    return data.draw(st.lists(st.one_of(one, st.none()), min_size=n, max_size=n), label="values")


def mutate_parquet(path: Path, data: st.DataObject) -> None:
    t = pq.read_table(path)
    if t.num_rows == 0 or t.num_columns == 0:
        return mutate_bytes(path, data)
    col = data.draw(st.sampled_from(t.column_names), label="column")
    op = data.draw(st.sampled_from(["replace", "drop", "rows"]), label="op")
    if op == "drop":
        t = t.drop_columns([col])
    elif op == "rows":
        keep = data.draw(st.lists(st.integers(0, t.num_rows - 1), max_size=t.num_rows + 1), label="rows")
        t = t.take(pa.array(keep, pa.int64()))
    else:
        values = _column_values(t.num_rows, data)
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arr = pa.array([None if v is None else str(v) for v in values])
        t = t.set_column(t.column_names.index(col), col, arr)
    pq.write_table(t, path)


def mutate_csv(path: Path, data: st.DataObject) -> None:
    df = pd.read_csv(path)
    col = data.draw(st.sampled_from(list(df.columns)), label="column")
    row = data.draw(st.integers(0, len(df) - 1), label="row")
    value = data.draw(st.one_of(st.sampled_from([*SECRETS, "/etc/hostname", "", "[1, 2",
                                                 "[1e400, 0]", "nan", "-1", "9" * 30, "{}"]),
                                st.floats(allow_nan=True), st.integers(-(2**70), 2**70),
                                st.text(max_size=8)), label="value")
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    df.to_csv(path, index=False)


def mutate_hdf5(path: Path, data: st.DataObject) -> None:
    import h5py

    with h5py.File(path, "a") as f:
        names: list[str] = []
        f.visit(names.append)
        name = data.draw(st.sampled_from(sorted(names)), label="member")
        op = data.draw(st.sampled_from(["array", "delete", "group", "attr"]), label="op")
        if op == "attr":
            f["data"].attrs["env_args"] = json.dumps(data.draw(JSON_VALUE, label="env_args"))
            return
        del f[name]
        if op == "array":
            f.create_dataset(name, data=_random_array(data))
        elif op == "group":
            f.create_group(name)


def mutate_zarr(path: Path, data: st.DataObject) -> None:
    import zarr

    root = zarr.open_group(str(path), mode="a")
    names = sorted(f"{g}/{k}" for g in ("data", "meta") for k in root[g].array_keys())
    name = data.draw(st.sampled_from(names), label="array")
    del root[name]
    if data.draw(st.booleans(), label="replace"):
        root.create_array(name, data=_random_array(data))  # zarr refuses some dtypes: skipped


def _mutate(src: Path, data: st.DataObject) -> str:
    """Apply one drawn mutation to the copy ``src``; return a description."""
    files = sorted(p for p in ([src] if src.is_file() else src.rglob("*")) if p.is_file())
    kinds = ["bytes"]
    if any(p.suffix in (".json", ".jsonl", ".zarray", ".zgroup", ".zattrs") for p in files):
        kinds.append("json")
    if any(p.suffix == ".parquet" for p in files):
        kinds.append("parquet")
    if any(p.suffix == ".csv" for p in files):
        kinds.append("csv")
    if src.suffix == ".hdf5":
        kinds.append("hdf5")
    if src.is_dir() and src.suffix == ".zarr":
        kinds.append("zarr")
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    if kind == "hdf5":
        mutate_hdf5(src, data)
        return kind
    if kind == "zarr":
        mutate_zarr(src, data)
        return kind
    pick = {"bytes": files,
            "json": [p for p in files if p.suffix in (".json", ".jsonl", ".zarray", ".zgroup", ".zattrs")],
            "parquet": [p for p in files if p.suffix == ".parquet"],
            "csv": [p for p in files if p.suffix == ".csv"]}[kind]
    path = data.draw(st.sampled_from(pick), label="file")
    {"bytes": mutate_bytes, "json": mutate_json_file, "parquet": mutate_parquet,
     "csv": mutate_csv}[kind](path, data)
    return f"{kind} {path.relative_to(src.parent)}"


# -- the property -----------------------------------------------------------------------

STATS: dict[str, dict[str, float]] = {}


def _convert_or_typed_error(original: Path, data: st.DataObject, name: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        for size in (8, 32):
            Image.new("RGB", (size, size), SECRET_RGB).save(Path(d) / f"secret-{size}.png")
        src = Path(d) / original.name
        (shutil.copytree if original.is_dir() else shutil.copy)(original, src)
        try:
            _mutate(src, data)
        except (ValueError, TypeError, OverflowError, KeyError, OSError):
            pass  # h5py/zarr refused to write a drawn dtype: the member is deleted, still a fault
        t0 = time.perf_counter()
        try:
            fs = convert(src, Path(d) / "out")
            outcome = "ok"
            for cam in fs.cameras:  # no file from outside the source was read
                assert not (fs.images(cam) == SECRET_RGB).all(axis=(1, 2, 3)).any(), cam
        except RealgapError as exc:
            msg = str(exc)
            # the message names the source (a file in it), never only the output set
            assert str(src) in msg, msg
            outcome = "error"
        s = STATS.setdefault(name, {"examples": 0, "ok": 0, "error": 0, "seconds": 0.0})
        s["examples"] += 1
        s[outcome] += 1
        s["seconds"] += time.perf_counter() - t0


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fuzz_readers_quick(sources: dict[str, Path], name: str) -> None:
    @settings(max_examples=QUICK[name], derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        _convert_or_typed_error(sources[name], data, name)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fuzz_readers_long(sources: dict[str, Path], name: str) -> None:
    @settings(max_examples=LONG, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        _convert_or_typed_error(sources[name], data, name)

    run()
    print(f"fuzz {name}: {STATS.get(name)}")
