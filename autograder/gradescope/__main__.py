"""`python -m autograder.gradescope [--out dist/autograder.zip]` (`make gradescope`): build Gradescope's autograder zip."""
import argparse
import sys
from pathlib import Path

from autograder import PROJECT_ROOT
from autograder.gradescope import build_zip

DEFAULT_ZIP = PROJECT_ROOT / "dist" / "autograder.zip"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_ZIP)
    args = parser.parse_args(argv)
    try:
        path = build_zip(args.out)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB): upload it as the assignment's autograder on Gradescope")
    return 0


if __name__ == "__main__":
    sys.exit(main())
