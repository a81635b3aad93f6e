"""The README's command blocks run as written.

Every ```bash / ```console / ```sh block of README.md is read; its ``realgap ...`` lines
(``\\`` continuations joined, ``# comments`` and a ``$ `` prompt dropped) are the commands.

Default suite (fast, no command is run):

* each command line parses with :func:`realgap.cli.build_parser` (an unknown flag, a
  missing required option such as ``vat`` without ``--out``, a bad choice fails here);
* the data flow is consistent: every path a command reads (a FrameSet, a policy, a
  transitions file, a results directory) is written by an earlier README command or is one
  of the :data:`INPUTS` this test provides, and every ``--sim-domain``/``--real-domain`` is
  a domain some README command writes (``--real-domain real`` against a set that
  ``generate`` wrote as ``real-proxy`` fails here);
* every link of the README stays inside the repository.

Slow (``-m slow``): every command runs, in README order, in one temporary directory, after
the toy sizes of :data:`TINY` are set on it (the README shows realistic sizes; the same
command lines at toy sizes take minutes, not hours). :data:`PARSE_ONLY` lists the commands
that are only parsed, and why.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from realgap.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
REPO = README.parent

#: Flags set on each README command before the slow test runs it: ``{command: {flag:
#: value}}``; a flag already on the line gets the value, a missing one is appended (value
#: None: a flag without value). Every command also runs with ``--quiet``.
TINY: dict[str, dict[str, str | None]] = {
    "generate": {"--episodes": "4", "--image-size": "32", "--max-steps": "8",
                 "--fidelity": "low", "--proxy-shadows": "off"},
    "gap": {"--n-boot": "10", "--n-perm": "0", "--saliency-pairs": "0", "--maps": "none",
            "--k": "8", "--space-k": "4"},
    "train": {"--epochs": "1", "--image-size": "32", "--batch-size": "8"},
    "rollout": {"--episodes": "2", "--workers": "1", "--max-steps": "5", "--image-size": "32"},
    "evaluate": {"--trials": "1", "--workers": "1", "--image-size": "32", "--max-steps": "5"},
    "vat": {"--episodes": "2", "--epochs": "1", "--rollouts": "2", "--workers": "1",
            "--image-size": "32", "--batch-size": "8"},
    "dynamics collect": {"--steps": "40", "--max-episode-steps": "10"},
    "dynamics gap": {"--steps": "60", "--max-episode-steps": "10", "--no-latent": None,
                     "--n-boot": "10"},
    "dynamics degrade": {"--train-steps": "40", "--eval-episodes": "1", "--seeds": "0",
                         "--max-episode-steps": "10", "--n-boot": "10"},
    "dynamics sysid": {"--n-boot": "2"},
}

#: Commands parsed and checked for data flow but not run by the slow test.
PARSE_ONLY: dict[str, str] = {
    "generate --demo": "renders the 150-episode demo set (~25 s of rendering plus the "
                       "expert); tests/test_demo.py runs the demo on a tiny set",
    "--preset small": "the small study takes ~12 min on 2 cores; tests/test_study_tiny.py "
                      "runs the tiny preset",
}

#: Input files the README's commands read that no README command writes (the user's own
#: data): written by the test, small and valid.
INPUTS: dict[str, str] = {
    "counts.csv": "setting,condition,successes,trials\nsim,nominal,8,10\nsim,dim,5,10\n"
                  "real,nominal,6,10\nreal,dim,2,10\n",
    "sim.csv": "policy,success_rate\nbc,0.8\nbc-rnn,0.6\ndp-c,0.7\n",
    "real.csv": "policy,success_rate\nbc,0.5\nbc-rnn,0.3\ndp-c,0.45\n",
    "gravity.toml": 'env = "HalfCheetah-v5"\nfactor = "gravity"\nscales = [1, 1.25, 1.5, 2]\n'
                    'n-boot = 200\nout = "results/dynamics"\n',
}


def readme_commands(text: str | None = None) -> list[str]:
    """The ``realgap`` command lines of the README's shell blocks, in order."""
    text = README.read_text() if text is None else text
    commands = []
    for block in re.findall(r"^```(?:bash|console|sh|shell)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            line = line.removeprefix("$ ")
            words = shlex.split(line, comments=True)
            # the shell's redirections and pipes are not realgap's arguments
            cut = [i for i, w in enumerate(words) if w in (">", ">>", "|", "2>", "&>")]
            words = words[:cut[0]] if cut else words
            if words and words[0] == "realgap":
                commands.append(shlex.join(words))
    return commands


COMMANDS = readme_commands()


def _command_name(words: list[str]) -> str:
    """``["realgap", "dynamics", "gap", ...]`` -> ``"dynamics gap"``."""
    name = words[1]
    if name in ("data", "dynamics", "encoders", "protocol") and len(words) > 2:
        name += " " + words[2]
    return name


def test_the_readme_has_commands_of_every_kind() -> None:
    names = {_command_name(shlex.split(c)) for c in COMMANDS}
    assert {"generate", "gap", "report", "train", "rollout", "evaluate", "vat", "correlate",
            "protocol summarize", "data info", "data validate", "data convert",
            "dynamics collect", "dynamics gap", "dynamics degrade", "dynamics sysid"} <= names


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command: str) -> None:
    from realgap.errors import ConfigError

    try:
        args = build_parser().parse_args(shlex.split(command)[1:])
    except (ConfigError, SystemExit) as exc:
        pytest.fail(f"README command does not parse: {command}\n  {exc}")
    assert getattr(args, "func", None), f"README command names no action: {command}"


def test_a_wrong_readme_command_fails_the_parse_check() -> None:
    from realgap.errors import ConfigError

    bad = readme_commands("```bash\nrealgap vat --task-a reach-mug  # no --out\n```\n")
    assert bad == ["realgap vat --task-a reach-mug"]
    with pytest.raises(ConfigError, match="--out"):
        build_parser().parse_args(shlex.split(bad[0])[1:])


# --- data flow -------------------------------------------------------------------------

#: Per command, the argument destinations holding paths the command reads.
_READS: dict[str, tuple[str, ...]] = {
    "data info": ("path",), "data validate": ("path",), "data export": ("src",),
    "data convert": ("src",), "data upgrade": ("path",), "gap": ("frames", "sim", "real"),
    "train": ("data",), "rollout": ("policy",), "evaluate": ("policy",), "vat": ("data",),
    "report": ("db",), "protocol summarize": ("counts",), "correlate": ("sim", "real"),
    "dynamics sysid": ("real",), "dynamics gap": ("source", "target"),
}
#: Render domains ``generate`` may write (its --domains names; real-proxy = strong).
_RENDER_DOMAINS = {"sim", "sim-nominal", "real-proxy", "real-proxy-mild", "real-proxy-strong"}
_DEMO_DOMAINS = {"sim", "sim-nominal", "real-proxy-mild", "real-proxy-strong"}


def _written(args: object, name: str) -> tuple[set[str], set[str]]:
    """(paths, domains) a parsed README command writes."""
    paths: set[str] = set()
    out = getattr(args, "out", None)
    if out:
        paths.add(str(out))
    domains: set[str] = set()
    if name == "generate":
        if getattr(args, "demo", False):
            domains |= _DEMO_DOMAINS
        else:
            labels = dict(args.domain_labels or ())  # type: ignore[attr-defined]
            domains |= {labels.get(d, d) for d in args.domains}  # type: ignore[attr-defined]
    elif name == "data convert":
        domains.add(args.domain)  # type: ignore[attr-defined]
    return paths, domains


def dataflow_problems(commands: list[str]) -> list[str]:
    """What the README's commands read that no earlier command wrote (paths, domains)."""
    written, domains = set(INPUTS), set()
    problems = []
    for command in commands:
        words = shlex.split(command)
        name = _command_name(words)
        args = build_parser().parse_args(words[1:])
        for dest in _READS.get(name, ()):
            path = getattr(args, dest, None)
            if path is None or path == "expert":
                continue
            if not any(str(path) == w or str(path).startswith(w.rstrip("/") + "/")
                       for w in written):
                problems.append(f"{command}: reads {path}, which no earlier README command "
                                "writes")
        if name == "gap":
            from realgap.encoders import ENCODERS

            problems += [f"{command}: encoder {e!r} is not registered (`realgap encoders list`)"
                         for e in args.encoders if ":" not in e and e not in ENCODERS]
            # explicit or default, both domains must be among those written above
            for dest in ("sim_domain", "real_domain"):
                if getattr(args, dest) not in domains:
                    problems.append(f"{command}: --{dest.replace('_', '-')} "
                                    f"{getattr(args, dest)} is not a domain written above "
                                    f"({', '.join(sorted(domains))})")
        paths, doms = _written(args, name)
        written |= paths
        domains |= doms
    return problems


def test_readme_commands_read_what_earlier_commands_wrote() -> None:
    problems = dataflow_problems(COMMANDS)
    assert not problems, "\n".join(problems)


def test_the_data_flow_check_catches_the_old_readme_mistakes() -> None:
    """generate writes ``real-proxy``, the gap command asked for ``real``; a policy read
    from a directory nothing wrote."""
    assert dataflow_problems([
        "realgap generate --task reach-mug --domains sim,real-proxy --out frames/mug",
        "realgap gap --frames frames/mug --real-domain real-proxy --encoders pixels --out g",
    ]) == []
    problems = dataflow_problems([
        "realgap generate --task reach-mug --domains sim,real-proxy --out frames/mug",
        "realgap gap --frames frames/mug --real-domain real --encoders pixels --out g",
        "realgap rollout --policy runs/other --task reach-mug --out r",
    ])
    assert len(problems) == 2
    assert "--real-domain real is not a domain written above (real-proxy, sim)" in problems[0]
    assert "reads runs/other" in problems[1]
    assert dataflow_problems([
        "realgap generate --task reach-mug --out f",
        "realgap gap --frames f --encoders pixels,resnet18-randm --out g"]) == [
        ("realgap gap --frames f --encoders pixels,resnet18-randm --out g: encoder "
         "'resnet18-randm' is not registered (`realgap encoders list`)")]
    # a label changes the stored domain
    assert dataflow_problems([
        "realgap generate --task reach-mug --domain-label real-proxy=real --out f",
        "realgap gap --frames f --real-domain real --encoders pixels --out g"]) == []


def test_readme_inputs_are_valid() -> None:
    import tomllib

    for name, text in INPUTS.items():
        if name.endswith(".toml"):
            assert tomllib.loads(text), name
            continue
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and all(None not in r for r in rows), name


def test_readme_config_files_parse_with_their_command() -> None:
    """A ``--config`` file of :data:`INPUTS` holds only options of the command given it."""
    from realgap.cli._options import apply_config_file

    for command in COMMANDS:
        words = shlex.split(command)
        if "--config" not in words:
            continue
        name = words[words.index("--config") + 1]
        assert name in INPUTS, f"{command}: {name} is neither written above nor in INPUTS"
        with _chdir_with_inputs() as where:
            parser = build_parser()
            apply_config_file(parser, words[1:])
            args = parser.parse_args(words[1:])
            assert args.func, where


@contextlib.contextmanager
def _chdir_with_inputs():
    """A temporary working directory holding :data:`INPUTS`."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, text in INPUTS.items():
            (Path(tmp) / name).write_text(text)
        old = Path.cwd()
        os.chdir(tmp)
        try:
            yield tmp
        finally:
            os.chdir(old)


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)|`(\.\./[^`]+)`")


def test_readme_links_stay_inside_the_repository() -> None:
    outside = []
    for match in _LINK.finditer(README.read_text()):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+://|#|mailto:", target):
            continue
        resolved = (REPO / target.split("#")[0]).resolve()
        if REPO not in resolved.parents and resolved != REPO:
            outside.append(target)
    assert not outside, f"README links outside the repository: {outside}"


# --- running them ------------------------------------------------------------------------

def tiny(command: str) -> list[str] | None:
    """The README command with :data:`TINY`'s sizes and ``--quiet``; None if parse-only."""
    words = shlex.split(command)
    if any(key in command for key in PARSE_ONLY):
        return None
    for flag, value in TINY.get(_command_name(words), {}).items():
        if flag in words:
            i = words.index(flag)
            if value is None:
                continue
            words[i + 1] = value
        else:
            words += [flag] if value is None else [flag, value]
    return [*words, "--quiet"]


def test_tiny_sets_and_appends_flags() -> None:
    assert tiny("realgap vat --head bc --epochs 15 --out x") == [
        "realgap", "vat", "--head", "bc", "--epochs", "1", "--out", "x", "--episodes", "2",
        "--rollouts", "2", "--workers", "1", "--image-size", "32", "--batch-size", "8",
        "--quiet"]
    assert tiny("realgap generate --demo --out d") is None


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working directory for all README commands (later ones read what earlier ones
    wrote), holding :data:`INPUTS`."""
    where = tmp_path_factory.mktemp("readme")
    for name, text in INPUTS.items():
        (where / name).write_text(text)
    return where


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)  # in README order: each needs the ones above
def test_readme_command_runs(command: str, readme_dir: Path) -> None:
    argv = tiny(command)
    if argv is None:
        pytest.skip(next(why for key, why in PARSE_ONLY.items() if key in command))
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run([sys.executable, "-m", "realgap.cli", *argv[1:]], cwd=readme_dir,
                          env=env, capture_output=True, text=True, timeout=580, check=False)
    assert proc.returncode == 0, (f"README command failed: {shlex.join(argv)}\n"
                                  f"{proc.stderr[-2000:]}")
