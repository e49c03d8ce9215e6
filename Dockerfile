# syntax=docker/dockerfile:1

# Production image for bennettbot. One image serves every role:
#   python -m bennettbot --role all|bot|dispatcher|web
# Dependencies are installed at the exact versions in requirements.lock.
# Remote jobs use asyncssh, which reads the mounted key itself: no openssh-client.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a virtual environment with bennettbot and its runtime deps ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The lock first, so dependency layers are reused when only the code changes.
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
# The [fabric] extra puts `fab` in the image, for jobs that run fabfiles. No
# [dev] extra: the lock also pins the test and lint tools, but -c only
# constrains what is installed, so they stay out of the image. The shipped
# workspace and job config are package data and are installed with the package.
RUN pip install --no-cache-dir -c requirements.lock ".[fabric]"

# --- runtime ----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# tini runs as PID 1: it passes signals on and reaps orphans, so the
# background children that a job leaves (and the bot kills) never linger as
# zombies. (Debian's one tini release of the base image's suite: unpinned.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 bennettbot \
    && useradd --uid 10001 --gid bennettbot --create-home \
        --home-dir /home/bennettbot --shell /bin/bash bennettbot \
    && install -d -m 0700 -o bennettbot -g bennettbot /home/bennettbot/.ssh \
    && install -d -m 0755 -o bennettbot -g bennettbot \
        /storage /storage/logs /storage/workspace

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/bennettbot \
    DB_PATH=/storage/bennettbot.db \
    LOGS_DIR=/storage/logs \
    FAB_WORKSPACE_DIR=/storage/workspace \
    BOT_CHECK_FILE=/storage/.bot_startup_check \
    WEB_PORT=9999

WORKDIR /home/bennettbot
# Numeric, so hosts and orchestrators can check it is not root (= bennettbot).
USER 10001:10001

# /storage holds the database, logs and job workspace: mount it persistently
# (a dokku storage mount, or the named volume in docker-compose.yaml).
EXPOSE 9999

# The default role (all) serves the web endpoint; docker-compose.yaml and
# app.json give each single-role process its own check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bennettbot", "healthcheck", "--role", "web"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "bennettbot", "--role", "all"]
