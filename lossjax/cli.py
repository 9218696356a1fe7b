"""The ``lossjax`` command: ``run``, ``report``, ``list``, ``bench``.

    lossjax run experiments/neuron/nielsen.toml [--out DIR]   train a sweep, save results (and its report)
    lossjax report results/nielsen                     remake a saved sweep's figures and tables
    lossjax list                                       losses, activations, optimisers, datasets, ...
    lossjax bench [--quick] [--json FILE]              time lossjax against numpy / PyTorch baselines
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from lossjax import host


def _cmd_run(args: argparse.Namespace) -> int:
    from lossjax import reports
    from lossjax.io import results
    from lossjax import runner
    from lossjax import config as sweep

    host.use_compilation_cache()
    spec = sweep.load_sweep(args.spec)
    out = Path(args.out) if args.out else Path("results") / spec.name
    n_combos = len(spec.static_combinations())
    print(
        f"lossjax: sweep {spec.name!r}: {spec.n_runs:,} runs "
        f"({n_combos} compiled program{'s' * (n_combos != 1)} × {spec.n_runs // n_combos:,} batched runs)",
        file=sys.stderr,
    )
    ds = runner.run_sweep(spec, progress=not args.quiet, chunk_size=args.chunk_size)
    path = results.save(ds, out)
    print(
        f"lossjax: compiled in {ds.attrs['compile_time_s']:.1f} s, trained in {ds.attrs['run_time_s']:.1f} s, "
        f"peak memory {ds.attrs['peak_rss_mb'] / 1024:.1f} GiB; results in {path}",
        file=sys.stderr,
    )
    if spec.report:
        for made in reports.make_report(spec.report, ds, out):
            print(f"lossjax: wrote {made}", file=sys.stderr)
    print(out)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from lossjax import reports
    from lossjax.io import results

    ds = results.load(args.folder)
    name = args.name or ds.attrs.get("report", "")
    if not name:
        print(f"lossjax: {args.folder} has no report; give one with --name FILE.py:FUNCTION", file=sys.stderr)
        return 2
    for made in reports.make_report(name, ds, Path(args.folder)):
        print(made)
    return 0


def catalogue_markdown() -> str:
    """The loss and activation catalogue as Markdown tables (``lossjax list --markdown``)."""
    from lossjax.core import activations, estimators, losses

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| loss | input | formula and gradient | where the gradient vanishes |", "| --- | --- | --- | --- |"]
    out += [f"| `{n}` | {l.input} | {cell(l.description)} | {cell(l.zero_grad)} |" for n, l in losses.LOSSES.items()]
    out += ["", "| activation | description | max f' | flat region (f' = 0 or tiny) |", "| --- | --- | --- | --- |"]
    out += [
        f"| `{n}` | {cell(a.description)} | {a.max_slope:.4g} | {cell(a.flat_region)} |"
        for n, a in activations.ACTIVATIONS.items()
    ]
    out += ["", "| gradient estimator | what it does |", "| --- | --- |"]
    out += [f"| `{n}` | {cell(e.description)} |" for n, e in estimators.ESTIMATORS.items()]
    return "\n".join(out) + "\n"


def _cmd_list(args: argparse.Namespace) -> int:
    from lossjax import config as sweep
    from lossjax.core import activations, estimators, losses, models, optimizers, train
    from lossjax import data as datasets

    if args.markdown:
        print(catalogue_markdown(), end="")
        return 0

    def section(title: str, rows) -> None:
        print(f"\n{title}")
        rows = list(rows)
        width = max((len(r[0]) for r in rows), default=0)
        for name, text in rows:
            print(f"  {name:<{width}}  {text}")

    section("losses (input: output a, or logits z)", ((n, f"[{l.input}] {l.description}") for n, l in losses.LOSSES.items()))
    section("activations", ((n, a.description) for n, a in activations.ACTIVATIONS.items()))
    section("gradient estimators", ((n, e.description) for n, e in estimators.ESTIMATORS.items()))
    section("optimizers", ((n, o.description) for n, o in optimizers.OPTIMIZERS.items()))
    section("datasets", ((n, d.description) for n, d in datasets.DATASETS.items()))
    section("init schemes", ((n, s.description) for n, s in models.INIT_SCHEMES.items()))
    section("dtypes", ((n, "") for n in train.DTYPES))
    if args.verbose:
        rows = sweep.schema_rows()
        for table in dict.fromkeys(t for t, _, _ in rows):
            section(f"sweep keys [{table or 'top level'}]", ((k, d) for t, k, d in rows if t == table))
    return 0


def main(argv: list[str] | None = None) -> int:
    host.use_all_cpu_cores()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options (argparse.REMAINDER drops "-..." ones)
        from lossjax.bench import harness as bench

        return bench.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="lossjax",
        description="Train grids of single neurons and MLPs as one compiled JAX program and measure when learning stalls.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(__doc__.split("\n", 1)[1]),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train a sweep file and save its results")
    p.add_argument("spec", help="sweep TOML file, e.g. experiments/neuron/nielsen.toml")
    p.add_argument("--out", help="results folder (default: results/<name>/)")
    p.add_argument("--chunk-size", type=int, default=None, help="runs per compiled call (default: sized from memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("report", help="remake the figures and tables of saved results")
    p.add_argument("folder")
    p.add_argument("--name", help="report as FILE.py:FUNCTION (default: the sweep's)")
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("list", help="print the available losses, activations, optimisers, datasets, init schemes")
    p.add_argument("-v", "--verbose", action="store_true", help="also print every sweep-file key")
    p.add_argument("--markdown", action="store_true", help="print the loss/activation catalogue as Markdown tables")
    p.set_defaults(func=_cmd_list)
    sub.add_parser("bench", help="benchmark against numpy and PyTorch (options: `lossjax bench -h`)")
    args = parser.parse_args(argv)
    from lossjax.io.results import ResultsError
    from lossjax.config import SweepError
    from lossjax.reports import ReportError

    try:
        return args.func(args)
    except (SweepError, ResultsError, ReportError) as e:
        print(f"lossjax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lossjax: interrupted; no results file was written or the previous one is intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
