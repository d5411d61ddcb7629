# syntax=docker/dockerfile:1

# One image for every role: `tasks migrate`, `tasks api`, `tasks worker`
# (docker-compose.yml picks the role with `command:`).
#
# Both stages use the same pinned base image: the virtualenv built in the
# builder points at /usr/local/bin/python3.11, so the runtime stage must have
# the very same interpreter at the very same path.

# ---------------------------------------------------------------- builder ----
FROM python:3.11-slim-bookworm AS builder

# uv is pinned to a minor line; the lock file pins every Python package.
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /uvx /bin/

# - compile .pyc at build time so the non-root runtime never needs to write them
# - copy (not hardlink) out of the cache mount, which is not in the final image
# - use the image's interpreter, never download one
# - put the environment at /app/.venv (uv's default for a project at /app)
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first, from the lock only: this layer is rebuilt only when
# pyproject.toml or uv.lock change, not on every source edit.
# `--locked` fails the build if uv.lock does not match pyproject.toml, so the
# image always installs exactly what the tests ran against (.ci/check-static
# checks that this flag stays here).
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --locked --no-dev --no-install-project

# Then the project itself, installed as a regular (non-editable) wheel so the
# runtime stage needs nothing but the virtualenv.
COPY pyproject.toml uv.lock README.md ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
COPY sql ./sql
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

# ---------------------------------------------------------------- runtime ----
FROM python:3.11-slim-bookworm AS runtime

# Fixed, unprivileged uid/gid (10001) so volume permissions and
# `runAsNonRoot`-style policies are predictable.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /app --shell /usr/sbin/nologin app

# Only the virtualenv crosses over: no uv, no source tree, no build cache.
# It stays owned by root, so the service user can read but not modify it.
COPY --from=builder /app/.venv /app/.venv

ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Settings come from the environment; a .env in the working directory is read
# too (mount one at /app/.env if wanted).
WORKDIR /app
USER 10001:10001

EXPOSE 8000

# Exec form: `tasks` is PID 1 and receives SIGTERM directly from `docker stop`.
ENTRYPOINT ["tasks"]
CMD ["api"]
