"""The training program: one run as a pure function, ready for ``jax.jit(jax.vmap(...))``.

:func:`make_train` closes over everything that fixes shapes and code paths (a
:class:`TrainConfig`: model, loss, optimiser, dtype, steps, batch size, gradient estimator,
thresholds) and returns ``train(run, data)`` whose arguments are arrays: ``run`` holds one
run's batched values (seed, learning rate, initial parameters, target) and ``data`` the
training and test sets, shared by every run. The whole run is a ``lax.scan`` over steps whose
carry holds the parameters, the optimiser state and the metric accumulators of
:mod:`lossjax.core.metrics`; nothing leaves the scan but O(1) summaries per run (and, when asked, a
trajectory sampled every ``record_every`` steps). A one-step run has no scan: its update is taken
from the evaluation at θ_0. A run of no steps (``steps = 0``) observes θ_0 alone: no update is
made, θ_T = θ_0, and its final evaluation is θ_0's (the same evaluation, not a second one, when
every step sees the whole training set).

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

from lossjax.core import activations as activations_lib
from lossjax.core import losses as losses_lib
from lossjax.core import initializers, layout, metrics, models, padded, rounding, summaries
from lossjax.core.estimators import ESTIMATORS, Estimator, get_estimator, score_function_gradient
from lossjax.core.metrics import Observation
from lossjax.core.summaries import Summary
from lossjax.core.optimizers import make_optimizer

Array = jax.Array

DTYPES = {
    "float32": jnp.float32,
    "float64": jnp.float64,
    "bfloat16": jnp.bfloat16,
    "float16": jnp.float16,
}
INIT_MODES = ("explicit", "scheme")
#: Precision of every matrix product a run traces (``jax.default_matmul_precision``): a run's dtype is
#: the arithmetic it gets. XLA's default on NVIDIA GPUs multiplies float32 matrices in TF32 (a 10-bit
#: significand, as bfloat16's 7 is to float32's 23), which would make a float32 study of exact zeros
#: and rounding a TF32 one; on a CPU every precision is the same arithmetic.
MATMUL_PRECISION = "highest"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that changes the compiled program (a sweep's static axes).

    Attributes:
      model: the model's shape and activations.
      loss: loss registry spec (see :mod:`lossjax.core.losses`).
      optimizer: optimiser name (see :mod:`lossjax.core.optimizers`).
      dtype: ``"float32"``, ``"float64"`` (needs ``jax_enable_x64``), ``"bfloat16"`` or
        ``"float16"``: parameters, data and all model arithmetic use it (the optimiser of a
        bfloat16/float16 run works in float32, see :func:`~lossjax.core.optimizers.make_optimizer`).
      steps: number of updates T; 0 observes θ_0 alone (results at θ_T are θ_0's; averages over
        update steps are NaN).
      batch_size: 0 for full batch; otherwise each step draws ``batch_size`` sample indices
        uniformly with replacement from the training set, keyed per run and step (as the
        texts' ``np.random.choice(train_size, batch_size)``).
      estimator: how gradients are obtained (a name in
        :data:`~lossjax.core.estimators.ESTIMATORS`).
      score_samples: samples per step of the score-function estimator.
      init_mode: ``"explicit"`` (a neuron's (w, b) given per run) or ``"scheme"``.
      thresholds: thresholds of the measured quantities.
      record_every: record a trajectory every k steps (0: none). Must divide ``steps``.
      init_schemes: scheme mode: the init schemes the grid's runs use (``None``: all); the draws
        no run takes (RAI's, the uniform or the normal ones) are left out of the program.
      roundoff_probe: also train each run from θ_0 perturbed by :func:`perturb_params` and
        report ``roundoff_decided`` (see :mod:`lossjax.core.metrics`).
      update_rounding: how θ + Δθ is rounded to the parameters' dtype (a name in
        :data:`~lossjax.core.rounding.UPDATE_ROUNDINGS`).
      losses: a padded MLP program that trains several losses (``None``: ``loss`` alone); each call
        trains ``losses[shape.loss]`` (:class:`~lossjax.core.padded.ArchShape`), chosen by
        ``lax.switch`` inside the program. Exact gradients only.
      hidden_activations: likewise, the hidden activations a padded MLP program switches between
        (``None``: ``model.hidden_activation`` alone); each call trains
        ``hidden_activations[shape.activation]``.
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
    init_schemes: tuple[str, ...] | None = None
    roundoff_probe: bool = False
    update_rounding: str = "nearest"
    losses: tuple[str, ...] | None = None
    hidden_activations: tuple[str, ...] | None = None

    def __post_init__(self):
        rounding.check_rounding(self.update_rounding)
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; allowed: {', '.join(DTYPES)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        if self.init_mode not in INIT_MODES:
            raise ValueError(f"unknown init mode {self.init_mode!r}; allowed: {', '.join(INIT_MODES)}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {self.batch_size}")
        if self.record_every < 0 or (self.record_every and self.steps % self.record_every):
            raise ValueError(
                f"record_every = {self.record_every} must be 0 or divide steps = {self.steps}"
            )
        if self.score_samples < 2:
            raise ValueError(f"score_samples must be >= 2, got {self.score_samples}")
        if self.losses is not None and (not self.model.padded or self.estimator != "exact" or self.loss not in self.losses):
            raise ValueError(f"losses = {self.losses} switches the loss of a padded MLP program with exact gradients, "
                             f"and holds loss = {self.loss!r}")
        if self.hidden_activations is not None and (not self.model.padded or self.estimator != "exact"
                                                    or self.model.hidden_activation not in self.hidden_activations):
            raise ValueError(f"hidden_activations = {self.hidden_activations} switches the hidden activation of a padded "
                             f"MLP program with exact gradients, and holds {self.model.hidden_activation!r}")

    @property
    def gradient_estimator(self) -> Estimator:
        return get_estimator(self.estimator)

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
    init_scheme: Array  # int32 index into initializers.INIT_SCHEMES
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


def check_estimator(estimator: str, loss_spec: str) -> None:
    """Raises ``ValueError`` for a gradient estimator that cannot be used with this loss."""
    get_estimator(estimator).check(losses_lib.get_loss(loss_spec))


class Model(NamedTuple):
    """The model of a :class:`TrainConfig`, ready to evaluate (static: closed over, not traced)."""

    config: TrainConfig
    losses: tuple  # the loss (losses_lib.Loss), or the losses a padded program switches between
    loss_index: Array | None  # which of ``losses`` (None: the only one)
    apply: Callable  # (params, x) -> layout.Forward (logits, pre-activations)
    output: activations_lib.Activation  # output activation the passes use (may be straight-through)
    true_activations: tuple  # per group of layers: the true activation, for the metrics
    units: tuple  # per group of layers: None, or the (units,) mask of a padded architecture's real units
    layer_sizes: tuple | Array  # units per layer (padded: an array, 0 for skipped layers)

    @classmethod
    def build(cls, config: TrainConfig, shape: padded.ArchShape | None = None) -> "Model":
        """The model of ``config``; a padded MLP (``config.model.padded``) needs the ``shape`` it trains."""
        mc, estimator = config.model, config.gradient_estimator
        losses = tuple(losses_lib.get_loss(name) for name in (config.losses or (config.loss,)))
        for loss in losses:
            estimator.check(loss)
        if mc.padded and shape is None:
            raise ValueError("a padded MLP is trained with the architecture it holds: pass shape (lossjax.core.padded.ArchShape)")
        if config.hidden_activations:  # a padded program's: the call's ArchShape picks one
            choices = tuple(activations_lib.get_activation(name) for name in config.hidden_activations)
            hidden = activations_lib.switched(choices, shape.activation)
        else:
            hidden = activations_lib.get_activation(mc.hidden_activation)
        output = activations_lib.get_activation(mc.activation)
        groups = len(mc.layer_groups)
        activations = (hidden,) * (groups - 1) + (output,)
        if not mc.padded:
            apply = models.make_apply(mc, estimator.activation(hidden).fn)
            return cls(config, losses, None, apply, estimator.activation(output), activations, (None,) * groups,
                       mc.layer_sizes)
        apply = lambda params, x: padded.mlp_apply_padded(params, x, estimator.activation(hidden).fn, shape)  # noqa: E731
        units = (padded.unit_mask(mc.width, shape),) * (groups - 1) + (None,)
        index = shape.loss if len(losses) > 1 else None
        return cls(config, losses, index, apply, estimator.activation(output), activations, units, padded.layer_sizes(mc, shape))

    def forward(self, params, x) -> tuple[layout.Forward, Array]:
        """The pass (logits and every group's pre-activations, in its layout) and the outputs."""
        forward = self.apply(params, x)
        return forward, self.output.fn(forward.logits)

    def loss_value(self, logits, outputs, y):
        """The loss on the batch, from the logits or the outputs, whichever it reads."""
        values = [lambda z, a, y, loss=loss: loss.fn(z if loss.input == "logits" else a, y) for loss in self.losses]
        if self.loss_index is None:
            return values[0](logits, outputs, y)
        return jax.lax.switch(self.loss_index, values, logits, outputs, y)

    @property
    def loss_input(self) -> str | Array:
        """What the loss reads: ``"logits"``, ``"output"`` or, switched between losses that differ, a bool (logits)."""
        inputs = [loss.input for loss in self.losses]
        if len(set(inputs)) == 1:
            return inputs[0]
        return jnp.asarray([i == "logits" for i in inputs])[self.loss_index]

    def objective(self, params, x, y):
        forward, outputs = self.forward(params, x)
        return self.loss_value(forward.logits, outputs, y), (forward, outputs)

    def evaluate(self, params, x, y, key) -> tuple[Observation, object]:
        """The observation at ``params`` on the batch ``(x, y)`` and the gradient the optimiser gets."""
        config, mc = self.config, self.config.model
        (value, (forward, outputs)), exact = jax.value_and_grad(self.objective, has_aux=True)(params, x, y)

        def score():
            logits_fn = lambda p: self.apply(p, x).logits  # noqa: E731
            return score_function_gradient(
                logits_fn, params, self.losses[0].fn, y, key, config.score_samples, config.jnp_dtype, config.metric_dtype
            )

        grads = config.gradient_estimator.gradient(exact, score)
        evaluation = metrics.Evaluation(
            loss=value,
            logits=forward.logits,
            outputs=outputs,
            targets=y,
            loss_input=self.loss_input,
            grads=grads,
            params=params,
            layer_grads=_layers(config, grads),
            layers=tuple(
                (act, z, stacked, units, first)
                for act, z, (_, stacked), units, first in zip(
                    self.true_activations, forward.pre_activations, mc.layer_groups, self.units, forward.units_first
                )
            ),
            thresholds=config.thresholds,
            dtype=config.metric_dtype,
        )
        return metrics.observe(evaluation), grads


def init_params(config: TrainConfig, run: RunInputs, shape: padded.ArchShape | None = None):
    """θ_0 of one run: the explicit (w, b) of a neuron, or drawn from the run's init scheme (a
    padded MLP: the draw of the architecture ``shape``, see :func:`~lossjax.core.padded.init_padded`)."""
    dtype = config.jnp_dtype
    if config.init_mode == "explicit":
        return initializers.init_explicit(config.model, run.init_w, run.init_b, dtype)
    key = jax.random.fold_in(jax.random.key(run.seed), 0)
    if config.model.padded:
        return padded.init_padded(
            config.model, shape, key, run.init_scheme, run.init_scale, run.init_bias, run.init_bias_std, dtype,
            schemes=config.init_schemes,
        )
    return initializers.init_from_scheme(
        config.model, key, run.init_scheme, run.init_scale, run.init_bias, run.init_bias_std, dtype,
        schemes=config.init_schemes,
    )


#: ``fold_in`` value of the round-off probe's signs (0, 1, 2 key the init, batches, score samples).
PROBE_FOLD = 3


def perturb_params(params, seed: Array, dtype_name: str, metric_dtype):
    """θ'_0 of the round-off probe: each entry θ ≠ 0 times (1 + ε·s), each 0 set to ε·s, with
    s = ±1 drawn per entry from ``fold_in(key(seed), PROBE_FOLD)`` and ε =
    ``metrics.ROUNDOFF_EPSILON[dtype_name]``; computed in ``metric_dtype``, rounded once to the
    parameters' dtype (see ``roundoff_decided`` in :mod:`lossjax.core.metrics`)."""
    eps = metrics.ROUNDOFF_EPSILON[dtype_name]
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), PROBE_FOLD), len(leaves))

    def perturb(leaf, key):
        sign = jnp.where(jax.random.bernoulli(key, 0.5, leaf.shape), 1.0, -1.0).astype(metric_dtype)
        value = leaf.astype(metric_dtype)
        step = jnp.where(value == 0, jnp.ones_like(value), value) * (jnp.asarray(eps, metric_dtype) * sign)
        return (value + step).astype(leaf.dtype)

    return jax.tree_util.tree_unflatten(treedef, [perturb(leaf, key) for leaf, key in zip(leaves, keys)])


def make_train(config: TrainConfig) -> Callable[..., tuple[Summary, Observation | None]]:
    """Builds ``train(run, data, params0=None, shape=None) -> (summary, trajectory)`` for one run (see module docstring).

    ``params0`` is θ_0 as :func:`init_params` draws it for ``run``; ``None`` draws it inside
    ``train``. The runner passes it in for scheme initialisations: the draws are then compiled
    once per architecture (in their own small program) instead of into every training program,
    which halves an MLP program's compile time; the values are the same.

    ``trajectory`` is ``None`` unless ``config.record_every > 0``; then it is an
    :class:`~lossjax.core.metrics.Observation` whose leaves have a leading axis of
    ``steps // record_every + 1`` records, at θ_0, θ_k, …, θ_T.

    A padded MLP (``config.model.padded``) trains the architecture ``shape``
    (:class:`~lossjax.core.padded.ArchShape`, the same for every run of a call: pass it unbatched);
    its per-layer results come in that architecture's layout (:func:`~lossjax.core.padded.true_layers`).
    """
    thresholds, n_steps = config.thresholds, config.steps
    if config.model.padded and (config.roundoff_probe or config.update_rounding == "stochastic"):
        raise ValueError("the round-off probe and stochastic rounding draw per parameter entry, padded ones included: "
                         "train a padded architecture without them")
    unpadded = None if config.model.padded else Model.build(config)  # checks the config now

    def train(run: RunInputs, data: Data, params0=None, shape: padded.ArchShape | None = None):
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return train_in_precision(run, data, params0, shape)

    def train_in_precision(run: RunInputs, data: Data, params0, shape: padded.ArchShape | None):
        model = unpadded if unpadded is not None else Model.build(config, shape)
        if params0 is None:
            params0 = init_params(config, run, shape)
        record, trajectory = train_from(model, params0, run, data, config.record_every)
        if config.roundoff_probe:
            params0_probe = perturb_params(params0, run.seed, config.dtype, config.metric_dtype)
            probe, _ = train_from(model, params0_probe, run, data, 0)
            eps = jnp.asarray(metrics.ROUNDOFF_EPSILON[config.dtype], config.metric_dtype)
            record = record._replace(roundoff_decided=summaries.roundoff_decided(record, probe, eps))
        summary = summaries.summarize(record)
        if config.model.padded:
            summary = _true_layers(summary, summaries.RESULTS, shape)
            trajectory = None if trajectory is None else _true_layers(trajectory, metrics.OBSERVED, shape)
        return summary, trajectory

    def train_from(model: Model, params0, run: RunInputs, data: Data, record_every: int):
        """The run from ``params0``: its :class:`~lossjax.core.summaries.RunRecord` and trajectory."""
        y_train = jnp.where(jnp.isfinite(run.target), jnp.full_like(data.y_train, run.target), data.y_train)
        run_key = jax.random.key(run.seed)
        batch_key, sample_key = jax.random.fold_in(run_key, 1), jax.random.fold_in(run_key, 2)
        round_key = jax.random.fold_in(run_key, rounding.STOCHASTIC_KEY)

        def evaluate(params, t):
            x, y = _batch(data.x_train, y_train, config.batch_size, jax.random.fold_in(batch_key, t))
            return model.evaluate(params, x, y, jax.random.fold_in(sample_key, t))

        optimizer = make_optimizer(config.optimizer, run.learning_rate, config.jnp_dtype)
        # θ_0 and θ_T are evaluated outside the scan, so that inside it only what the
        # accumulators (and records) need is computed (XLA removes the rest of each step).
        obs0, grads0 = evaluate(params0, 0)

        def advance(carry, obs, grads, t):
            """Update t from the observation and gradient at θ_t."""
            params, opt_state, acc, round_state = carry
            updates, opt_state = optimizer.update(grads, opt_state, params)
            new_params, round_state = rounding.apply(
                config.update_rounding, params, updates, round_state, jax.random.fold_in(round_key, t)
            )
            unchanged = metrics.layer_unchanged(_layers(config, params), _layers(config, new_params))
            acc = summaries.accumulate(acc, obs, t, thresholds, is_update=True, unchanged=unchanged)
            return new_params, opt_state, acc, round_state

        def step(carry, t):
            obs, grads = evaluate(carry[0], t)
            return advance(carry, obs, grads, t), obs

        carry = (params0, optimizer.init(params0), summaries.start(obs0, n_steps), rounding.init_state(config.update_rounding, params0))
        if n_steps == 0:  # θ_0 observed alone: no update
            params, acc = params0, carry[2]
            records = None if not record_every else jax.tree_util.tree_map(lambda o: o[None][:0], obs0)
        elif n_steps == 1:  # the only step is taken from θ_0's evaluation: no scan, one evaluation less
            params, _, acc, _ = advance(carry, obs0, grads0, jnp.zeros((), jnp.int32))
            records = None if not record_every else jax.tree_util.tree_map(lambda o: o[None], obs0)
        else:
            (params, _, acc, _), records = _scan_steps(step, carry, n_steps, record_every)

        # The final evaluation at θ_T, on the whole training set: with no steps and full batches,
        # step 0's evaluation is that one (same parameters, data and keys).
        if n_steps == 0 and config.batch_size == 0:
            final = obs0
        else:
            final, _ = model.evaluate(params, data.x_train, y_train, jax.random.fold_in(sample_key, n_steps))
        acc = summaries.accumulate(acc, final, n_steps, thresholds, is_update=False)
        trajectory = None
        if records is not None:
            trajectory = jax.tree_util.tree_map(lambda r, f: jnp.concatenate([r, f[None]]), records, final)

        test_loss, test_accuracy = _test_metrics(model, params, data)
        logits0 = model.apply(params0, data.x_train).logits
        several = data.x_train.shape[0] > 1
        born_dead = several & jnp.all(logits0 == logits0[:1])
        spread = metrics.output_spread(logits0, config.metric_dtype) if several else jnp.full((), jnp.nan, config.metric_dtype)
        record = summaries.RunRecord(acc, final, born_dead, spread, test_loss, test_accuracy, n_steps, model.layer_sizes,
                                     thresholds)
        return record, trajectory

    return train


def _true_layers(values: NamedTuple, quantities, shape: padded.ArchShape):
    """``values`` (a Summary or Observation of a padded run) with every per-layer field in the layout of ``shape``."""
    per_layer = {q.name for q in quantities if q.per_layer}
    return values._replace(**{n: padded.true_layers(getattr(values, n), shape.depth) for n in per_layer})


def _layers(config: TrainConfig, params) -> tuple:
    """Per group of layers: (weights, bias, stacked)."""
    mc = config.model
    return tuple((w, b, stacked) for (w, b), (_, stacked) in zip(mc.architecture.layers(mc, params), mc.layer_groups))


def _batch(x: Array, y: Array, batch_size: int, key: Array) -> tuple[Array, Array]:
    """The step's batch: everything (``batch_size`` 0) or indices drawn with replacement."""
    if batch_size == 0:
        return x, y
    idx = jax.random.randint(key, (batch_size,), 0, x.shape[0])
    return x[idx], y[idx]


def _scan_steps(step: Callable, carry, n_steps: int, every: int):
    """Runs ``step`` over t = 0..T−1; with ``every`` = k > 0 also returns the observations at
    t = 0, k, 2k, … as scan outputs (an outer scan over records, an inner one over k steps)."""
    steps = jnp.arange(n_steps, dtype=jnp.int32)
    if not every:
        carry, _ = jax.lax.scan(lambda c, t: (step(c, t)[0], None), carry, steps)
        return carry, None

    def record(carry, block):
        carry, first = step(carry, block[0])
        carry, _ = jax.lax.scan(lambda c, t: (step(c, t)[0], None), carry, block[1:])
        return carry, first

    return jax.lax.scan(record, carry, steps.reshape(n_steps // every, every))


def _test_metrics(model: Model, params, data: Data) -> tuple[Array, Array]:
    """Loss and accuracy on the test set at θ_T (NaN without a test set)."""
    mdtype = model.config.metric_dtype
    if data.x_test.shape[0] == 0:
        nan = jnp.full((), jnp.nan, mdtype)
        return nan, nan
    forward, outputs = model.forward(params, data.x_test)
    loss = model.loss_value(forward.logits, outputs, data.y_test).astype(mdtype)
    return loss, metrics.accuracy(forward.logits, outputs, data.y_test, model.loss_input)
