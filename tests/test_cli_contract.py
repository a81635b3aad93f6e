"""The command-line contract, checked on every command of ``realgap.cli.build_parser()``.

The parser tree is walked, so a command added later is covered without editing this file:
every leaf command has ``--json``, ``--quiet``, ``--verbose`` and ``--config``; every option
has help, and every option with a default shows it in ``--help``; no help prints ``%%``.
Then behaviour on tiny inputs: ``--json`` prints exactly one JSON document on stdout,
``--config`` files (keys, overrides, one-line errors), ``--verbose`` logging, options
generated from config dataclasses matching their fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
from pathlib import Path

import pytest

from realgap.cli import build_parser, main

_VALUELESS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction,
              argparse._CountAction, argparse._HelpAction, argparse._VersionAction,
              argparse.BooleanOptionalAction)


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    from realgap.cli._options import populate

    yield path, populate(parser)  # a lazy command's options exist once it is used
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def _is_leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


PARSER = build_parser()
ALL = list(_parsers(PARSER))
LEAVES = [(" ".join(path), p) for path, p in ALL if path and _is_leaf(p)]
LEAF_IDS = [name for name, _ in LEAVES]


def test_the_walk_finds_every_command() -> None:
    # a floor, not the list: the walk must reach nested commands, and new ones count too
    names = set(LEAF_IDS)
    assert {"gap", "demo", "generate", "train", "rollout", "evaluate", "vat", "report",
            "correlate", "data info", "data validate", "data convert", "data export",
            "data upgrade", "encoders list", "encoders show", "protocol summarize",
            "dynamics collect", "dynamics gap", "dynamics degrade", "dynamics sysid"} <= names


@pytest.mark.parametrize(("name", "parser"), LEAVES, ids=LEAF_IDS)
def test_every_command_has_the_common_options(name: str, parser: argparse.ArgumentParser) -> None:
    flags = parser._option_string_actions
    for flag in ("--json", "--quiet", "--verbose", "--config"):
        assert flag in flags, f"realgap {name} has no {flag}"
    assert isinstance(flags["--json"], argparse._StoreTrueAction)


def _rendered_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help entry of one option as ``--help`` prints it, on one line."""
    formatter = parser.formatter_class(prog=parser.prog, width=10_000)
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def _default_forms(default: object) -> set[str]:
    """How a default may be written: as Python prints it, or as typed on a command line."""
    forms = {str(default)}
    if isinstance(default, (list, tuple)):
        forms.add(",".join(map(str, default)) if default else "none")
        forms.add(",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in default))
    if isinstance(default, float):
        forms.add(f"{default:g}")
    if default == "":
        forms.add("none")
    return forms


@pytest.mark.parametrize(("name", "parser"), LEAVES, ids=LEAF_IDS)
def test_help_shows_every_default(name: str, parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction,
                                                             argparse._VersionAction)):
            continue
        flag = action.option_strings[-1]
        text = _rendered_help(parser, action)
        assert action.help and action.help.strip(), f"realgap {name} {flag} has no help"
        if isinstance(action, _VALUELESS) or action.default in (None, argparse.SUPPRESS):
            continue
        assert any(re.search(r"default:?\s+" + re.escape(form) + r"(?![\w.])", text)
                   for form in _default_forms(action.default)), (
            f"realgap {name} {flag}: default {action.default!r} not shown in {text!r}")


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) or "realgap" for p, _ in ALL])
def test_no_help_prints_a_doubled_percent(path: tuple[str, ...], parser: argparse.ArgumentParser
                                          ) -> None:
    assert "%%" not in parser.format_help()


def test_help_shows_a_default_added_without_help_text() -> None:
    from realgap.cli._options import HelpFormatter

    parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    parser.add_argument("--k", type=int, default=384)
    parser.add_argument("--ratio", type=float, default=0.5, help="a ratio (default 0.5)")
    text = parser.format_help()
    assert "(default: 384)" in text
    assert text.count("default") == 2  # not appended again when the help says it


def test_evaluate_help_prints_one_percent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "95% Wilson" in out and "%%" not in out


def test_lazy_commands_get_their_options_when_used() -> None:
    """dynamics gap/degrade/sysid options are added on first use (their config modules import
    scipy.stats); parsing, --help and the contract walk all see them."""
    from realgap.cli._options import is_pending

    parser = build_parser()
    (gap,) = [p for path, p in _raw_parsers(parser) if path == ("dynamics", "gap")]
    assert is_pending(gap) and "--scales" not in gap._option_string_actions
    args = parser.parse_args(["dynamics", "gap", "--scales", "1,2", "--no-latent", "--json"])
    assert (args.scales, args.latent, args.json) == ((1.0, 2.0), False, True)
    assert not is_pending(gap) and "--config" in gap._option_string_actions
    other = build_parser()
    (sysid,) = [p for path, p in _raw_parsers(other) if path == ("dynamics", "sysid")]
    assert "--bounds LOW,HIGH" in sysid.format_help()


def _raw_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """The parser tree as built, lazy commands left unpopulated."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _raw_parsers(child, (*path, name))


def test_every_dynamics_command_has_help_text() -> None:
    (dyn,) = [p for path, p in ALL if path == ("dynamics",)]
    sub = next(a for a in dyn._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert set(helps) == {"collect", "gap", "degrade", "sysid"}
    assert all(h for h in helps.values())
    for name, parser in sub.choices.items():
        assert parser.description, f"dynamics {name} has no description"


# --- options generated from the config dataclasses ---------------------------------------

def _generated_cases():
    from realgap.dynamics.degrade import DegradeConfig
    from realgap.jobs.demo import DemoConfig
    from realgap.jobs.dynamics import DynamicsGapConfig, SysidConfig
    from realgap.jobs.gap import GapConfig
    from realgap.protocol.vat import VATConfig
    from realgap.sim.generate import GenerateConfig

    return [("gap", GapConfig, {"progress"}), ("demo", DemoConfig, {"progress", "dataset"}),
            ("generate", GenerateConfig, set()), ("vat", VATConfig, set()),
            ("dynamics gap", DynamicsGapConfig, set()), ("dynamics degrade", DegradeConfig, set()),
            ("dynamics sysid", SysidConfig, set())]


@pytest.mark.parametrize(("command", "cls", "not_options"), _generated_cases(),
                         ids=["gap", "demo", "generate", "vat", "dynamics gap", "dynamics degrade",
                              "dynamics sysid"])
def test_every_config_field_is_an_option_with_its_default(command, cls, not_options) -> None:
    parser = dict(LEAVES)[command]
    by_dest = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(cls):
        if f.name in not_options:
            continue
        assert f.name in by_dest, f"{cls.__name__}.{f.name} is unreachable from `realgap {command}`"
        action = by_dest[f.name]
        if f.default is not dataclasses.MISSING and action.default is not None:
            assert action.default == f.default, (command, f.name)
    # and parsing the defaults back gives the library's own defaults
    if command == "gap":
        from realgap.cli._dataclass_options import config_from_args

        args = PARSER.parse_args(["gap", "--encoders", "pixels", "--out", "o"])
        cfg = config_from_args(cls, args, progress=True)
        assert cfg == cls(encoders=("pixels",), out="o")


def test_gap_reaches_n_worst_and_batch_size() -> None:
    from realgap.cli._dataclass_options import config_from_args
    from realgap.jobs.gap import GapConfig

    args = PARSER.parse_args(["gap", "--encoders", "a,b", "--out", "o", "--n-worst", "2",
                              "--batch-size", "8", "--maps", "none",
                              "--weights", "a=/w.pt"])
    cfg = config_from_args(GapConfig, args)
    assert (cfg.encoders, cfg.n_worst, cfg.batch_size, cfg.maps, cfg.weights) == (
        ("a", "b"), 2, 8, (), (("a", "/w.pt"),))


def test_field_docstrings_become_help() -> None:
    from realgap.cli._dataclass_options import field_docs
    from realgap.jobs.gap import GapConfig
    from realgap.protocol.vat import VATConfig

    assert field_docs(GapConfig)["n_worst"] == "Worst-covered real frames shown per encoder."
    assert field_docs(VATConfig)["alpha"] == "significance level."  # Attributes: section
    text = " ".join(dict(LEAVES)["gap"].format_help().split())
    assert "--n-worst N_WORST Worst-covered real frames shown per encoder. (default: 6)" in text


# --- --json on tiny inputs ---------------------------------------------------------------

def _json_out(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:
    assert main(argv) == code
    out = capsys.readouterr().out
    return json.loads(out)  # the whole of stdout is one document


def _synthetic(tmp_path: Path) -> Path:
    from realgap.data.synthetic import write_synthetic

    return write_synthetic(tmp_path / "fs", domains=("sim", "real"), n_episodes=2, n_frames=4,
                           size=8, rng=3)


def test_data_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json_out(capsys, ["data", "validate", str(_synthetic(tmp_path)), "--json"])
    assert doc["ok"] is True and doc["problems"] == []
    assert (doc["n_frames"], doc["n_episodes"]) == (16, 4)
    assert len(doc["content_hash"]) == 64


def _break(root: Path, *episodes: str) -> None:
    for key in episodes:
        (root / "episodes" / key / "episode.json").write_text("{not json")


def test_data_validate_lists_every_bad_episode(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = _synthetic(tmp_path)
    bad = sorted(p.name for p in (root / "episodes").iterdir())[:3]
    _break(root, *bad)
    assert main(["data", "validate", str(root)]) == 2
    cap = capsys.readouterr()
    listed = cap.out.splitlines()
    assert [line.split(":")[0] for line in listed] == [f"bad episode {k}" for k in bad]
    assert cap.err.count("\n") == 1 and cap.err.startswith("realgap: error: ")
    assert "and 2 more of 4 episodes are bad (listed above)" in cap.err
    # the same with --json: every problem in the document, the verdict on stderr
    doc = _json_out(capsys, ["data", "validate", str(root), "--json"], code=2)
    assert doc["ok"] is False and [p["episode"] for p in doc["problems"]] == bad
    assert doc["n_episodes"] == 1


def test_data_validate_one_bad_episode_is_its_own_line(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = _synthetic(tmp_path)
    key = sorted(p.name for p in (root / "episodes").iterdir())[1]
    _break(root, key)
    assert main(["data", "validate", str(root)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and key in cap.err and "more" not in cap.err


def test_data_info_and_encoders_list_keep_their_json(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json_out(capsys, ["data", "info", str(_synthetic(tmp_path)), "--json"])
    assert doc["n_frames"] == 16
    rows = _json_out(capsys, ["encoders", "list", "--json"])
    assert any(r["name"] == "pixels" for r in rows)


def test_protocol_summarize_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = tmp_path / "c.csv"
    counts.write_text("setting,condition,successes,trials\nsim,nominal,3,4\nsim,dim,1,4\n")
    doc = _json_out(capsys, ["protocol", "summarize", str(counts), "--json"])
    assert doc["run_id"] is None
    assert [(r["successes"], r["trials"]) for r in doc["pooled"]] == [(4, 8)]


def test_dynamics_collect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.npz"
    doc = _json_out(capsys, ["dynamics", "collect", "--env", "InvertedPendulum-v5", "--steps",
                             "6", "--max-episode-steps", "3", "--perturb", "gravity=1.5",
                             "--out", str(out), "--json"])
    assert doc["transitions"] == 6 and doc["trajectories"] == 2
    assert Path(doc["path"]).is_file() and "gravity" in doc["perturbation"]


def test_generate_json_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fs"
    doc = _json_out(capsys, ["generate", "--task", "reach-mug", "--episodes", "1",
                             "--max-steps", "2", "--image-size", "16", "--no-contact-sheet",
                             "--out", str(out), "--json"])
    assert doc["frames"] == 4 and doc["frameset"] == str(out) and doc["contact_sheet"] is None
    assert {(r["domain"], r["frames"]) for r in doc["counts"]} == {("sim", 2), ("real-proxy", 2)}
    assert capsys.readouterr().err == ""  # --json implies no progress


def test_jsonable_is_strict_json() -> None:
    import numpy as np

    from realgap.cli._common import jsonable
    from realgap.stats import Estimate

    doc = jsonable({1.5: Estimate(1.0, float("nan"), 2.0, 3, 3, 0), "a": np.float32(0.5),
                    "p": Path("x"), "t": (np.int64(2),)})
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["1.5"]["lo"] is None and json.loads(text)["a"] == 0.5


# --- --config, --verbose -----------------------------------------------------------------

def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realgap: error: "), err
    return err


def _parse_with_config(argv: list[str]) -> argparse.Namespace:
    from realgap.cli._options import apply_config_file

    parser = build_parser()
    apply_config_file(parser, argv)
    return parser.parse_args(argv)


def test_config_file_sets_options_and_flags_override(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('encoders = "pixels,resnet18-random"\nout = "res"\nn-boot = 50\n'
                   'n_perm = 7\nmaps = ["pca"]\nweights = ["a=/x.pt", "b=/y.pt"]\n')
    args = _parse_with_config(["gap", "--config", str(cfg), "--n-boot", "9"])
    assert args.encoders == ("pixels", "resnet18-random") and args.out == "res"
    assert (args.n_boot, args.n_perm, args.maps) == (9, 7, ("pca",))  # flag beats file
    assert args.weights == [("a", "/x.pt"), ("b", "/y.pt")]
    # a factor range as a TOML list; a boolean flag as true/false
    cfg.write_text("scales = [1, 2.5, 4]\nno-latent = true\n")
    args = _parse_with_config(["dynamics", "gap", f"--config={cfg}"])
    assert args.scales == (1.0, 2.5, 4.0) and args.latent is False
    # without --config the defaults are the command's own
    args = _parse_with_config(["dynamics", "gap"])
    assert (args.scales, args.latent) == ((1.0, 1.5, 2.0), True)


@pytest.mark.parametrize(("text", "needles"), [
    ("n-bot = 5\n", ["key 'n-bot' is not an option of `realgap gap`", "did you mean n-boot"]),
    ("n-boot = 'many'\n", ["key 'n-boot'", "invalid int value: 'many'"]),
    ("json = 3\n", ["key 'json'", "expected true or false"]),
    ("encoders = {a = 1}\n", ["key 'encoders'", "expected a string, number or list"]),
    ("executor = 'slurm'\n", ["key 'executor'", "invalid choice: 'slurm'"]),
    ("n-boot = \n", ["not valid TOML"]),
    ("config = 'other.toml'\n", ["key 'config' is not an option"]),
])
def test_bad_config_file_is_one_line_naming_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needles: list[str]) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    err = _error_line(capsys, ["gap", "--encoders", "pixels", "--out", str(tmp_path),
                               "--config", str(cfg)])
    assert f"--config {cfg}" in err
    for needle in needles:
        assert needle in err, err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _error_line(capsys, ["data", "info", str(tmp_path), "--config", str(tmp_path / "no.toml")])
    assert "no.toml: no such file" in err


def test_config_file_supplies_a_required_option(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'out = "{tmp_path / "t.npz"}"\nsteps = 4\nmax-episode-steps = 2\n'
                   'env = "InvertedPendulum-v5"\njson = true\n')
    doc = _json_out(capsys, ["dynamics", "collect", "--config", str(cfg)])
    assert doc["transitions"] == 4


def test_verbose_logs_debug_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _synthetic(tmp_path)
    assert main(["data", "validate", str(root)]) == 0
    assert "DEBUG" not in capsys.readouterr().err
    assert main(["data", "validate", str(root), "--verbose"]) == 0
    cap = capsys.readouterr()
    assert "realgap: DEBUG: realgap.cli:" in cap.err and cap.out.startswith("ok: ")
    assert logging.getLogger("realgap").level == logging.DEBUG
    main(["data", "validate", str(root)])  # the next run is quiet again
    assert logging.getLogger("realgap").level == logging.WARNING


def test_quiet_has_one_meaning_everywhere() -> None:
    for name, parser in LEAVES:
        flags = parser._option_string_actions
        if "--no-progress" in flags:
            assert flags["--no-progress"] is flags["--quiet"], name


def test_json_of_a_command_without_its_own_is_still_one_document(
        capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.cli import _run_for_json

    def text_only(args: argparse.Namespace) -> int:
        print("report: out/report.html")
        return 0

    def json_itself(args: argparse.Namespace) -> int:
        print(json.dumps({"a": 1}))
        return 0

    ns = argparse.Namespace(command="report", json=True, func=text_only)
    assert _run_for_json(ns) == 0
    assert json.loads(capsys.readouterr().out) == {
        "command": "realgap report", "exit_code": 0, "output": ["report: out/report.html"]}
    ns = argparse.Namespace(command="x", data_command="y", json=True, func=json_itself)
    _run_for_json(ns)
    assert json.loads(capsys.readouterr().out) == {"a": 1}  # passed on unchanged


GROUPS = [path for path, p in ALL if path and not _is_leaf(p)]


@pytest.mark.parametrize("path", GROUPS, ids=[" ".join(p) for p in GROUPS])
def test_a_command_group_alone_is_one_error_line_naming_its_subcommands(
        path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(list(path)) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1 and cap.err.startswith("realgap: error: ")
    parser = dict(ALL)[path]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert all(name in cap.err for name in sub.choices)


def test_dynamics_tables_never_print_a_point_outside_its_interval_silently() -> None:
    """sysid, gap and degrade print estimates through one helper: a point outside its own
    interval (Estimate.bias) carries the mark and by how much, never just the numbers."""
    from realgap.cli.dynamics import _ci
    from realgap.stats import Estimate

    inside = Estimate(1.5, 1.4, 1.6, 10, 100, 20)
    outside = Estimate(1.501, 1.40, 1.50, 10, 100, 20)
    assert _ci(inside) == "1.5 [1.4, 1.6]"
    assert _ci(outside) == "1.501 [1.4, 1.5] (point outside its interval by 0.001: bias)"
    assert _ci(Estimate(2.0, float("nan"), float("nan"), 10, 100, 0)) == "2"
