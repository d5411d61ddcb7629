"""A naive `POST /tasks`: Litestar on uvicorn, served as the service's API is, and one INSERT of
the new row per request. `python -m bench.naive.app --port N --database-url URL [--workers N]`"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, post
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

#: how the URL reaches the app in each uvicorn process (they import this module afresh)
DATABASE_URL = "BENCH_NAIVE_DATABASE_URL"
POOL_SIZE = 10  # the service's TASKS_DB_POOL_SIZE default

INSERT = """
INSERT INTO tasks (id, title, description, payload, status, source, created_at, updated_at)
VALUES (%(id)s, %(title)s, %(description)s, %(payload)s, 'new', 'api', now(), now())
"""


class TaskIn(msgspec.Struct):
    title: str
    description: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class Created(msgspec.Struct):
    id: uuid.UUID


def new_pool() -> AsyncConnectionPool[Any]:
    """Opened by the app's lifespan; every connection up front, each statement its own
    transaction."""
    return AsyncConnectionPool(
        os.environ[DATABASE_URL], min_size=POOL_SIZE, max_size=POOL_SIZE,
        kwargs={"autocommit": True}, open=False,
    )


async def insert(pool: AsyncConnectionPool[Any], task: TaskIn) -> uuid.UUID:
    task_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(INSERT, {"id": task_id, "title": task.title,
                                    "description": task.description,
                                    "payload": Jsonb(task.payload)})
    return task_id


def create_app() -> Litestar:
    pool = new_pool()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    @post("/tasks", status_code=201)
    async def create_task(data: TaskIn) -> Created:
        return Created(await insert(pool, data))

    return Litestar([create_task], lifespan=[lifespan])


def serve(factory: str, port: int, workers: int) -> None:
    """As the service serves its API: uvicorn, `workers` processes, no access log, no server
    header, the standard library's logging at INFO."""
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(factory, factory=True, host="127.0.0.1", port=port, workers=workers,
                log_config=None, access_log=False, server_header=False)


def arguments(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", required=True)
    return parser


def main() -> None:
    args = arguments(__doc__).parse_args()
    os.environ[DATABASE_URL] = args.database_url
    serve("bench.naive.app:create_app", args.port, args.workers)


if __name__ == "__main__":
    main()
