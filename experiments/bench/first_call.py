"""One compiled call of a sweep's first program, as the runner would make it: shared by the scripts beside this one."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import numpy as np

from lossjax import grid, programs, runner
from lossjax.core import train as train_lib


class FirstCall(NamedTuple):
    """The plan's first program compiled for one call, and that call's runs."""

    plan: runner.Plan
    config: train_lib.TrainConfig
    compiled: programs.Compiled
    rows: dict  # one array per RunInputs field, a full call of runs (the grid's first ones, padded with the last)
    devices: tuple
    runs: int  # runs per call
    block: int  # runs per vmapped block

    def __call__(self):
        """Runs the call and waits for it."""
        return jax.block_until_ready(self.compiled(self.rows, self.plan.shapes[0]))

    @property
    def block_steps(self) -> int:
        """Block-steps one device runs in the call (the devices run side by side)."""
        return self.config.steps * self.runs // (self.block * len(self.devices))


def first_call(sweep: grid.Sweep, records: bool = True) -> FirstCall:
    """Plans ``sweep`` on this process's devices and compiles its first program (without
    trajectory records if not ``records``) for one call, with a fresh init program."""
    plan = runner.plan_sweep(sweep)
    cfg = plan.groups[plan.group_of[0]].config
    if not records:
        cfg = dataclasses.replace(cfg, record_every=0)
    devices = plan.devices_for(0, jax.devices())
    runs, block = plan.call_runs(0, len(devices)), plan.blocks[0]
    compiled = programs.Compiled(cfg, programs.to_data(plan.dataset, cfg.jnp_dtype), runs, block, devices, {})
    have = min(runs, sweep.n_runs // len(sweep.static_combinations()))
    rows = {k: np.concatenate([v, np.repeat(v[-1:], runs - have, axis=0)]) for k, v in grid.batched_grid(sweep, 0, have).items()}
    return FirstCall(plan, cfg, compiled, rows, devices, runs, block)
