"""Kill rate per module of the last mutation run (`make mutation`), as a Markdown table.

mutmut 3 leaves one ``mutants/<path>.meta`` (JSON) per mutated file, with each mutant's
test exit code: 1 or 3 killed, 0 survived, 33 or 5 no test calls the mutated function,
36/24/152/255 (and their negatives) timeout, None not run yet. Timeouts count as
detected. A survivor that is equivalent (no input can tell it from the original) is
listed with the reason in ``scripts/mutation_equivalents.toml`` and left out of the
denominator; the rate is (killed + timeout) / (mutants - equivalent).

    python scripts/mutation_report.py                 the table
    python scripts/mutation_report.py --survivors     and the survivors not known equivalent
    python scripts/mutation_report.py --fail-under 90 exit 1 when a module is below 90 %
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.toml"

KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {36, 24, -24, 152, 255}


def modules() -> list[str]:
    """The files `[tool.mutmut] only_mutate` names, as paths relative to the root."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def module_name(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def equivalents() -> dict[str, str]:
    """Mutant name -> why no test can kill it."""
    if not EQUIVALENTS.exists():
        return {}
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return {name: reason for table in data.values() for name, reason in table.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list the survivors not known to be equivalent")
    parser.add_argument("--fail-under", type=float, default=None, metavar="PCT")
    args = parser.parse_args(argv)

    known = equivalents()
    rows, gaps, stale, low = [], [], [], []
    for path in modules():
        meta = ROOT / "mutants" / (path + ".meta")
        name = module_name(path)
        if not meta.exists():
            rows.append(f"| `{name}` | not run | | | | | | |")
            low.append(name)
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        killed = sum(c in KILLED for c in codes.values())
        timeout = sum(c in TIMEOUT for c in codes.values())
        survivors = sorted(k for k, c in codes.items() if c in SURVIVED or c in NO_TESTS)
        no_tests = sum(c in NO_TESTS for c in codes.values())
        other = len(codes) - killed - timeout - len(survivors)
        equivalent = [k for k in survivors if k in known]
        stale += [k for k in known if k.startswith(name + ".") and k not in survivors]
        gaps += [(k, codes[k]) for k in survivors if k not in known]
        judged = len(codes) - len(equivalent)
        rate = 100.0 * (killed + timeout) / judged if judged else 100.0
        if args.fail_under is not None and rate < args.fail_under:
            low.append(name)
        rows.append(
            f"| `{name}` | {len(codes)} | {killed} | {timeout} | {len(survivors) - no_tests} | {no_tests} "
            f"| {len(equivalent)} | {rate:.1f} %" + (f" ({other} not run yet)" if other else "") + " |"
        )

    print("| module | mutants | killed | timeout | survived | no test | equivalent | kill rate |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    if stale:
        print(f"\n{len(stale)} mutant(s) listed as equivalent are no longer survivors (killed or renamed):")
        print("\n".join(f"  {k}" for k in stale))
    if args.survivors and gaps:
        print(f"\n{len(gaps)} survivor(s) not known to be equivalent (show one with `mutmut show NAME`):")
        print("\n".join(f"  {k}" + ("  (no test calls it)" if c in NO_TESTS else "") for k, c in gaps))
    if args.fail_under is not None and low:
        print(f"\nbelow {args.fail_under:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
