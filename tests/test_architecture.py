"""The architecture as tests: the import graph between realgap's packages has no cycle and
goes one way; one home per concept (Estimate, the physics schema, the protocol-factor
schema); every registry is non-empty and each entry passes a conformance test generated
from the registry.

The import graph is read with ``ast`` from ``src/realgap`` (imports inside functions
count: a lazy import is still a dependency), so it needs nothing installed.
"""

from __future__ import annotations

import ast
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "realgap"

#: The layers, lowest first. A package may import only packages of LOWER layers; packages of
#: one layer do not import each other. Data flows one way: stats <- metrics <- jobs;
#: protocol (data) <- sim (applies it) <- policy (plays it) <- jobs (runs it);
#: store <- report (reads only the store) <- jobs (which build the report after a run).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "__init__"),
    ("_rng", "_optional", "_registry", "_gl"),
    ("_torch_compat", "_plot"),
    ("stats", "executors"),
    ("data", "metrics", "store"),
    ("protocol",),
    ("sim", "encoders"),
    ("dynamics", "policy"),
    ("explain",),
    ("report",),
    ("jobs",),
    ("study",),
    ("cli",),
)
LAYER = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}

#: Known edges against the layering, each with the reason and who removes it. The test
#: also fails when one disappears, so this list only shrinks.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}

#: What the report may import: the store (and the leaf helpers below it).
REPORT_MAY_IMPORT = {"store", "stats", "errors", "_plot", "_registry", "_rng", "_optional",
                     "__init__"}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def import_graph() -> dict[str, dict[str, list[str]]]:
    """``{package: {imported package: [files]}}`` over every ``realgap.X`` import."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for f in sorted(SRC.rglob("*.py")):
        pkg = _package(f)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            mods: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = ([f"realgap.{a.name}" for a in node.names] if node.module == "realgap"
                        else [node.module])
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            for m in mods:
                parts = m.split(".")
                if parts[0] != "realgap" or len(parts) < 2:
                    continue
                target = "__init__" if parts[1] == "__version__" else parts[1]
                if target != pkg:
                    graph[pkg][target].append(str(f.relative_to(SRC)))
    return graph


GRAPH = import_graph()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found.append([*stack[stack.index(m):], m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return found


def test_every_package_has_a_layer() -> None:
    pkgs = {_package(f) for f in SRC.rglob("*.py")}
    assert pkgs - set(LAYER) == set(), "add the new package to LAYERS"


def test_imports_go_down_the_layers() -> None:
    bad = {(a, b): files[:2] for a, deps in GRAPH.items() for b, files in deps.items()
           if LAYER[b] >= LAYER[a] and (a, b) not in KNOWN_EXCEPTIONS}
    assert bad == {}, "an import against the layering (see LAYERS): " + repr(bad)
    stale = [e for e in KNOWN_EXCEPTIONS if e[1] not in GRAPH.get(e[0], {})]
    assert stale == [], f"fixed: remove {stale} from KNOWN_EXCEPTIONS"


def test_no_cycle_between_packages() -> None:
    edges = {a: {b for b in deps if (a, b) not in KNOWN_EXCEPTIONS} for a, deps in GRAPH.items()}
    assert _cycles(edges) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_policy_and_protocol_do_not_import_each_other() -> None:
    assert "protocol" not in GRAPH.get("policy", {})
    assert "policy" not in GRAPH.get("protocol", {})


def test_report_reads_only_the_store() -> None:
    assert set(GRAPH.get("report", {})) <= REPORT_MAY_IMPORT
    assert "jobs" not in GRAPH.get("report", {})


# -- one home per concept --------------------------------------------------------------
def _classes() -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for f in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                out[node.name].append(str(f.relative_to(SRC)))
    return out


def _dataclass_fields(node: ast.ClassDef) -> set[str]:
    return {n.target.id for n in node.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def test_one_estimate() -> None:
    assert _classes()["Estimate"] == ["stats/intervals.py"]
    import realgap.dynamics
    import realgap.stats

    assert realgap.dynamics.Estimate is realgap.stats.Estimate


def test_one_physics_schema() -> None:
    """One class declares physics fields (gravity and friction); dynamics names it too.
    (``PHYSRange`` holds the ranges the PHYS factor draws settings from, not a schema.)"""
    homes = []
    for f in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.endswith("Range") \
                    and {"gravity", "friction"} <= _dataclass_fields(node):
                homes.append(f"{f.relative_to(SRC)}:{node.name}")
    assert homes == ["sim/physics.py:PhysicsSetting"]
    from realgap.dynamics import Perturbation
    from realgap.sim.physics import PhysicsSetting

    assert Perturbation is PhysicsSetting


def test_one_protocol_factor_schema() -> None:
    """Only protocol/factors.py spells the factor set; every user shares its checks."""
    factor_set = {"BG", "LT", "TD", "OBJ", "POS", "CP", "TH"}
    homes = []
    for f in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            keys: set[str] = set()
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ProtocolFactor":
                keys = {a.value for a in node.args[:1] if isinstance(a, ast.Constant)}
                homes += [str(f.relative_to(SRC))] if keys else []
                continue
            if factor_set <= keys:
                homes.append(str(f.relative_to(SRC)))
    assert set(homes) == {"protocol/factors.py"}
    from realgap.protocol import factors, spec

    assert spec.FACTORS is factors.FACTORS


def test_one_fault_one_error_everywhere() -> None:
    """The same bad value is the same ConfigError from a protocol file and from --set."""
    from realgap.cli.rollout import parse_settings
    from realgap.errors import ConfigError
    from realgap.protocol.spec import load_protocol, parse_protocol

    raw = dict(load_protocol("tabletop-v1").raw)
    raw["conditions"] = [{"name": "x", "factor": "OBJ", "value": 9}]
    with pytest.raises(ConfigError) as from_file:
        parse_protocol(raw, "p.json")
    with pytest.raises(ConfigError) as from_cli:
        parse_settings(["OBJ=9"])
    tail = "OBJ 9 is not valid; expected an object instance index in [0, 4)"
    assert str(from_file.value).endswith(tail) and str(from_cli.value).endswith(tail)


# -- registries, and conformance tests generated from them ------------------------------
def test_registries_are_not_empty() -> None:
    from realgap.dynamics import DYNAMICS_FACTORS
    from realgap.encoders import ENCODERS
    from realgap.protocol.spec import PROTOCOLS
    from realgap.sim import FACTORS, TASKS

    for reg in (PROTOCOLS, DYNAMICS_FACTORS, ENCODERS, FACTORS, TASKS):
        assert len(reg) > 0, reg.kind


def _protocol_names() -> list[str]:
    from realgap.protocol.spec import PROTOCOLS

    return PROTOCOLS.names()


@pytest.mark.parametrize("name", _protocol_names())
def test_each_registered_protocol_builds(name: str) -> None:
    from realgap.protocol.factors import FACTORS
    from realgap.protocol.spec import load_protocol

    spec = load_protocol(name)
    assert spec.name == name and spec.conditions[0].is_base and len(spec.seeds) == spec.trials
    for c in spec.conditions[1:]:
        s = spec.settings(c)
        assert set(s) == set(FACTORS) and [k for k in s if s[k] != spec.base[k]] == [c.factor]


def _dynamics_factor_names() -> list[str]:
    from realgap.dynamics import DYNAMICS_FACTORS

    return DYNAMICS_FACTORS.names()


@pytest.mark.parametrize("name", _dynamics_factor_names())
def test_each_dynamics_factor_applies_and_undoes(name: str) -> None:
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from realgap.dynamics import factor_perturbation, perturb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HalfCheetah's deprecated settotalmass
        env = gym.make("HalfCheetah-v5")
    m = env.unwrapped.model
    arrays = ("body_mass", "geom_friction", "geom_size", "body_pos", "body_inertia")
    before = {k: np.array(getattr(m, k), copy=True) for k in arrays}
    g0 = m.opt.gravity.copy()
    factor = name.replace("BODY", "torso")
    with perturb(env, factor_perturbation(factor, 1.5)):
        after = {k: getattr(m, k) for k in arrays}
        changed = [k for k in arrays if not np.array_equal(before[k], after[k])]
        assert changed or not np.array_equal(g0, m.opt.gravity), f"{name} changed nothing"
    for k in arrays:
        np.testing.assert_array_equal(getattr(m, k), before[k], err_msg=f"{name}: {k}")
    np.testing.assert_array_equal(m.opt.gravity, g0)
    env.close()
