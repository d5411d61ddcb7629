# Common tasks. `uv run just --list` shows them; uv installs `just` with the dev dependencies.

set dotenv-load := false

# Build and start the whole stack (PostgreSQL, RabbitMQ, migrate, api, worker)
up *args:
    docker compose up --build -d {{args}}

# Stop the stack (add -v to drop the data volumes)
down *args:
    docker compose down {{args}}

# API + worker in one process on in-memory adapters: no PostgreSQL, no RabbitMQ
dev:
    uv run tasks dev

# Apply the SQL migrations to TASKS_DATABASE_URL
migrate:
    uv run tasks migrate

# Every test tier (unit, integration, end-to-end, chaos) on real services
test *args:
    uv run pytest {{args}}

# Only the tests that need no services
test-unit *args:
    uv run pytest tests/unit {{args}}

# ruff, mypy and the static checks of the container files
lint:
    uv run ruff check .
    uv run mypy
    bash .ci/check-static

# Follow the logs of the API / the workers of the compose stack
logs-api:
    docker compose logs -f api

logs-worker:
    docker compose logs -f worker

# Performance benchmark against the local services (see README "Performance")
bench *args:
    uv run python -m bench {{args}}

# The benchmark at a tiny size: proves it still runs
bench-smoke:
    uv run python -m bench --smoke

# The chaos benchmark: workers killed and the broker restarted while tasks flow
chaos-bench *args:
    uv run python -m bench.chaos {{args}}
