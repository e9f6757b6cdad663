"""docs/scaling.md quotes bench results: each quoted figure must be in the file it names, so the doc cannot drift."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"


def _table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table under a heading, without its header and rule."""
    lines = DOC.read_text().splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def _figure_in(figure: str, text: str) -> bool:
    return re.search(rf"(?<![\d.,]){re.escape(figure)}(?![\d])", text) is not None


def test_every_measured_input_is_in_the_file_it_names():
    rows = _table_after("## Measured inputs")
    assert len(rows) >= 10
    for name, value, file, _command in rows:
        path = ROOT / file
        assert path.is_file(), f"{name}: {file} does not exist"
        text = path.read_text()
        for figure in value.split(" / "):
            assert _figure_in(figure, text), f"{name}: {figure} is not in {file}"


def test_every_results_file_named_exists():
    names = set(re.findall(r"bench/results/[\w.-]+\.md", DOC.read_text()))
    assert names
    for name in names:
        assert (ROOT / name).is_file(), name


def test_the_working_set_adds_up():
    rows = {row[0]: row for row in _table_after("## The lookups' working set (estimated from the sizes above)")}
    parts = ("customer_identifiers_pkey", "balances_pkey", "balances heap", "customers_pkey")
    total = sum(int(rows[part][1].replace(",", "")) for part in parts)
    assert f"{total:,}" == rows["**lookups' working set**"][1].strip("*")


def test_nothing_outside_the_repository_and_the_readme_links_it():
    text = DOC.read_text()
    assert "../" not in text
    assert "http://" not in text and "https://" not in text
    assert "(docs/scaling.md)" in (ROOT / "README.md").read_text()
