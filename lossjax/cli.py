"""The ``lossjax`` command: ``run``, ``report``, ``list``, ``bench``.

    lossjax run experiments/neuron/nielsen.toml [--out DIR]   train a sweep, save results (and its report)
    lossjax run SPEC --processes 2                     the same in 2 processes (or --distributed on a cluster)
    lossjax report results/nielsen                     remake a saved sweep's figures and tables
                                                       (from its summary.nc if the results are not there)
    lossjax export results/nielsen                     write the results as one netCDF file (results.nc)
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
    from lossjax import distributed

    if args.processes > 1:
        return distributed.spawn(_without_processes(args.argv), args.processes, quiet=args.quiet)
    distributed.initialize(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)
    from lossjax import config as sweep
    from lossjax import reports, runner

    host.use_compilation_cache()
    spec = sweep.load_sweep(args.spec)
    if args.out is not None and not args.out.strip():
        raise sweep.SweepError("--out is empty; give a results folder (default: results/<name>)")
    out = Path(args.out) if args.out else Path("results") / spec.name
    rank = distributed.index()
    n_combos = len(spec.static_combinations())
    if rank == 0:
        print(
            f"lossjax: sweep {spec.name!r}: {spec.n_runs:,} runs "
            f"({n_combos} static combination{'s' * (n_combos != 1)} × {spec.n_runs // n_combos:,} batched runs)"
            + (f", {distributed.count()} processes" if distributed.count() > 1 else ""),
            file=sys.stderr,
        )
    try:
        ds = runner.run_sweep(spec, progress=not args.quiet, chunk_size=args.chunk_size, out=out, restart=args.restart)
    except runner.Interrupted as e:
        if rank == 0:
            print(f"lossjax: {e}", file=sys.stderr)
        return 130
    if ds is not None:
        where = out / "results.zarr"
        print(
            f"lossjax: compiled in {ds.attrs['compile_time_s']:.1f} s, trained in {ds.attrs['run_time_s']:.1f} s, "
            f"peak memory {ds.attrs['peak_rss_mb'] / 1024:.1f} GiB; results in {where}"
            + (" and results.nc" if (out / "results.nc").is_file() else f" (one file: lossjax export {out})"),
            file=sys.stderr,
        )
        if spec.report:
            try:
                for made in reports.make_report(spec.report, ds, out):
                    print(f"lossjax: wrote {made}", file=sys.stderr)
            except KeyboardInterrupt:
                print(f"lossjax: interrupted during the report; the results in {out} are complete; remake the "
                      f"figures with `lossjax report {out}`", file=sys.stderr)
                return 130
        print(out)
    distributed.barrier("finished")
    return 0


def _without_processes(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--processes":
            skip = True
        elif not a.startswith("--processes="):
            out.append(a)
    return out


def _cmd_export(args: argparse.Namespace) -> int:
    from lossjax.io import results

    ds = results.load(args.folder, lazy=True)
    path = results.save(ds, args.folder)
    print(path)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from lossjax import reports
    from lossjax.io import results

    try:
        ds = results.load(args.folder)
    except results.ResultsError:
        if not (Path(args.folder) / results.SUMMARY_FILE).is_file():
            raise
        ds = results.load_summary(args.folder)  # a sweep too large to commit: its report's summary
        print(f"lossjax: {args.folder} holds no results; reporting from its {results.SUMMARY_FILE}", file=sys.stderr)
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
    from lossjax.core import activations, estimators, initializers, losses, optimizers, train
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
    section("init schemes", ((n, s.description) for n, s in initializers.INIT_SCHEMES.items()))
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
    p.add_argument("--chunk-size", type=int, default=None,
                   help="runs per chunk, the unit results are saved and resumed in (default: sized from memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--restart", action="store_true", help="discard the results already in the folder and start over")
    p.add_argument("--processes", type=int, default=1, metavar="N", help="train in N local processes (jax.distributed)")
    p.add_argument("--distributed", action="store_true",
                   help="join the processes a cluster scheduler started (SLURM, Open MPI: detected by jax)")
    p.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (or $LOSSJAX_COORDINATOR)")
    p.add_argument("--num-processes", type=int, metavar="N", help="number of processes (or $LOSSJAX_NUM_PROCESSES)")
    p.add_argument("--process-id", type=int, metavar="I", help="this process's index (or $LOSSJAX_PROCESS_ID)")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("export", help="write a results folder's store as one netCDF file, results.nc")
    p.add_argument("folder")
    p.set_defaults(func=_cmd_export)
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
    args.argv = argv
    if args.command == "run" and args.processes < 1:
        parser.error(f"--processes must be >= 1, got {args.processes}")
    from lossjax.io.results import ResultsError
    from lossjax.io.store import StoreError
    from lossjax.config import SweepError
    from lossjax.reports import ReportError

    try:
        return args.func(args)
    except (SweepError, ResultsError, StoreError, ReportError) as e:
        print(f"lossjax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lossjax: interrupted (a rerun of the same command resumes a sweep from its finished chunks)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
