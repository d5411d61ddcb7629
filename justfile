# Common tasks. `uv run just --list` shows them; uv installs `just` with the dev dependencies.

set dotenv-load := false

# Recipes that take arguments pass them on as given: `just test -m "not chaos"` keeps
# "not chaos" one argument ([positional-arguments] and "$@"; {{args}} would split it).

# Build and start the whole stack (PostgreSQL, RabbitMQ, migrate, api, worker)
[positional-arguments]
up *args:
    docker compose up --build -d "$@"

# Stop the stack (add -v to drop the data volumes)
[positional-arguments]
down *args:
    docker compose down "$@"

# API + worker in one process on in-memory adapters: no PostgreSQL, no RabbitMQ, no AMQP intake
dev:
    uv run tasks dev

# Apply the SQL migrations to TASKS_DATABASE_URL
migrate:
    uv run tasks migrate

# Every test tier (unit, integration, end-to-end, chaos) on real services
[positional-arguments]
test *args:
    uv run pytest "$@"

# Only the tests that need no services
[positional-arguments]
test-unit *args:
    uv run pytest tests/unit "$@"

# ruff, mypy and the static checks of the container files
lint:
    uv run ruff check .
    uv run mypy
    bash .ci/check-static

# Follow the logs of the API of the compose stack
logs-api:
    docker compose logs -f api

# Follow the logs of the workers of the compose stack
logs-worker:
    docker compose logs -f worker

# Performance benchmark against the local services (see docs/performance.md)
[positional-arguments]
bench *args:
    uv run python -m bench "$@"

# The benchmark at a tiny size: proves it still runs
bench-smoke:
    uv run python -m bench --smoke

# The chaos benchmark: workers killed and the broker restarted while tasks flow
[positional-arguments]
chaos-bench *args:
    uv run python -m bench.chaos "$@"
