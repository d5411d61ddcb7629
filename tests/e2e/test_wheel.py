"""The built wheel carries every page's files: installed away from the checkout, it serves the
dashboard, Swagger UI and the AsyncAPI page whole."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "entrypoints" / "http" / "static" / "ui"
FILES = ["/ui/app.js", "/ui/app.css", "/static/vendor/uplot-1.6.32/dist/uPlot.iife.min.js",
         "/static/vendor/uplot-1.6.32/dist/uPlot.min.css", "/docs", "/docs/asyncapi",
         "/docs/asyncapi.json",
         "/static/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js",
         "/static/vendor/asyncapi-react-component-3.2.1/browser/standalone/index.js"]


def run(*args: str | Path, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel and its locked dependencies (uv takes
    them from its cache when it can); the path of its `tasks`."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel (python3 -m pip install uv)"
    where = tmp_path_factory.mktemp("wheel")
    run(uv, "build", "--wheel", "-q", "-o", where / "dist", cwd=ROOT)
    (wheel,) = (where / "dist").glob("tasks_service-*.whl")
    run(uv, "export", "--locked", "--no-dev", "--no-hashes", "--no-emit-project", "-q",
        "-o", where / "requirements.txt", cwd=ROOT)
    run(sys.executable, "-m", "venv", "--without-pip", where / "venv", cwd=where)
    python = where / "venv" / "bin" / "python"
    run(uv, "pip", "install", "-q", "--python", python, "-r", where / "requirements.txt", wheel,
        cwd=where)
    return where / "venv" / "bin" / "tasks"


@pytest.fixture
def dev_server(installed: Path, tmp_path: Path) -> Iterator[str]:
    """That venv's `tasks dev`, started in an empty folder, on a free port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TASKS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(TASKS_HTTP_HOST="127.0.0.1", TASKS_HTTP_PORT=str(port), TASKS_WORKER_HTTP_PORT="0")
    with (tmp_path / "dev.log").open("wb") as log:
        proc = subprocess.Popen([str(installed), "dev"], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            def up() -> bool:
                assert proc.poll() is None, (tmp_path / "dev.log").read_text()
                try:
                    return httpx.get(base + "/health/live", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, 60, "the installed `tasks dev` to answer")
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_the_installed_wheel_serves_the_dashboard_and_its_files(
    installed: Path, dev_server: str
) -> None:
    site = installed.parent.parent
    found = subprocess.run([str(site / "bin" / "python"), "-c",
                            "import entrypoints.http.ui as m; print(m.DIRECTORY)"],
                           capture_output=True, text=True, check=True, cwd=site).stdout.strip()
    assert Path(found).is_relative_to(site), f"served from {found}, not from the wheel"
    with httpx.Client(base_url=dev_server, timeout=10) as http:
        page = http.get("/ui")
        assert page.status_code == 200
        assert page.text == (UI / "index.html").read_text()
        for path in FILES:
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert len(answer.content) > 1000, path
        assert http.get("/ui/app.js").text == (UI / "app.js").read_text()
