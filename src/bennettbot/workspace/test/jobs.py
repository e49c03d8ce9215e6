"""Commands for testing that the bot works.

python jobs.py                 prints "Hello World!"
python jobs.py --name=NAME     prints "Hello NAME!"
python jobs.py poem            prints the poem in poem.txt
"""

import argparse
import io
import sys
from pathlib import Path

POEM_PATH = Path(__file__).resolve().parent / "poem.txt"


def hello(name: str) -> str:
    return f"Hello {name}!"


def poem() -> str:
    return POEM_PATH.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Commands for testing the bot.")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["hello", "poem"],
        default="hello",
        help="what to do (default: hello)",
    )
    parser.add_argument("--name", default="World", help="who to greet")
    args = parser.parse_args(argv)

    # Job output is read as UTF-8 whatever the locale of the host says.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    if args.command == "poem":
        text = poem()
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        print(hello(args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
