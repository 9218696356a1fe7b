"""Low-precision optimisers against float64: what lossjax's Adam, RMSprop and momentum do in
bfloat16 and float16, under two precision policies and against an independent numpy loop.

Run from the repository root (about 5 minutes on 2 CPU cores)::

    python experiments/precision/adam_precision.py

It writes ``results/adam_precision/``: ``hyperparameters.md`` (the optimiser constants as JAX
rounds them in each dtype), ``table.md`` (relative loss error after 300 steps against the float64
run, per case × optimiser × dtype × policy) and ``trajectories.png`` (Adam's relative loss error
per step). Policies:

- ``float32 state`` — lossjax's contract (:func:`lossjax.core.optimizers.make_optimizer`):
  hyperparameters and optimiser state in float32, the update rounded once to the parameters' dtype;
- ``param dtype`` — every optimiser quantity in the parameters' dtype (lossjax before the
  contract: ``make_optimizer(..., state_dtype=dtype)``);
- ``numpy loop`` — the published rule written here in numpy, every operation in the parameters'
  dtype (``ml_dtypes.bfloat16``), Adam in ``torch.optim.Adam``'s order (step size η/(1 − β1^t)
  and denominator √v/√(1 − β2^t) + ε from Python floats); gradients from JAX in the same dtype;
- ``optax, β in dtype`` (Adam only) — ``optax.adam`` with β1, β2, ε given as arrays of the
  parameters' dtype, which is what ``optax.inject_hyperparams`` does (optax issue 1414).

The float64 reference is lossjax's float64 run (which a numpy float64 loop matches to 1e-13,
printed). Loss error = |L_T − L_T^64| / L_T^64 at T = 300; "max" is the largest over the steps.
"""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax

from lossjax.core.optimizers import make_optimizer

jax.config.update("jax_enable_x64", True)  # as lossjax run: float64 runs, float64 bias correction

OUT = pathlib.Path("results/adam_precision")
COMMAND = "python experiments/precision/adam_precision.py"
STEPS = 300
JNP = {"float64": jnp.float64, "float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
NP = {"float64": np.float64, "float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}
LOW = ("float32", "bfloat16", "float16")
OPTIMIZERS = ("adam", "rmsprop", "momentum")
POLICIES = ("float32 state", "param dtype", "numpy loop", "optax, β in dtype")


# --- the cases: loss(params, x, y) in the params' dtype ---------------------------------------


def neuron_loss(loss):
    def f(p, x, y):
        z = p["w"] * x + p["b"]
        if loss == "quadratic":
            return jnp.mean(0.5 * (jax.nn.sigmoid(z) - y) ** 2)
        return jnp.mean(jnp.logaddexp(jnp.zeros_like(z), z) - y * z)  # bce on the logit

    return f


def mlp_loss(p, x, y):
    h = jnp.tanh(x @ p["W1"] + p["b1"])
    h = jnp.tanh(h @ p["W2"] + p["b2"])
    return jnp.mean((h @ p["W3"] + p["b3"] - y) ** 2)


def cases():
    """(label, loss, θ_0, x, y, η): the texts' neuron (x = 1, y = 0, η = 0.15) and an MLP."""
    for loss in ("quadratic", "bce"):
        for w, b in ((0.6, 0.9), (2.0, 2.0)):
            p0 = {"w": np.float64(w), "b": np.float64(b)}
            yield f"neuron {loss} ({w}, {b})", neuron_loss(loss), p0, np.ones(1), np.zeros(1), 0.15
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8))
    y = np.tanh(x @ rng.normal(size=(8, 1)))
    sizes, p0 = (8, 16, 16, 1), {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        p0[f"W{i}"], p0[f"b{i}"] = rng.normal(size=(m, n)) / np.sqrt(m), np.zeros(n)
    yield "MLP 8-16-16-1 tanh, mse", mlp_loss, p0, x, y, 0.01


# --- the runs ----------------------------------------------------------------------------------


def optimizer_for(name, eta, dtype, policy):
    dt = JNP[dtype]
    if policy == "float32 state":
        return make_optimizer(name, eta, dt)
    if policy == "param dtype":
        return make_optimizer(name, eta, dt, state_dtype=dt)
    b1, b2, eps = (jnp.asarray(v, dt) for v in (0.9, 0.999, 1e-8))
    return optax.adam(jnp.asarray(eta, dt), b1=b1, b2=b2, eps=eps)


def run_jax(case, name, dtype, policy):
    """Losses L_0..L_T of one run trained in ``dtype`` (float64 numbers)."""
    _, lossf, p0, x, y, eta = case
    dt = JNP[dtype]
    p0 = {k: jnp.asarray(v, dt) for k, v in p0.items()}
    opt = optimizer_for(name, eta, dtype, policy)

    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(lossf)(p, x, y)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    @jax.jit
    def train(p, x, y):
        (p, _), losses = jax.lax.scan(step, (p, opt.init(p)), None, length=STEPS)
        return jnp.concatenate([losses, lossf(p, x, y)[None]])

    with jax.numpy_dtype_promotion("standard"):
        return np.asarray(train(p0, jnp.asarray(x, dt), jnp.asarray(y, dt)), np.float64)


def np_rule(name, nd):
    """One step of the published rule, every operation in numpy dtype ``nd``."""
    r = lambda v: np.asarray(v, np.float64).astype(nd)  # noqa: E731  (a Python constant in nd)

    def adam(p, g, s, t, eta):  # Kingma & Ba 2015, torch.optim.Adam's order
        m = s.get("m", np.zeros_like(p)) * r(0.9) + g * r(1 - 0.9)
        v = s.get("v", np.zeros_like(p)) * r(0.999) + g * g * r(1 - 0.999)
        denom = np.sqrt(v) / r(np.sqrt(1 - 0.999**t)) + r(1e-8)
        return p - r(eta / (1 - 0.9**t)) * (m / denom), {"m": m, "v": v}

    def rmsprop(p, g, s, t, eta):  # optax.rmsprop: ε inside the root, no bias correction
        v = s.get("v", np.zeros_like(p)) * r(0.9) + g * g * r(1 - 0.9)
        return p - r(eta) * (g / np.sqrt(v + r(1e-8))), {"v": v}

    def momentum(p, g, s, t, eta):  # optax.sgd(momentum=0.9): m ← g + 0.9 m
        m = g + r(0.9) * s.get("m", np.zeros_like(p))
        return p - r(eta) * m, {"m": m}

    return {"adam": adam, "rmsprop": rmsprop, "momentum": momentum}[name]


def run_numpy(case, name, dtype):
    _, lossf, p0, x, y, eta = case
    dt, nd = JNP[dtype], NP[dtype]
    value_and_grad = jax.jit(jax.value_and_grad(lossf))
    xj, yj = jnp.asarray(x, dt), jnp.asarray(y, dt)
    p = {k: np.asarray(v, np.float64).astype(nd) for k, v in p0.items()}
    state, rule, losses = {k: {} for k in p}, np_rule(name, nd), []
    with np.errstate(all="ignore"):
        for t in range(1, STEPS + 1):
            loss, g = value_and_grad({k: jnp.asarray(v) for k, v in p.items()}, xj, yj)
            losses.append(float(loss))
            for k in p:
                p[k], state[k] = rule(p[k], np.asarray(g[k]).astype(nd), state[k], t, eta)
    losses.append(float(lossf({k: jnp.asarray(v) for k, v in p.items()}, xj, yj)))
    return np.asarray(losses)


def relative_error(losses, ref):
    with np.errstate(all="ignore"):
        return np.abs(losses - ref) / np.abs(ref)


# --- tables and figure -------------------------------------------------------------------------


def hyperparameter_table() -> str:
    rows = []
    for dtype in ("float64", "float32", "bfloat16", "float16"):
        one = jnp.ones((), JNP[dtype])
        vals = [float(c * one) for c in (0.9, 1 - 0.9, 0.999, 1 - 0.999, 1e-8)]
        rows.append(f"| {dtype} | " + " | ".join(f"{v:.10g}" for v in vals) + f" | {vals[0] + vals[1]:.10g} |"
                    f" {vals[2] + vals[3]:.10g} |")
    return (
        "Adam's constants as JAX rounds them when they meet an array of each dtype (optax passes "
        "β1 = 0.9, β2 = 0.999, ε = 1e-8 as Python floats; `(1 − β) g + β m` rounds each to the "
        "array's dtype). Under lossjax's contract bfloat16 and float16 runs use the float32 row. "
        f"Made by `{COMMAND}`.\n\n"
        "| dtype | β1 | 1 − β1 | β2 | 1 − β2 | ε | β1 + (1 − β1) | β2 + (1 − β2) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )


def fmt(err):
    final, worst = err[-1], np.nanmax(err) if np.isfinite(err).any() else np.nan
    if not np.all(np.isfinite(err)):
        first = int(np.argmax(~np.isfinite(err)))
        return f"NaN from step {first}"
    return f"{final:.2g} (max {worst:.2g})"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hyperparameters.md").write_text(hyperparameter_table())
    rows, curves = [], {}
    for case in cases():
        label = case[0]
        for name in OPTIMIZERS:
            ref = run_jax(case, name, "float64", "float32 state")
            check = np.max(relative_error(run_numpy(case, name, "float64"), ref))
            print(f"{label} {name}: float64 L_T = {ref[-1]:.4g}, numpy float64 loop within {check:.1e}", file=sys.stderr)
            for dtype in LOW:
                cells = []
                for policy in POLICIES:
                    if (policy == "optax, β in dtype" and name != "adam") or (
                        policy == "param dtype" and dtype == "float32"
                    ):
                        cells.append("=" if policy == "param dtype" else "")
                        continue
                    losses = run_numpy(case, name, dtype) if policy == "numpy loop" else run_jax(case, name, dtype, policy)
                    err = relative_error(losses, ref)
                    cells.append(fmt(err))
                    if name == "adam":
                        curves[label, dtype, policy] = err
                rows.append(f"| {label} | {name} | {dtype} | {ref[-1]:.3g} | " + " | ".join(cells) + " |")
    (OUT / "table.md").write_text(
        "Relative loss error |L_T − L_T^64| / L_T^64 after T = 300 full-batch steps against the float64 "
        "run (largest over the steps in brackets; NaN: the run produced NaN), per optimiser × dtype × "
        "precision policy. `float32 state`: lossjax's contract (hyperparameters and optimiser state in "
        "float32, the update rounded to the parameters' dtype); `param dtype`: every optimiser "
        "quantity in the parameters' dtype (lossjax before; `=` in float32, where the two are the same "
        "program); `numpy loop`: the published rule in numpy, every operation in the dtype, Adam in "
        "torch.optim.Adam's order; `optax, β in dtype`: optax.adam with β1, β2, ε as arrays of the dtype "
        "(what optax.inject_hyperparams does). Neuron: x = 1, y = 0, η = 0.15 (the texts' example); "
        "MLP: 64 N(0, 1) inputs in R⁸, targets tanh(x·u), η = 0.01, LeCun-normal init. "
        f"Made by `{COMMAND}`.\n\n"
        "| case | optimizer | dtype | L_T float64 | " + " | ".join(POLICIES) + " |\n"
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in POLICIES) + " |\n" + "\n".join(rows) + "\n"
    )
    draw(curves)


def draw(curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({k[0] for k in curves}, key=lambda s: (s.startswith("MLP"), s))
    fig, axes = plt.subplots(len(LOW), len(labels), figsize=(3.2 * len(labels), 2.6 * len(LOW)), sharex=True)
    styles = {"float32 state": "C0-", "param dtype": "C3--", "numpy loop": "k:", "optax, β in dtype": "C2-."}
    for i, dtype in enumerate(LOW):
        for j, label in enumerate(labels):
            ax = axes[i, j]
            for policy, style in styles.items():
                err = curves.get((label, dtype, policy))
                if err is not None:
                    ax.semilogy(np.arange(len(err)), np.where(err > 0, err, np.nan), style, lw=1, label=policy)
            if i == 0:
                ax.set_title(label, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{dtype}\n|L − L64| / L64", fontsize=8)
            if i == len(LOW) - 1:
                ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines()}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"Adam: relative loss error against float64 per step (NaN not drawn). {COMMAND}", fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(OUT / "trajectories.png", dpi=110)


if __name__ == "__main__":
    main()
