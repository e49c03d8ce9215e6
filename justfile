# Developer recipes; each one works on a fresh clone (the scripts make the venv).

venv := ".venv/bin"

# run the test suite (extra arguments go to pytest)
test *args:
    scripts/test {{args}}

# lint, check formatting, and type-check src/
check:
    scripts/setup >/dev/null
    {{venv}}/ruff check .
    {{venv}}/ruff format --check .
    {{venv}}/mypy

# fix lint and formatting where ruff can
fix:
    {{venv}}/ruff check --fix .
    {{venv}}/ruff format .

# run the bot (the local demo when no Slack tokens are set)
run *args:
    scripts/run {{args}}

# validate settings and the job configuration
config-check role="all":
    scripts/run --role {{role}} check

# run the benchmarks and print figures (--quick for a smoke run)
bench *args:
    scripts/setup >/dev/null
    {{venv}}/python -m bench {{args}}

# refresh the lock file from the current virtual environment
lock:
    {{venv}}/pip freeze --exclude-editable | grep -vi '^bennettbot' | \
        sed '1i # Exact versions that CI and the Docker image install (pip -c requirements.lock).\n# Regenerate: just lock' > requirements.lock

# build the production image (needs a Docker engine)
docker-build:
    docker build -t bennettbot:local .

# the demo inside the image (no tokens needed)
docker-demo:
    docker compose run --rm dev

# bot, dispatcher and web from the image, settings from .env
docker-up:
    docker compose up -d --build bot dispatcher web

# lint the Dockerfile and the GitHub workflows
docker-lint:
    scripts/setup >/dev/null
    {{venv}}/hadolint Dockerfile
    {{venv}}/actionlint
