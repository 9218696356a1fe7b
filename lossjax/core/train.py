"""The training program: one run as a pure function, ready for ``jax.jit(jax.vmap(...))``.

:func:`make_train` closes over everything that fixes shapes and code paths (a
:class:`TrainConfig`: model, loss, optimiser, dtype, steps, batch size, gradient estimator,
thresholds) and returns ``train(run, data)`` whose arguments are arrays: ``run`` holds one
run's batched values (seed, learning rate, initial parameters, target) and ``data`` the
training and test sets, shared by every run. The whole run is a ``lax.scan`` over steps whose
carry holds the parameters, the optimiser state and the metric accumulators of
:mod:`lossjax.metrics`; nothing leaves the scan but O(1) summaries per run (and, when asked, a
trajectory sampled every ``record_every`` steps).

Typical use (the runner in :mod:`lossjax.runner` does this, plus chunking and sharding)::

    train = make_train(config)
    summaries, trajectory = jax.jit(jax.vmap(train, in_axes=(0, None)))(runs, data)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax.core import activations as activations_lib
from lossjax.core import losses as losses_lib
from lossjax.core import metrics
from lossjax.core import models
from lossjax.core.optimizers import make_optimizer

Array = jax.Array

DTYPES = {
    "float32": jnp.float32,
    "float64": jnp.float64,
    "bfloat16": jnp.bfloat16,
    "float16": jnp.float16,
}
ESTIMATORS = {
    "exact": "exact autodiff gradient (default)",
    "ste_identity": "straight-through: forward f(z), backward slope 1 (Bengio et al. 2013)",
    "ste_sigmoid": "straight-through: forward f(z), backward the slope of σ(z)",
    "score_function": (
        "REINFORCE: sample outputs ŷ ~ Bernoulli(σ(z)) (categorical(softmax(z)) for K classes), "
        "gradient of mean_s (L(ŷ_s) − b_s) log p(ŷ_s), leave-one-out baseline b_s"
    ),
}
INIT_MODES = ("explicit", "scheme")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that changes the compiled program (a sweep's static axes).

    Attributes:
      model: the model's shape and activations.
      loss: loss registry spec (see :mod:`lossjax.losses`).
      optimizer: optimiser name (see :mod:`lossjax.optimizers`).
      dtype: ``"float32"``, ``"float64"`` (needs ``jax_enable_x64``), ``"bfloat16"`` or
        ``"float16"``: parameters, data and all model arithmetic use it.
      steps: number of updates T.
      batch_size: 0 for full batch; otherwise each step draws ``batch_size`` sample indices
        uniformly with replacement from the training set, keyed per run and step (as the
        texts' ``np.random.choice(train_size, batch_size)``).
      estimator: how gradients are obtained (see :data:`ESTIMATORS`).
      score_samples: samples per step of the score-function estimator.
      init_mode: ``"explicit"`` (a neuron's (w, b) given per run) or ``"scheme"``.
      thresholds: thresholds of the measured quantities.
      record_every: record a trajectory every k steps (0: none). Must divide ``steps``.
    """

    model: models.ModelConfig
    loss: str = "quadratic"
    optimizer: str = "sgd"
    dtype: str = "float32"
    steps: int = 300
    batch_size: int = 0
    estimator: str = "exact"
    score_samples: int = 16
    init_mode: Literal["explicit", "scheme"] = "explicit"
    thresholds: metrics.Thresholds = metrics.Thresholds()
    record_every: int = 0

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; allowed: {', '.join(DTYPES)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        if self.init_mode not in INIT_MODES:
            raise ValueError(f"unknown init mode {self.init_mode!r}; allowed: {', '.join(INIT_MODES)}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {self.batch_size}")
        if self.record_every < 0 or (self.record_every and self.steps % self.record_every):
            raise ValueError(
                f"record_every = {self.record_every} must be 0 or divide steps = {self.steps}"
            )
        if self.score_samples < 2:
            raise ValueError(f"score_samples must be >= 2, got {self.score_samples}")

    @property
    def jnp_dtype(self):
        return DTYPES[self.dtype]

    @property
    def metric_dtype(self):
        """Metrics are accumulated in float32 (float64 for float64 runs)."""
        return jnp.float64 if self.dtype == "float64" else jnp.float32


class RunInputs(NamedTuple):
    """One run's batched values (a leading grid axis is added by ``vmap``)."""

    seed: Array  # int32: keys the scheme initialisation, mini-batches and score samples
    learning_rate: Array
    init_w: Array  # explicit mode: every input weight
    init_b: Array  # explicit mode: the bias
    init_scheme: Array  # int32 index into models.INIT_SCHEMES
    init_scale: Array  # multiplies the scheme's standard deviation
    init_bias: Array  # scheme mode: bias mean
    init_bias_std: Array  # scheme mode: bias standard deviation
    target: Array  # replaces every training target when finite (binary tasks); NaN: keep data's


class Data(NamedTuple):
    """Training and test sets, already in the run's dtype; targets are (n, n_outputs)."""

    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array


class Summary(NamedTuple):
    """Per-run results (see :mod:`lossjax.metrics` for each definition). (L,): per layer."""

    loss_initial: Array
    loss_final: Array
    loss_min: Array
    output_initial: Array
    output_final: Array
    error_final: Array
    accuracy_final: Array
    test_loss: Array
    test_accuracy: Array
    steps_to_target: Array
    zero_grad_steps: Array
    tiny_grad_steps: Array
    saturated_init: Array
    saturated_final: Array
    saturated_mean: Array
    dead_init: Array
    dead_final: Array
    born_dead: Array
    longest_plateau: Array
    first_nonfinite: Array
    outcome: Array
    layer_saturated_init: Array  # (L,)
    layer_saturated_final: Array  # (L,)
    layer_saturated_mean: Array  # (L,)
    layer_dead_init: Array  # (L,)
    layer_dead_final: Array  # (L,)
    layer_dormant_init: Array  # (L,)
    layer_dormant_final: Array  # (L,)
    layer_grad_norm_init: Array  # (L,)
    layer_grad_norm_mean: Array  # (L,)
    layer_grad_norm_final: Array  # (L,)


LAYER_FIELDS = tuple(f for f in Summary._fields if f.startswith("layer_"))
#: Fields of :class:`metrics.Observation` recorded in trajectories ((L,) ones get a layer axis).
TRAJECTORY_FIELDS = metrics.Observation._fields


def _wrap_activation(spec: str, estimator: str) -> tuple[activations_lib.Activation, activations_lib.Activation]:
    """(activation used in the forward/backward pass, the true activation used for metrics)."""
    base = activations_lib.get_activation(spec)
    if estimator in ("ste_identity", "ste_sigmoid"):
        return activations_lib.straight_through(base, estimator.removeprefix("ste_")), base
    return base, base


def check_estimator(estimator: str, loss_spec: str) -> None:
    """Raises ``ValueError`` for a gradient estimator that cannot be used with this loss."""
    if estimator == "score_function" and losses_lib.get_loss(loss_spec).input != "output":
        raise ValueError(
            f"estimator 'score_function' needs a loss defined on outputs, and {loss_spec!r} "
            "is defined on logits; use e.g. zero_one, one_minus_f1, one_minus_iou, quadratic"
        )


def make_train(config: TrainConfig) -> Callable[[RunInputs, Data], tuple[Summary, metrics.Observation | None]]:
    """Builds ``train(run, data) -> (summary, trajectory)`` for one run (see module docstring).

    ``trajectory`` is ``None`` unless ``config.record_every > 0``; then it is an
    :class:`~lossjax.metrics.Observation` whose leaves have a leading axis of
    ``steps // record_every + 1`` records, at θ_0, θ_k, …, θ_T.
    """
    mc = config.model
    dtype = config.jnp_dtype
    mdtype = config.metric_dtype
    thresholds = config.thresholds
    loss = losses_lib.get_loss(config.loss)
    out_act, out_base = _wrap_activation(mc.activation, config.estimator)
    hid_act, hid_base = _wrap_activation(mc.hidden_activation, config.estimator)
    apply = models.make_apply(mc, hid_act.fn)
    layer_acts = (hid_base,) * (mc.n_layers - 1) + (out_base,)
    check_estimator(config.estimator, config.loss)

    def forward(params, x):
        logits, pre_activations = apply(params, x)
        outputs = out_act.fn(logits)
        return logits, pre_activations, outputs

    def objective(params, x, y):
        logits, pre_activations, outputs = forward(params, x)
        prediction = logits if loss.input == "logits" else outputs
        return loss.fn(prediction, y), (logits, pre_activations, outputs)

    def score_function_grad(params, x, y, key):
        """Leave-one-out REINFORCE estimate of ∇θ E_ŷ[L(ŷ, y)] (see :data:`ESTIMATORS`)."""
        s = config.score_samples

        def log_prob_and_samples(p):
            logits, _, _ = forward(p, x)
            logits = logits.astype(mdtype)
            if mc.n_outputs == 1:
                u = jax.random.uniform(key, (s,) + logits.shape, mdtype)
                samples = (u < jax.nn.sigmoid(jax.lax.stop_gradient(logits))).astype(mdtype)
                logp = samples * jax.nn.log_sigmoid(logits) + (1 - samples) * jax.nn.log_sigmoid(-logits)
            else:
                classes = jax.random.categorical(key, jax.lax.stop_gradient(logits), shape=(s, logits.shape[0]))
                samples = jax.nn.one_hot(classes, mc.n_outputs, dtype=mdtype)
                logp = samples * jax.nn.log_softmax(logits)
            return jnp.sum(logp, axis=(1, 2)), samples

        def surrogate(p):
            logp, samples = log_prob_and_samples(p)
            rewards = jax.vmap(lambda smp: loss.fn(smp.astype(dtype), y))(samples).astype(mdtype)
            baseline = (jnp.sum(rewards) - rewards) / (s - 1)
            advantage = jax.lax.stop_gradient(rewards - baseline)
            return jnp.mean(advantage * logp)

        return jax.grad(surrogate)(params)

    def observe(params, x, y, key) -> tuple[metrics.Observation, dict]:
        (value, (logits, pre_activations, outputs)), grads = jax.value_and_grad(objective, has_aux=True)(
            params, x, y
        )
        if config.estimator == "score_function":
            grads = score_function_grad(params, x, y, key)
        leaves = jax.tree_util.tree_leaves(grads)
        grad_sq = sum(jnp.sum(jnp.square(g.astype(mdtype))) for g in leaves)
        grad_is_zero = jnp.all(jnp.stack([jnp.all(g == 0) for g in leaves]))
        finite = jnp.isfinite(value) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(params)])
        )
        layer_stats = []
        for act, z in zip(layer_acts, pre_activations):
            h = act.fn(z)
            d = activations_lib.derivative(act, z)
            sat, dead, dormant = metrics.unit_fractions(d, h, act.max_slope, thresholds)
            h = h.astype(mdtype)
            layer_stats.append((sat, dead, dormant, jnp.mean(h), jnp.std(h)))
        layer_stats = [jnp.stack(column).astype(mdtype) for column in zip(*layer_stats)]
        grad_kernels = models.layer_kernels(mc, grads)
        layer_grad_norm = jnp.stack([jnp.sqrt(jnp.sum(jnp.square(k.astype(mdtype)))) for k in grad_kernels])
        out_layer = models.layer_params(mc, grads)[-1]
        grad_w = (out_layer["w"] if mc.kind == "neuron" else out_layer["kernel"]).reshape(-1)[0]
        grad_b = (out_layer["b"] if mc.kind == "neuron" else out_layer["bias"]).reshape(-1)[0]
        obs = metrics.Observation(
            loss=value.astype(mdtype),
            error=jnp.mean(jnp.abs(outputs.astype(mdtype) - y.astype(mdtype))),
            accuracy=_accuracy(logits, outputs, y, loss.input, mc.n_outputs),
            grad_norm=jnp.sqrt(grad_sq),
            grad_is_zero=grad_is_zero,
            finite=finite,
            output=jnp.mean(outputs[:, 0].astype(mdtype)),
            logit=jnp.mean(logits[:, 0].astype(mdtype)),
            grad_w=grad_w.astype(mdtype),
            grad_b=grad_b.astype(mdtype),
            layer_grad_norm=layer_grad_norm,
            layer_saturated=layer_stats[0],
            layer_dead=layer_stats[1],
            layer_dormant=layer_stats[2],
            layer_act_mean=layer_stats[3],
            layer_act_std=layer_stats[4],
        )
        return obs, grads

    def init_params(run: RunInputs):
        if config.init_mode == "explicit":
            return models.init_explicit(mc, run.init_w, run.init_b, dtype)
        key = jax.random.fold_in(jax.random.key(run.seed), 0)
        return models.init_from_scheme(
            mc, key, run.init_scheme, run.init_scale, run.init_bias, run.init_bias_std, dtype
        )

    def train(run: RunInputs, data: Data):
        x_train, y_train = data.x_train, data.y_train
        y_train = jnp.where(jnp.isfinite(run.target), jnp.full_like(y_train, run.target), y_train)
        n_train = x_train.shape[0]
        run_key = jax.random.key(run.seed)
        batch_key = jax.random.fold_in(run_key, 1)
        sample_key = jax.random.fold_in(run_key, 2)

        def batch(t):
            if config.batch_size == 0:
                return x_train, y_train
            idx = jax.random.randint(jax.random.fold_in(batch_key, t), (config.batch_size,), 0, n_train)
            return x_train[idx], y_train[idx]

        def evaluate(params, t):
            x, y = batch(t)
            return observe(params, x, y, jax.random.fold_in(sample_key, t))

        optimizer = make_optimizer(config.optimizer, run.learning_rate, dtype)
        params = params0 = init_params(run)
        opt_state = optimizer.init(params)
        n_steps = config.steps
        # θ_0 and θ_T are evaluated outside the scan, so that inside it only what the
        # accumulators need is computed (XLA removes the rest of each step's observation).
        obs0, _ = evaluate(params, 0)
        acc = metrics.start(obs0)
        k = config.record_every
        records = (
            jax.tree_util.tree_map(lambda leaf: jnp.zeros((n_steps // k + 1,) + leaf.shape, leaf.dtype), obs0)
            if k
            else None
        )

        def one_step(carry, t):
            params, opt_state, acc, records = carry
            obs, grads = evaluate(params, t)
            acc = metrics.accumulate(acc, obs, t, thresholds, is_update=True)
            if records is not None:
                records = _record(records, obs, t, k)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state, acc, records), None

        steps = jnp.arange(n_steps, dtype=jnp.int32)
        (params, _, acc, records), _ = jax.lax.scan(one_step, (params, opt_state, acc, records), steps)

        # The final evaluation at θ_T, on the whole training set.
        final, _ = observe(params, x_train, y_train, jax.random.fold_in(sample_key, n_steps))
        acc = metrics.accumulate(acc, final, n_steps, thresholds, is_update=False)
        trajectory = None if records is None else _record(records, final, n_steps, k)

        if data.x_test.shape[0] > 0:
            test_logits, _, test_outputs = forward(params, data.x_test)
            test_pred = test_logits if loss.input == "logits" else test_outputs
            test_loss = loss.fn(test_pred, data.y_test).astype(mdtype)
            test_accuracy = _accuracy(test_logits, test_outputs, data.y_test, loss.input, mc.n_outputs)
        else:
            test_loss = test_accuracy = jnp.full((), jnp.nan, mdtype)

        logits0, _, _ = forward(params0, x_train)
        born_dead = (n_train > 1) & jnp.all(logits0 == logits0[:1])

        init = acc.init
        sizes = mc.layer_sizes
        summary = Summary(
            loss_initial=acc.loss_initial,
            loss_final=final.loss,
            loss_min=acc.loss_min,
            output_initial=init.output,
            output_final=final.output,
            error_final=final.error,
            accuracy_final=final.accuracy,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
            steps_to_target=acc.steps_to_target,
            zero_grad_steps=acc.zero_grad_steps,
            tiny_grad_steps=acc.tiny_grad_steps,
            saturated_init=metrics.weighted_fraction(init.layer_saturated, sizes),
            saturated_final=metrics.weighted_fraction(final.layer_saturated, sizes),
            saturated_mean=metrics.weighted_fraction(acc.layer_saturated_sum / config.steps, sizes),
            dead_init=metrics.weighted_fraction(init.layer_dead, sizes),
            dead_final=metrics.weighted_fraction(final.layer_dead, sizes),
            born_dead=born_dead,
            longest_plateau=acc.longest_plateau,
            first_nonfinite=acc.first_nonfinite,
            outcome=metrics.outcome(
                acc.loss_initial, final.loss, acc.steps_to_target, acc.longest_plateau,
                acc.first_nonfinite, thresholds,
            ),
            layer_saturated_init=init.layer_saturated,
            layer_saturated_final=final.layer_saturated,
            layer_saturated_mean=acc.layer_saturated_sum / config.steps,
            layer_dead_init=init.layer_dead,
            layer_dead_final=final.layer_dead,
            layer_dormant_init=init.layer_dormant,
            layer_dormant_final=final.layer_dormant,
            layer_grad_norm_init=init.layer_grad_norm,
            layer_grad_norm_mean=acc.layer_grad_norm_sum / config.steps,
            layer_grad_norm_final=final.layer_grad_norm,
        )
        return summary, trajectory

    return train


def _record(records: metrics.Observation, obs: metrics.Observation, t: Array, every: int) -> metrics.Observation:
    """Writes ``obs`` into slot ``t // every`` of the trajectory buffers when ``every`` divides ``t``."""
    slot = t // every

    def write(buffer, value):
        old = jax.lax.dynamic_index_in_dim(buffer, slot, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(buffer, jnp.where(t % every == 0, value, old), slot, 0)

    return jax.tree_util.tree_map(write, records, obs)


def _accuracy(logits: Array, outputs: Array, y: Array, loss_input: str, n_outputs: int) -> Array:
    """Share of correctly classified samples.

    K classes: argmax of the logits against argmax of the one-hot target. Binary: the
    prediction is ``z > 0`` for losses on logits and ``a > 0.5`` for losses on outputs.
    """
    if n_outputs > 1:
        correct = jnp.argmax(logits, axis=-1) == jnp.argmax(y, axis=-1)
    else:
        positive = logits[:, 0] > 0 if loss_input == "logits" else outputs[:, 0] > 0.5
        correct = positive == (y[:, 0] > 0.5)
    return jnp.mean(correct.astype(jnp.float32))

