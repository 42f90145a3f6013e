"""An adversarial sweep of gradcli's gradient-check verdicts against an exact mpmath reference.

    python benchmarks/adversarial.py --checks 100000            # the full sweep (minutes)
    python benchmarks/adversarial.py --seed 7 --checks 5000 --mutants 2 --json out.json

Random programs over the whole language (tests/adversarial.py draws them, and interprets them
in mpmath at 48 digits with dual numbers) are checked by `gradcli.checking.engine.check` at
batches of points spread over 1e-300…1e300, with zeros, ties, kinks and subnormal numbers.
Every element check is judged against mpmath:

- with the registry as it is, a verdict "fail", "non-finite" or "not differentiable, not a
  subgradient" is a FALSE FAILURE where the gradient agrees with the exact derivative within
  the reported tolerance (at a kink: with the one-sided derivatives, and as a whole with the
  hull of the pieces' gradients);
- with a wrong rule injected (`--mutants` per case: a partial ×(1 + 1e-3), negated, or the two
  partials of a binary primitive swapped, undone afterwards), a verdict "pass" or "not
  differentiable" is a FALSE PASS where the gradient is off the exact derivative by more than
  the tolerance (at a kink: outside the one-sided derivatives ± tolerance). False passes with
  the correct registry, and false failures in mutant runs, are counted too.

Every check runs under a wall-clock bound (SIGALRM); a batch that times out is redone point by
point, and each point that still times out is a hang; an exception from gradcli is an error.
Prints the counts, every false verdict with its program, point and numbers, and the time taken;
exits 1 if any false verdict, hang or error was found (2 for a broken generator or reference).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import adversarial  # tests/adversarial.py, the shared library


def report(title: str, tally: adversarial.Tally) -> list[str]:
    """The counts of one kind of run, as lines of text."""
    v = tally.verdicts
    lines = [
        f"{title}: {tally.checks} element checks ({tally.judged} judged against mpmath)",
        f"  pass {v.get('pass', 0)}, fail {v.get('fail', 0)}, "
        f"not differentiable {v.get('not differentiable', 0)}, "
        f"not differentiable, not a subgradient "
        f"{v.get('not differentiable, not a subgradient', 0)}, "
        f"unchecked {v.get('unchecked', 0)}, non-finite {v.get('non-finite', 0)}",
        f"  false passes {tally.false_passes}, false failures {tally.false_failures}, "
        f"hangs {tally.hangs}, errors {tally.errors}",
    ]
    skipped = sum(tally.skipped.values())
    lines.append(f"  skipped {skipped}:")
    for reason, count in sorted(tally.skipped.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {count:7d}  {reason}")
    for reason, count in sorted(tally.unjudged.items(), key=lambda kv: -kv[1]):
        lines.append(f"  not judged {count}: {reason}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, print the counts and every false verdict; 1 if any was found."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    parser.add_argument(
        "--checks", type=int, default=100_000, help="element checks with the correct registry"
    )
    parser.add_argument(
        "--mutants", type=int, default=1, help="runs with a wrong rule injected, per case"
    )
    parser.add_argument("--points", type=int, default=32, help="points per case (one batch)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per check call")
    parser.add_argument("--json", type=Path, help="also write every record here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    last = [start]

    def progress(correct: adversarial.Tally, wrong: adversarial.Tally) -> None:
        now = time.perf_counter()
        if not args.quiet and now - last[0] > 10:
            last[0] = now
            print(
                f"  {correct.checks + wrong.checks} checks, {now - start:.0f} s: "
                f"false passes {correct.false_passes + wrong.false_passes}, false failures "
                f"{correct.false_failures + wrong.false_failures}, hangs "
                f"{correct.hangs + wrong.hangs}",
                file=sys.stderr,
                flush=True,
            )

    try:
        correct, wrong = adversarial.sweep(
            args.seed, args.checks, args.mutants, args.points, args.timeout, progress
        )
    except (AssertionError, adversarial.MissingReference) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    total = adversarial.Tally()
    total.add(correct)
    total.add(wrong)

    lines = [f"seed {args.seed}, {args.points} points per case, {args.mutants} mutant run(s)"]
    lines += report("with the correct registry", correct)
    lines += report("with a wrong rule injected", wrong)
    lines.append(
        f"total: {total.checks} element checks in {seconds:.1f} s "
        f"({total.checks / seconds:.0f} per second): mpmath {total.seconds_reference:.1f} s, "
        f"gradcli check {total.seconds_check:.1f} s"
    )
    wrongs = [r for r in total.records if r.kind != "error"]
    lines.append(
        f"false passes {total.false_passes}, false failures {total.false_failures}, "
        f"hangs {total.hangs}, errors {total.errors}"
    )
    print("\n".join(lines))
    if total.records:
        print(f"\n{len(total.records)} records:")
        for record in total.records:
            print(record.describe())
    if args.json is not None:
        data = {
            "seed": args.seed,
            "seconds": seconds,
            "correct": {k: v for k, v in asdict(correct).items() if k != "records"},
            "wrong": {k: v for k, v in asdict(wrong).items() if k != "records"},
            "records": [asdict(r) for r in total.records],
        }
        args.json.write_text(json.dumps(data, indent=1, default=str))
    return 1 if wrongs or total.errors else 0


if __name__ == "__main__":
    sys.exit(main())
