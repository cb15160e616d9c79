"""The production topology from local processes, for machines without Docker: migrations
once, several API processes, a Celery worker, Celery beat and Flower, against a PostgreSQL + PostGIS
database and a Redis the caller provides (`scripts/services-up` starts both on a test
machine). The same processes as docker-compose.yml, so fault tests and benchmarks can kill,
stop and restart them one at a time; a process that ends is started again, as compose's
restart policy does, and the logs folder's `pids.json` says which process is which."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Gossip, mingle and heartbeats between workers add nothing here and their shutdown broke the
# worker's reconnection after a Redis outage; docker-compose.yml runs the worker the same way.
WORKER_FLAGS = ("--without-gossip", "--without-mingle", "--without-heartbeat")


@dataclass
class Topology:
    database_url: str
    broker_url: str
    logs: Path
    apis: int = 2
    env: dict[str, str] = field(default_factory=dict)  # more MOBILIZE_* settings
    ports: list[int] = field(default_factory=list)
    worker_metrics_port: int = 0
    flower_port: int = 0
    flower_auth: str = field(default_factory=lambda: f"ops:{secrets.token_urlsafe(12)}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Started again when they exit, as compose's `restart: unless-stopped` does (a worker
    # ends itself when its consumer dies: mobilize.worker.watch); None: every process.
    supervised: tuple[str, ...] | None = None
    restarts: dict[str, int] = field(default_factory=dict)
    _held: set[str] = field(default_factory=set)  # killed on purpose: not started again
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def _env(self, name: str | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "MOBILIZE_DATABASE_URL": self.database_url,
            "MOBILIZE_BROKER_URL": self.broker_url,
            "MOBILIZE_LOG_FORMAT": "json",
            **self.env,
        }
        if name == "worker":  # its pool processes add up their metrics here
            metrics = self.logs / "metrics-worker"
            shutil.rmtree(metrics, ignore_errors=True)  # a dying pool may still write there
            metrics.mkdir(parents=True, exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
            env["MOBILIZE_WORKER_METRICS_PORT"] = str(self.worker_metrics_port)
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                args,
                env=self._env(name),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        (self.logs / "pids.json").write_text(
            json.dumps({n: p.pid for n, p in sorted(self.procs.items())}) + "\n"
        )
        return proc

    def _command(self, name: str) -> list[str]:
        if name.startswith("api-"):
            port = self.ports[int(name.removeprefix("api-"))]
            return [sys.executable, "-m", "mobilize.cli", "serve", "--port", str(port)]
        if name == "worker":
            return [
                sys.executable, "-m", "celery", "-A", "mobilize.worker.app", "worker",
                "--loglevel", "INFO", "--concurrency", "2",
                "--hostname", f"worker-{os.getpid()}@%h", *WORKER_FLAGS,
            ]  # fmt: skip
        if name == "flower":
            return [
                sys.executable, "-m", "celery", "-A", "mobilize.worker.app", "flower",
                "--address=127.0.0.1", f"--port={self.flower_port}",
                f"--basic-auth={self.flower_auth}",
            ]  # fmt: skip
        if name == "beat":
            return [
                sys.executable, "-m", "celery", "-A", "mobilize.worker.app", "beat",
                "--loglevel", "INFO", "--schedule", str(self.logs / "celerybeat-schedule"),
            ]  # fmt: skip
        raise KeyError(name)

    @property
    def api_names(self) -> list[str]:
        return [f"api-{i}" for i in range(self.apis)]

    def url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def start(self, timeout_s: float = 60.0) -> Topology:
        """Migrate, then start every process; return once every API answers /healthz."""
        migrate = subprocess.run(
            [sys.executable, "-m", "mobilize.cli", "db", "upgrade"],
            env=self._env(),
            capture_output=True,
            timeout=timeout_s,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migration failed: {migrate.stderr.decode()[-2000:]}")
        if not self.ports:
            self.ports = [free_port() for _ in range(self.apis)]
        if len(self.ports) != self.apis:
            raise ValueError(f"{self.apis} API processes need {self.apis} ports: {self.ports}")
        self.worker_metrics_port = self.worker_metrics_port or free_port()
        self.flower_port = self.flower_port or free_port()
        for name in [*self.api_names, "worker", "beat", "flower"]:
            self._spawn(name, self._command(name))
        threading.Thread(target=self._supervise, name="topology-supervisor", daemon=True).start()
        for i in range(self.apis):
            self.wait_healthy(i, timeout_s)
        return self

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                for name in self.supervised or list(self.procs):
                    proc = self.procs.get(name)
                    if proc is None or proc.poll() is None or name in self._held:
                        continue
                    try:
                        self._spawn(name, self._command(name))
                    except Exception as exc:  # tried again at the next round, never given up
                        print(f"topology: {name} could not be started again: {exc}", flush=True)
                        continue
                    self.restarts[name] = self.restarts.get(name, 0) + 1

    def wait_healthy(self, i: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(i)}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            proc = self.procs[f"api-{i}"]
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"api-{i} did not come up: {self.diagnose(f'api-{i}')}")

    def diagnose(self, name: str) -> str:
        """Why a process is not answering: its exit code, or (alive) its threads' stacks, which
        `mobilize` writes to its log on SIGUSR1; then the end of its log."""
        proc = self.procs[name]
        if proc.poll() is not None:
            state = f"exited with code {proc.returncode}"
        else:
            state = f"still running (pid {proc.pid}); its stacks are in the log below"
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(1.0)
        return f"{state}\n{self.log(name)[-6000:]}"

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> None:
        """kill -9 a process (and its children): a crash, not a shutdown. It stays down
        until `restart`, supervised or not."""
        with self._lock:
            self._held.add(name)
            proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def restart(self, name: str, timeout_s: float = 60.0) -> None:
        self.kill(name)
        with self._lock:
            self._spawn(name, self._command(name))
            self._held.discard(name)
        if name.startswith("api-"):
            self.wait_healthy(int(name.removeprefix("api-")), timeout_s)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._held.update(self.procs)
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill(name)

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
