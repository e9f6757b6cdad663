"""Every example in the README and docs/ answers what it shows, run against `loyalty-gateway serve --demo`.

An example is a ```graphql block (sent as the query of a POST to /graphql with the demo's API key) or a
```sh block that calls curl (run by bash, with $KEY set to that key, from a directory where
.venv/bin/loyalty-gateway is this environment's); the ```json block right after it is its answer. A runnable
query or curl line without an answer next to it fails the test: every example shows what it gives.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest

from tests.demo_server import DemoServer, demo_server

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_URL = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Example:
    where: str  # file:line
    language: str  # graphql or sh
    text: str
    answer: str | None  # the json block after it

    def __str__(self) -> str:
        return self.where


def _blocks(path: Path) -> list[tuple[int, str, str]]:
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]


def _is_runnable_query(text: str) -> bool:
    """An executable operation with no variables: something a reader would paste and run."""
    try:
        document = graphql.parse(text)
    except graphql.GraphQLError:
        return False  # a fragment of SDL, say, shown to be read
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    return bool(operations) and not any(operation.variable_definitions for operation in operations)


def collect_examples(path: Path) -> list[Example]:
    blocks = _blocks(path)
    found = []
    for index, (line, language, text) in enumerate(blocks):
        is_example = (language == "graphql" and _is_runnable_query(text)) or (
            language == "sh" and re.search(r"^\s*curl\b", text, re.MULTILINE)
        )
        if not is_example:
            continue
        after = blocks[index + 1] if index + 1 < len(blocks) else None
        answer = after[2] if after and after[1] == "json" else None
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        found.append(Example(f"{where}:{line}", language, text, answer))
    return found


EXAMPLES = [example for path in DOCUMENTS for example in collect_examples(path)]


def _json_values(text: str) -> list[Any]:
    """The JSON values in a text, one after another (a curl block may print several)."""
    decoder = json.JSONDecoder()
    values, position = [], 0
    while (position := _skip_space(text, position)) < len(text):
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """`serve --demo` as the README starts it, plus the secret docs/end-user-tokens.md starts it with."""
    directory = tmp_path_factory.mktemp("docs")
    (directory / "secret.txt").write_text(secrets.token_urlsafe(48))
    with demo_server(directory, "--jwt-secret-file", "secret.txt") as server:
        yield server


def test_the_readme_and_the_reference_have_examples_to_run() -> None:
    where = {example.where.split(":")[0] for example in EXAMPLES}
    assert {"README.md", "docs/reference-api.md", "docs/end-user-tokens.md"} <= where
    assert len(EXAMPLES) >= 10


def test_an_example_without_an_answer_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```graphql\n{ pointsBalance { totalPoints } }\n```\n\nSome text.\n")
    assert [example.answer for example in collect_examples(page)] == [None]


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_answers_what_the_docs_show(demo: DemoServer, example: Example) -> None:
    assert example.answer is not None, f"{example.where}: the example shows no answer (a ```json block after it)"
    if example.language == "graphql":
        response = httpx.post(
            f"{demo.url}/graphql", json={"query": example.text}, headers={"authorization": f"Bearer {demo.key}"}
        )
        shown = [response.json()]
    else:
        script = example.text.replace(DOCUMENTED_URL, demo.url)
        env = {**os.environ, "KEY": demo.key}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=demo.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        shown = _json_values(done.stdout)
    assert shown == _json_values(example.answer), example.where
