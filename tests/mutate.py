"""Mutation testing of lossjax's core: do the default tests catch one-line changes?

    python tests/mutate.py                      # every listed mutant plus a sample of 6 per module
    python tests/mutate.py --per-module 0       # only the listed mutants (the ones the tests exist for)
    python tests/mutate.py --all --module metrics   # every generated mutant of one module
    python tests/mutate.py --list               # print the mutants, run nothing
    python tests/mutate.py --module train --per-module 0 -k born_dead   # quick: listed mutants, a few tests
    python tests/mutate.py --module train --per-module 20 --line 269 --tests tests/test_references.py
                                                # the same sample's mutants of one line, other test files

A mutant is the source of one module of ``lossjax/core`` with one token changed: a comparison
flipped (``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``==`` ↔ ``!=``), ``+`` ↔ ``-``, an integer constant
off by one, ``argmax`` ↔ ``argmin``, ``maximum`` ↔ ``minimum``, ``all`` ↔ ``any``, ``&`` ↔
``|``, ``True`` ↔ ``False``, a ``not`` or ``~`` removed. Strings, comments, docstrings, ``def``
lines and annotations are never changed. :data:`LISTED` adds the hand-written mutants of the
measured gaps (each must be caught).

Each mutant runs in a temporary copy of ``lossjax/`` and ``tests/`` (``/tmp/lossjax-mutant-*``,
``PYTHONPATH`` pointing there), so the worktree is never modified, whatever happens. The tests
run single-process with ``-x`` and a per-mutant timeout, over only the test files relevant to
the module (:data:`TESTS`). A mutant is *caught* when the tests fail (or time out, reported
apart); it *survives* when they pass. The report ends with the share caught per module and the
survivors, to be judged: an equivalent mutant (same behaviour) is harmless, any other needs a test.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("losses", "objectives", "metrics", "estimators", "train")

#: Test files run against each module's mutants, fastest first (``-x`` stops at the first failure).
TESTS = {
    "losses": ["tests/test_losses.py", "tests/test_train.py"],
    "objectives": ["tests/test_losses.py", "tests/test_references.py"],
    "metrics": ["tests/test_metrics.py", "tests/test_references.py", "tests/test_results.py"],
    "estimators": ["tests/test_activations.py", "tests/test_references.py"],
    "train": ["tests/test_train.py", "tests/test_metrics.py", "tests/test_references.py"],
}

#: The one-line changes the tests must catch: (module, the exact old text, the new text, why).
LISTED = [
    ("estimators", "advantage = jax.lax.stop_gradient(rewards - baseline)",
     "advantage = jax.lax.stop_gradient(baseline - rewards)", "score-function advantage sign flipped"),
    ("train", "return cls(config, loss, apply, estimator.activation(output),",
     "return cls(config, loss, apply, output,", "straight-through switched off (output)"),
    ("metrics", "== jnp.argmax(targets, axis=-1)", "== jnp.argmin(targets, axis=-1)", "K-class accuracy against argmin(y)"),
    ("train", "jnp.all(logits0 == logits0[:1])", "jnp.all(jnp.abs(logits0 - logits0[:1]) <= 0.05)",
     "born_dead loosened to outputs within 0.05"),
    ("metrics", "shares = {name: (ds.outcome == code)", "shares = {name: (ds.outcome == (code + 1) % 4)",
     "outcome_shares labels shifted by one"),
    ("metrics", "jnp.all(magnitude < thresholds.saturation_delta", "jnp.all(magnitude <= thresholds.saturation_delta",
     "saturation comparison < turned into <="),
]

SWAP_OPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "+": "-", "-": "+", "&": "|", "|": "&"}
SWAP_NAMES = {"argmax": "argmin", "argmin": "argmax", "maximum": "minimum", "minimum": "maximum", "fmin": "fmax",
              "all": "any", "any": "all", "True": "False", "False": "True", "and": "or", "or": "and"}


def module_path(module: str) -> Path:
    return Path("lossjax/core") / f"{module}.py"


def generate(module: str) -> list[tuple[int, str, str, str]]:
    """Every token mutant of a module: (line number, old line, new line, description)."""
    source = (ROOT / module_path(module)).read_text()
    lines = source.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    mutants = []
    for i, tok in enumerate(tokens):
        row, col = tok.start
        if row > len(lines) or tok.type in (tokenize.STRING, tokenize.COMMENT):
            continue
        line = lines[row - 1]
        stripped = line.lstrip()
        if stripped.startswith(("def ", "class ", "@", "import ", "from ")) or tok.start[0] != tok.end[0]:
            continue
        prev = tokens[i - 1].string if i else ""
        new = None
        if tok.type == tokenize.OP and tok.string in SWAP_OPS:
            if tok.string == "|" and ":" in line.split("=")[0]:
                continue  # a type annotation
            new = SWAP_OPS[tok.string]
        elif tok.type == tokenize.OP and tok.string == "~":
            new = ""
        elif tok.type == tokenize.NAME and tok.string in SWAP_NAMES:
            if tok.string in ("all", "any") and prev != ".":
                continue
            new = SWAP_NAMES[tok.string]
        elif tok.type == tokenize.NAME and tok.string == "not":
            new = ""
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            new = str(int(tok.string) + 1)
        if new is None:
            continue
        mutated = line[:col] + new + line[tok.end[1]:]
        if new == "" and tok.string == "not":
            mutated = line[:col] + line[tok.end[1]:].lstrip()
        mutants.append((row, line, mutated, f"{tok.string!r} -> {new!r}"))
    return mutants


def listed(module: str) -> list[tuple[int, str, str, str]]:
    lines = (ROOT / module_path(module)).read_text().splitlines(keepends=True)
    out = []
    for mod, old, new, why in LISTED:
        if mod != module:
            continue
        hits = [k for k, line in enumerate(lines) if old in line]
        if len(hits) != 1:  # outcome_shares lives in io/results.py: listed with the metrics
            target = "lossjax/io/results.py"
            other = (ROOT / target).read_text().splitlines(keepends=True)
            hits2 = [k for k, line in enumerate(other) if old in line]
            if len(hits2) != 1:
                raise SystemExit(f"listed mutant {why!r}: {old!r} found {len(hits) or len(hits2)} times")
            out.append((-(hits2[0] + 1), other[hits2[0]], other[hits2[0]].replace(old, new), f"LISTED: {why}"))
            continue
        out.append((hits[0] + 1, lines[hits[0]], lines[hits[0]].replace(old, new), f"LISTED: {why}"))
    return out


def run_mutant(module: str, mutant, timeout: float, select: str = "", tests=None) -> tuple[str, float]:
    row, old, new, _ = mutant
    rel = Path("lossjax/io/results.py") if row < 0 else module_path(module)
    row = abs(row)
    with tempfile.TemporaryDirectory(prefix="lossjax-mutant-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(ROOT / "lossjax", tmp / "lossjax", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
        if (ROOT / "experiments").exists():
            os.symlink(ROOT / "experiments", tmp / "experiments")
        target = tmp / rel
        lines = target.read_text().splitlines(keepends=True)
        assert lines[row - 1] == old
        lines[row - 1] = new
        target.write_text("".join(lines))
        env = dict(os.environ, PYTHONPATH=str(tmp), PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-p", "no:cacheprovider", *(tests or TESTS[module])]
        if select:
            cmd += ["-k", select]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - start
        status = "survived" if proc.returncode == 0 else "caught"
        if proc.returncode not in (0, 1):  # collection error, crash: still caught, said apart
            status = "caught (error)"
        return status, time.monotonic() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", choices=MODULES, action="append", help="mutate only these modules")
    parser.add_argument("--per-module", type=int, default=6, help="generated mutants sampled per module (default 6)")
    parser.add_argument("--all", action="store_true", help="every generated mutant (slow)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds per mutant (default 240)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("-k", dest="select", default="", help="only the tests pytest -k selects (a quick check)")
    parser.add_argument("--tests", action="append", help="run these test files instead of the module's (TESTS)")
    parser.add_argument("--line", type=int, action="append", help="only the mutants of these line numbers")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    plan = []
    for module in args.module or MODULES:
        generated = generate(module)
        sample = generated if args.all else rng.sample(generated, min(args.per_module, len(generated)))
        chosen = [m for m in listed(module) + sorted(sample) if not args.line or abs(m[0]) in args.line]
        plan += [(module, m) for m in chosen]
        print(f"{module}: {len(generated)} generated mutants, running {len(sample)} + {len(listed(module))} listed",
              flush=True)
    if args.list:
        for module, (row, old, new, why) in plan:
            print(f"{module}:{abs(row)}  {why}\n  - {old.strip()}\n  + {new.strip()}")
        return 0
    results = []
    for module, mutant in plan:
        status, seconds = run_mutant(module, mutant, args.timeout, args.select, args.tests)
        results.append((module, mutant, status))
        row, old, new, why = mutant
        print(f"[{status:>14}] {module}:{abs(row)} {why} ({seconds:.0f} s)\n    {new.strip()}", flush=True)
    print("\nshare caught per module:")
    for module in dict.fromkeys(m for m, _, _ in results):
        mine = [s for m, _, s in results if m == module]
        caught = sum(s != "survived" for s in mine)
        print(f"  {module}: {caught}/{len(mine)}")
    total = sum(s != "survived" for _, _, s in results)
    print(f"  all: {total}/{len(results)} caught ({sum(s == 'timeout' for _, _, s in results)} by timeout)")
    survivors = [(m, mu) for m, mu, s in results if s == "survived"]
    if survivors:
        print("\nsurvivors:")
        for module, (row, old, new, why) in survivors:
            print(f"  {module}:{abs(row)} {why}\n    - {old.strip()}\n    + {new.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
