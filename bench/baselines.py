"""Starting the naive apps of bench/naive in a sandbox, beside (or instead of) the service's
processes: they join the stack's processes, so that closing the stack stops them too."""

from __future__ import annotations

import sys

import httpx

from bench.infra import BenchError, Proc, Stack, consumers, free_port, wait_until
from bench.naive.pipeline import QUEUE


def _start(stack: Stack, name: str, module: str, *args: str) -> Proc:
    proc = Proc(name, ["-m", module, *args], stack.env, stack.log_dir, program=(sys.executable,))
    stack.procs.append(proc)
    return proc


def _answering(proc: Proc, base_url: str, timeout: float = 60) -> None:
    """Until the app answers at all (a 404 for GET /: uvicorn serves once the lifespan, which
    opens the pool and the broker connection, has run)."""

    def up() -> bool:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            httpx.get(base_url + "/", timeout=2)
            return True
        except httpx.HTTPError:
            return False

    wait_until(up, timeout, f"{proc.name} to answer", every=0.2)


def naive_app(stack: Stack, workers: int = 1) -> tuple[Proc, str]:
    """The naive Litestar + one-INSERT app on the stack's database; it and its base URL."""
    port = free_port()
    proc = _start(stack, "naive-app", "bench.naive.app", f"--port={port}",
                  f"--workers={workers}", f"--database-url={stack.database_url}")
    base_url = f"http://127.0.0.1:{port}"
    _answering(proc, base_url)
    return proc, base_url


def naive_pipeline(stack: Stack, workers: int = 1) -> tuple[Proc, Proc, str]:
    """The naive pipeline's API and worker on the stack's database and vhost; both, and the
    API's base URL, once the worker consumes."""
    port = free_port()
    urls = [f"--database-url={stack.database_url}", f"--rabbitmq-url={stack.rabbitmq_url}"]
    worker = _start(stack, "naive-worker", "bench.naive.pipeline", "worker", *urls)
    api = _start(stack, "naive-api", "bench.naive.pipeline", "api", f"--port={port}",
                 f"--workers={workers}", *urls)
    base_url = f"http://127.0.0.1:{port}"
    _answering(api, base_url)

    def consuming() -> bool:
        if not worker.alive():
            raise BenchError(f"naive worker exited:\n{worker.tail()}")
        return consumers(stack.rabbitmq_url, QUEUE) >= 1

    wait_until(consuming, 60, "the naive worker to consume")
    return api, worker, base_url
