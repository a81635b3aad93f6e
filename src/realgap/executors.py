"""Where realgap's independent tasks run: in this process (``local``) or on Ray (``ray``).

Two kinds of work spread out: embedding extraction (one task per episode x encoder, its
rows written into the same content-keyed embedding cache, :mod:`realgap.encoders.cache`)
and rollouts / evaluations (one task per episode, played by a pool of Ray actors that
each load the policy and build the environment once, :mod:`realgap.policy.episodes`).

Scheduling is Ray's own: tasks are ``ray.remote`` functions and the rollout workers a
``ray.util.ActorPool``; realgap only submits them and collects the results **in the order
they were submitted**, so every result is placed exactly where the local executor puts
it. Each task computes the same batches with the same seeds as the local path, so the
two executors give identical bytes for the same seed (``tests/test_executors.py``).

Ray is imported only when ``ray`` is asked for (``realgap._optional.require``; extra
``realgap[ray]``). With no address, a Ray instance is started on this machine (or the one
named by ``RAY_ADDRESS``); ``--ray-address auto`` or ``ray://host:10001`` joins a running
cluster. The cluster's workers must see the same paths as the driver (FrameSets,
checkpoints): shared storage, as on any multi-node Ray setup. Embedding rows travel back
through Ray's object store and the driver writes the cache, so the cache directory need
not be shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from realgap._optional import require
from realgap.errors import ConfigError, RealgapError

#: The executors ``--executor`` accepts.
EXECUTORS: tuple[str, ...] = ("local", "ray")


@dataclass(frozen=True)
class Executor:
    """Which executor runs the independent tasks of a job.

    Attributes:
        kind: ``"local"`` (this process / its own worker processes) or ``"ray"``.
        address: Ray cluster address (``auto``, ``ray://host:port``, ``host:port``);
            None starts (or reuses) a Ray instance on this machine. Only with ``ray``.
        num_cpus: CPUs Ray reserves per task (1: one torch thread per task, the
            setting that scales on shared cores).
        num_gpus: GPUs Ray reserves per embedding task (0 on CPU clusters; a fraction
            such as 0.25 packs several encoder tasks onto one GPU).
    """

    kind: str = "local"
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"--executor {self.kind!r}: choose one of {', '.join(EXECUTORS)}")
        if self.address is not None and self.kind != "ray":
            raise ConfigError(f"--ray-address {self.address!r} needs --executor ray")
        if not self.num_cpus > 0 or self.num_gpus < 0:
            raise ConfigError(f"executor resources: num_cpus {self.num_cpus!r} must be > 0 and "
                              f"num_gpus {self.num_gpus!r} >= 0")

    @property
    def is_ray(self) -> bool:
        return self.kind == "ray"


LOCAL = Executor()


def as_executor(executor: Executor | str | None, address: str | None = None) -> Executor:
    """``None``/``"local"``/``"ray"``/an :class:`Executor` -> an :class:`Executor` (checked)."""
    if executor is None:
        return LOCAL if address is None else Executor("local", address)  # refused there
    if isinstance(executor, Executor):
        return executor
    return Executor(str(executor), address)


def ray_module(executor: Executor) -> Any:
    """The ``ray`` module, connected: started on this machine or joined to ``address``.

    A session already initialised in this process (a test's 2-worker cluster, a
    notebook's) is used as it is.
    """
    ray = require("ray")
    if not ray.is_initialized():
        _patient_local_start()
        try:
            ray.init(address=executor.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = executor.address or os.environ.get("RAY_ADDRESS") or "a local instance"
            raise ConfigError(f"--ray-address {where}: cannot start or join Ray ({exc}); "
                              "give a running cluster's address (ray status prints it) "
                              "or leave it out to start Ray on this machine") from None
    return ray


def _patient_local_start() -> None:
    """Give a Ray instance started here time to come up on a loaded machine.

    Measured: on 2 cores under a load average of ~40, the raylet gave up waiting for its
    metrics agent ("Timed out waiting for file .../metrics_agent_port") 3 minutes after
    ``ray.init`` and every task then hung. The raylet reads these limits from the
    environment it inherits; a value set by the user wins.
    """
    os.environ.setdefault("RAY_agent_register_timeout_ms", "900000")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "900")


def _unwrap(ray: Any, exc: BaseException) -> BaseException:
    """A task's RealgapError as itself (one CLI line), not wrapped in Ray's traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, RealgapError):
        return cause
    return exc


def ray_results(ray: Any, refs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, result)`` for ``refs`` as they finish (Ray's order), so the
    caller can store or write each result at once and place it by its position."""
    pos = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                value = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - re-raised as itself or unwrapped
                for other in pending:
                    ray.cancel(other)
                raise _unwrap(ray, exc) from None
            yield pos[ref], value


def ray_map(executor: Executor, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
            *, num_gpus: float | None = None,
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[fn(*a) for a in args]`` as Ray tasks, results in the order of ``args``.

    Arguments that are ``ray.put`` references are resolved by Ray on the worker (put a
    large object once, pass its reference to every task). ``on_result(i, value)`` is
    called as each task finishes (any order).
    """
    ray = ray_module(executor)
    remote = ray.remote(fn).options(num_cpus=executor.num_cpus,
                                    num_gpus=executor.num_gpus if num_gpus is None else num_gpus)  # a lost worker is retried (Ray's default): tasks are pure
    refs = [remote.remote(*a) for a in args]
    out: list[Any] = [None] * len(refs)
    for i, value in ray_results(ray, refs):
        out[i] = value
        if on_result is not None:
            on_result(i, value)
    return out


def add_executor_args(parser: Any, what: str) -> None:
    """``--executor local|ray`` and ``--ray-address`` on a CLI sub-command; ``what`` says
    which tasks go to Ray (e.g. "embedding extraction: one task per episode x encoder")."""
    parser.add_argument("--executor", default="local", choices=EXECUTORS,
                        help=f"where to run {what} (default local; ray needs realgap[ray]); "
                             "results are the same")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="Ray cluster to join with --executor ray (auto, ray://HOST:10001); "
                             "default: start Ray on this machine")


def executor_from_args(args: Any) -> Executor:
    """The :class:`Executor` named by :func:`add_executor_args`' options (checked)."""
    return Executor(args.executor, args.ray_address)
