"""Dataset-scale runs: the samples split into shards, run in parallel, merged back.

A run over N samples is cut into ``workers`` contiguous shards (sizes differ
by at most one; shard k always holds the same samples for the same N and
workers). Every shard runs the same task -- a backend on its samples, with
the quantisation the parent computed once for the whole batch -- and the
records are concatenated along the sample axis, so spikes, accuracies,
energy counts and first divergences equal the serial run's: samples never
interact in a batched simulation.

Executors: ``local`` (:mod:`.shard_local`: each shard a supervised child
process) and ``ray`` (:mod:`.shard_ray`: each shard a Ray task, on a cluster
or a local Ray, running that same child on its node). Either way a shard
that fails or overruns its time limit is retried once; a second failure
stops the other shards and is one line naming the shard and its samples;
Ctrl-C, signals and errors tear every shard down, Lava runs included.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ..errors import SpikedeployError
from ..hw_sim.result import SimResult

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")       # shard_local.run_local, shard_ray.run_ray
ATTEMPTS = 2                       # a shard is retried once


@dataclass(frozen=True)
class ScaleOut:
    """How a command spreads its samples: ``workers`` shards on an executor."""

    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    timeout: float | None = None      # seconds one attempt of a shard may take

    def validate(self) -> None:
        if self.workers < 1:
            raise SpikedeployError(f"--workers must be positive, got {self.workers}")
        if self.timeout is not None and not 0 < self.timeout < float("inf"):
            raise SpikedeployError(f"--shard-timeout must be a positive number of seconds, "
                                   f"got {self.timeout}")
        if self.executor not in EXECUTORS:
            raise SpikedeployError(f"unknown executor {self.executor!r} ({'|'.join(EXECUTORS)})")
        if self.ray_address is not None and self.executor != "ray":
            raise SpikedeployError("--ray-address goes with --executor ray")
        if self.timeout is not None and self.serial:
            raise SpikedeployError("--shard-timeout goes with --workers N (N > 1) or "
                                   "--executor ray")

    @property
    def serial(self) -> bool:
        return self.workers == 1 and self.executor == "local"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int
    start: int
    stop: int

    def describe(self) -> str:
        return f"shard {self.index + 1}/{self.count} (samples {self.start}..{self.stop - 1})"

    def failure(self, reasons: list[str]) -> SpikedeployError:
        """The one line that ends a run whose shard failed every attempt."""
        return SpikedeployError(f"{self.describe()} failed {len(reasons)} times: {reasons[-1]}")


def plan_shards(num_samples: int, workers: int) -> list[Shard]:
    """Contiguous shards, as even as possible, never empty (fewer than ``workers`` when
    there are fewer samples)."""
    count = max(1, min(workers, num_samples))
    bounds = np.linspace(0, num_samples, count + 1).round().astype(int)
    return [Shard(k, count, int(bounds[k]), int(bounds[k + 1])) for k in range(count)]


def run_sharded(scale: ScaleOut | None, task, x: np.ndarray, **kwargs) -> SimResult:
    """``task(x, **kwargs) -> SimResult`` over the samples (axis 1 of ``x``), sharded as
    ``scale`` says (in this process when serial). ``task`` must be a module-level function
    (it travels by name)."""
    if scale is None or scale.serial:
        return task(x, **kwargs)
    shards = plan_shards(x.shape[1], scale.workers)
    log.info("%d samples in %d shards (%s executor)", x.shape[1], len(shards), scale.executor)
    started = time.perf_counter()
    if scale.executor == "ray":
        from .shard_ray import run_ray
        parts = run_ray(shards, task, x, kwargs, scale.ray_address, scale.timeout, ATTEMPTS)
    else:
        from .shard_local import run_local
        parts = run_local(shards, task, x, kwargs, scale.timeout, ATTEMPTS)
    merged = merge_results(parts)
    merged.info["seconds"] = time.perf_counter() - started
    merged.info["shards"] = len(shards)
    return merged


def merge_results(parts: list[SimResult]) -> SimResult:
    """The shards' results as one run: records (and voltages) concatenated over samples."""
    first = parts[0]
    latencies = {p.latency for p in parts}
    if len(latencies) != 1:
        raise SpikedeployError(f"shards ran with different pipeline latencies {sorted(latencies)}")

    def concat(field):
        return {name: np.concatenate([getattr(p, field)[name] for p in parts], axis=1)
                for name in getattr(first, field)}

    return SimResult(first.program, concat("records"), first.backend, first.precision,
                     first.latency, first.fixed, dict(first.info), concat("voltages"))
