# Sourced by the other scripts: make sure a virtual environment with bennettbot
# and its development tools exists and matches pyproject.toml and the lock file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENNETTBOT_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "bennettbot needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2
    exit 1
fi
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    # missing, or half-made by an earlier failed attempt
    echo "creating a virtual environment in $VENV" >&2
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        rm -rf "$VENV"
        echo "could not create a virtual environment (on Debian/Ubuntu: apt install python3-venv)" >&2
        exit 1
    fi
fi
STAMP="$VENV/.bennettbot-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "installing bennettbot and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$ROOT/requirements.lock" -e "$ROOT[dev]"
    echo "$WANT" > "$STAMP"
fi
