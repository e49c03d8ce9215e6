"""Commands for testing that the bot works.

python jobs.py                 prints "Hello World!"
python jobs.py --name=NAME     prints "Hello NAME!"
python jobs.py poem            prints the poem in poem.txt
python jobs.py countdown N     counts down from N, a line a second (N ≤ 600)
"""

import argparse
import io
import sys
import time
from pathlib import Path

POEM_PATH = Path(__file__).resolve().parent / "poem.txt"


def hello(name: str) -> str:
    return f"Hello {name}!"


def poem() -> str:
    return POEM_PATH.read_text(encoding="utf-8")


def countdown(seconds: int) -> None:
    """A line a second, for seeing live progress and ``stop job id``."""
    for left in range(seconds, 0, -1):
        print(f"{left}…", flush=True)
        time.sleep(1)
    print("Lift-off!", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Commands for testing the bot.")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["hello", "poem", "countdown"],
        default="hello",
        help="what to do (default: hello)",
    )
    parser.add_argument("seconds", nargs="?", default="10", help="for countdown")
    parser.add_argument("--name", default="World", help="who to greet")
    args = parser.parse_args(argv)

    # Job output is read as UTF-8 whatever the locale of the host says.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    if args.command == "countdown":
        if not args.seconds.isdigit() or not 0 < int(args.seconds) <= 600:
            print("error: give a whole number of seconds, 1 to 600", file=sys.stderr)
            return 1
        countdown(int(args.seconds))
    elif args.command == "poem":
        text = poem()
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        print(hello(args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
