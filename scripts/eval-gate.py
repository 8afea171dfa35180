#!/usr/bin/env python3
"""The eval gate: every figure of `policybot eval --json` on each question set
against its floor or ceiling in docs/eval-floor.json.

    scripts/eval-gate.py [--update] [--binary PATH] [--shared DIR]

Runs the binary (default target/debug/policybot) on every question set NAME in
the floor file ("dev", "validation", "tune"): the repository's own
eval/NAME.yaml if there is one, else SHARED/eval/NAME.yaml, over SHARED/corpus
(SHARED defaults to ../shared next to the repository). Fails, naming each
figure, when one is worse than its bound: below "min", above "max". With
--update it instead writes the figures just measured as the new bounds,
keeping each figure's direction: the way to reset the floor after a change
that is meant to move it.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOOR = REPO / "docs" / "eval-floor.json"
# Bounds are compared with this much slack: the figures are rounded to four
# places by `eval`, and the engine is deterministic.
EPSILON = 1e-9


def questions_file(shared: Path, name: str) -> Path:
    """The project's own question sets (eval/) before the shared ones."""
    own = REPO / "eval" / f"{name}.yaml"
    return own if own.is_file() else shared / "eval" / f"{name}.yaml"


def measure(binary: Path, shared: Path, name: str) -> dict:
    questions = questions_file(shared, name)
    run = subprocess.run(
        [str(binary), "eval", str(questions), "--corpus", str(shared / "corpus"), "--json"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        sys.exit(f"ci: policybot eval {questions} failed:\n{run.stderr}")
    return json.loads(run.stdout)["summary"]


def check(name: str, bounds: dict, summary: dict) -> list:
    worse = []
    print(f"  {name}:")
    for key, bound in bounds.items():
        value = summary.get(key)
        if value is None:
            worse.append(f"{name} {key}: not in the eval summary")
            print(f"    {key:<24} missing")
            continue
        checks = []
        if "min" in bound:
            checks.append((value >= bound["min"] - EPSILON, f">= {bound['min']}", "below the floor"))
        if "max" in bound:
            checks.append((value <= bound["max"] + EPSILON, f"<= {bound['max']}", "above the ceiling"))
        if not checks:
            sys.exit(f"ci: {FLOOR}: {name}.{key} has neither \"min\" nor \"max\"")
        ok = all(c[0] for c in checks)
        print(f"    {key:<24} {value:<8} {' and '.join(c[1] for c in checks):<18} {'ok' if ok else 'WORSE'}")
        for passed, op, what in checks:
            if not passed:
                worse.append(f"{name} {key} {value} is {what} ({op})")
    return worse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="write the measured figures as the new bounds")
    parser.add_argument("--binary", type=Path, default=REPO / "target" / "debug" / "policybot")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()

    try:
        floor = json.loads(FLOOR.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"ci: cannot read {FLOOR}: {e}")
    if not isinstance(floor, dict) or not floor:
        sys.exit(f"ci: {FLOOR} must be a non-empty JSON object of question sets")

    worse = []
    for name, bounds in floor.items():
        if name.startswith("_"):
            continue  # a comment
        summary = measure(args.binary, args.shared, name)
        if args.update:
            for key, bound in bounds.items():
                for side in ("min", "max"):
                    if side in bound:
                        bound[side] = summary[key]
        else:
            worse += check(name, bounds, summary)

    if args.update:
        FLOOR.write_text(json.dumps(floor, indent=2) + "\n", encoding="utf-8")
        print(f"wrote the measured figures to {FLOOR}")
        return
    if worse:
        sys.exit("ci: eval gate failed:\n  " + "\n  ".join(worse))
    print("eval gate passed")


if __name__ == "__main__":
    main()
