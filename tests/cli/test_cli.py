"""The `mobilize` command as a user runs it."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.db import make_engine
from mobilize.models import District, Household
from tests.bundles import read_rows, write, write_rows

# The demo on PostgreSQL keeps its tokens in the working directory: each test process has its
# own, so no file lands in the checkout and parallel runs do not share one.
_WORKING_DIRECTORY = Path(tempfile.mkdtemp(prefix="mobilize-cli-"))


def mobilize(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOBILIZE_DATABASE_URL": database_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mobilize.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=_WORKING_DIRECTORY,
        timeout=300,
    )


def _households(url: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        n = session.execute(select(func.count()).select_from(Household)).scalar_one() or 0
    engine.dispose()
    return n


def test_generate_upgrade_import_round_trip(empty_database_url: str, tmp_path: Path) -> None:
    generated = mobilize(
        "generate",
        "--preset",
        "tiny",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "b"),
        "--bundle-crs",
        "gcj02",
        database_url=empty_database_url,
    )
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["micro_grids"] == 20

    refused = mobilize("import", str(tmp_path / "b"), database_url=empty_database_url)
    assert refused.returncode == 1
    assert "mobilize db upgrade" in refused.stderr

    assert mobilize("db", "upgrade", database_url=empty_database_url).returncode == 0
    imported = mobilize("import", str(tmp_path / "b"), "--json", database_url=empty_database_url)
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert summary["households"] == _households(empty_database_url) == 1000


def test_generate_names_the_district_it_is_asked_for(tmp_path: Path) -> None:
    made = mobilize(
        "generate", "--preset", "tiny", "--code", "510107", "--name", "武侯区", "--out",
        str(tmp_path / "b"), database_url=f"sqlite:///{tmp_path / 'unused.db'}",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text("utf-8"))
    assert meta["district"] == {"code": "510107", "name": "武侯区"}
    refused = mobilize(
        "generate", "--code", " ", "--out", str(tmp_path / "c"),
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
    )  # fmt: skip
    assert refused.returncode == 2 and "--code" in refused.stderr


def test_an_edited_bundle_is_shown_by_a_dry_run_then_applied_as_an_update(
    empty_database_url: str, tiny_bundle: Bundle, tmp_path: Path
) -> None:
    assert mobilize("db", "upgrade", database_url=empty_database_url).returncode == 0
    path = write(tiny_bundle, tmp_path / "b")
    assert mobilize("import", str(path), database_url=empty_database_url).returncode == 0
    rows = read_rows(path, "households.csv")
    gone, changed = rows.pop(0)["code"], rows[0]["code"]
    rows[0]["size"] = str(int(rows[0]["size"]) + 1)
    write_rows(path, "households.csv", rows)

    dry = mobilize("import", "--dry-run", "--json", str(path), database_url=empty_database_url)
    assert dry.returncode == 0, dry.stderr
    households = json.loads(dry.stdout)["difference"]["households"]
    assert households == {"added": [], "changed": [changed], "retired": [gone]}
    assert _households(empty_database_url) == len(tiny_bundle.households)  # nothing written

    shown = mobilize("import", "--dry-run", str(path), database_url=empty_database_url)
    assert shown.returncode == 0 and "Nothing was written" in shown.stdout

    applied = mobilize("import", "--json", str(path), database_url=empty_database_url)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["difference"]["households"]["retired"] == [gone]
    assert _households(empty_database_url) == len(tiny_bundle.households)  # retired, kept


def test_invalid_bundle_exits_2_with_every_problem_and_writes_nothing(
    empty_database_url: str, tiny_bundle: Bundle, tmp_path: Path
) -> None:
    assert mobilize("db", "upgrade", database_url=empty_database_url).returncode == 0
    path = write(tiny_bundle, tmp_path / "b")
    rows = read_rows(path, "households.csv")
    rows[0]["size"] = "-1"
    rows[1]["tags"] = "elderly;ghost"
    write_rows(path, "households.csv", rows)
    result = mobilize("import", str(path), database_url=empty_database_url)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "households.csv: line 2: size: error: -1 is negative" in result.stderr
    assert "households.csv: line 3: tags: error: unknown tag 'ghost'" in result.stderr
    assert "2 error(s), 0 warning(s): nothing was imported." in result.stderr
    assert _households(empty_database_url) == 0


def _me(database_url: str, token: str) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from mobilize.api.app import create_app
    from mobilize.settings import Settings

    with TestClient(create_app(Settings(database_url=database_url))) as client:
        response = client.post(
            "/graphql",
            json={"query": "{ me { roles { role scopeCode } } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return response.json()["data"]["me"]


def _printed_tokens(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    return {
        lines[i].split()[0]: lines[i + 1].strip()
        for i in range(len(lines) - 1)
        if lines[i + 1].strip().startswith("mbz_")
    }


def _graphql_blocks(markdown: str) -> list[tuple[list[str], str]]:
    """Each GraphQL example, with the roles a `<!-- run by the tests as: ... -->` line above
    it names (none: only checked against the schema)."""
    found = re.findall(
        r"(?:<!-- run by the tests as: ([a-z_ ]+) -->\n)?```graphql\n(.*?)```", markdown, re.S
    )
    return [(roles.split(), text) for roles, text in found]


def test_every_query_the_readme_and_the_demo_show_runs_for_every_role(
    empty_database_url: str,
) -> None:
    """What a newcomer is told to try works as each demo user it is meant for; every other
    example (mutations, subscriptions) is valid against the schema and within the cost limit."""
    from fastapi.testclient import TestClient

    from graphql import OperationDefinitionNode, parse, validate
    from mobilize.api.app import create_app
    from mobilize.api.limits import estimate_cost
    from mobilize.api.schema import build_schema
    from mobilize.settings import Settings

    demo = mobilize("demo", "--preset", "tiny", "--no-serve", database_url=empty_database_url)
    assert demo.returncode == 0, demo.stderr
    tokens = _printed_tokens(demo.stdout)
    tried = demo.stdout.split("Try:\n", 1)[1].split("\n\n", 1)[0]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    area_roles = [r for r in tokens if r != "responder"]
    examples = [(area_roles, tried), *_graphql_blocks(readme)]
    assert len(examples) >= 7
    limit = Settings().max_query_cost
    graphql_schema = build_schema()._schema
    to_run = []
    for roles, block in examples:
        for text in re.split(r"\n(?=mutation|subscription|query|\{)", block.strip()):
            document = parse(text)
            assert validate(graphql_schema, document) == [], text
            (operation,) = document.definitions
            assert isinstance(operation, OperationDefinitionNode), text
            assert estimate_cost(graphql_schema, operation, {}, {}) <= limit, text
            to_run += [(role, text) for role in roles]
    assert {role for role, _ in to_run} == set(tokens)
    with TestClient(create_app(Settings(database_url=empty_database_url))) as client:
        for role, query in to_run:
            answer = client.post(
                "/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {tokens[role]}"},
            ).json()
            assert answer.get("errors") is None, (role, query, answer["errors"])
            assert answer["data"], (role, query)


def test_demo_creates_then_reuses_its_database(empty_database_url: str) -> None:
    first = mobilize("demo", "--preset", "tiny", "--no-serve", database_url=empty_database_url)
    assert first.returncode == 0, first.stderr
    assert "Imported demo district TINY" in first.stdout
    assert "http://127.0.0.1:8000/graphql" in first.stdout
    assert "http://127.0.0.1:8000/ui/command" in first.stdout
    tokens = _printed_tokens(first.stdout)
    assert set(tokens) == {
        "district_commander",
        "street_commander",
        "community_secretary",
        "responder",
        "reviewer",
        "admin",
    }
    for role, token in tokens.items():
        assert _me(empty_database_url, token)["roles"][0]["role"] == role
    second = mobilize("demo", "--preset", "tiny", "--no-serve", database_url=empty_database_url)
    assert second.returncode == 0, second.stderr
    assert "Reusing demo district TINY" in second.stdout
    # The tokens printed last time still work and are printed again: no six more each start.
    assert _printed_tokens(second.stdout) == tokens
    engine = make_engine(empty_database_url)
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(District)).scalar_one() == 1
    engine.dispose()


def test_user_add_prints_a_working_token_once(empty_database_url: str, tmp_path: Path) -> None:
    assert (
        mobilize(
            "generate", "--out", str(tmp_path / "b"), database_url=empty_database_url
        ).returncode
        == 0
    )
    assert mobilize("db", "upgrade", database_url=empty_database_url).returncode == 0
    assert mobilize("import", str(tmp_path / "b"), database_url=empty_database_url).returncode == 0
    added = mobilize(
        "user",
        "add",
        "--role",
        "street_commander",
        "--scope",
        "S01",
        "--name",
        "张三",
        database_url=empty_database_url,
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("mbz_") and "shown only once" in added.stderr
    assert _me(empty_database_url, token) == {
        "roles": [{"role": "street_commander", "scopeCode": "S01"}]
    }
    wrong = mobilize(
        "user",
        "add",
        "--role",
        "street_commander",
        "--scope",
        "NOPE",
        database_url=empty_database_url,
    )
    assert wrong.returncode == 2 and "no street with code 'NOPE'" in wrong.stderr
    listed = mobilize("user", "list", database_url=empty_database_url)
    assert "street_commander:S01" in listed.stdout
    user_id = next(line.split()[1] for line in listed.stdout.splitlines() if "张三" in line)
    granted = mobilize(
        "user",
        "grant",
        user_id,
        "--role",
        "community_secretary",
        "--scope",
        "S01C002",
        database_url=empty_database_url,
    )
    assert granted.returncode == 0, granted.stderr
    assert _me(empty_database_url, token) == {
        "roles": [
            {"role": "street_commander", "scopeCode": "S01"},
            {"role": "community_secretary", "scopeCode": "S01C002"},
        ]
    }


def test_schema_file_matches_the_code() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mobilize.cli", "schema", "--check"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, "graphql/schema.graphql is stale: run `mobilize schema`"


def test_graphql_folder_holds_no_python() -> None:
    folder = Path(__file__).parents[2] / "graphql"
    assert not list(folder.rglob("*.py"))


def test_help_texts_are_whole_sentences_without_type_placeholders() -> None:
    from typer.testing import CliRunner

    from mobilize.cli.main import app

    runner = CliRunner(env={"COLUMNS": "100"})
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0, top.output
    commands = re.findall(r"^  ([a-z-]+) {2,}(.+)$", top.output.split("Commands:")[1], re.M)
    assert {name for name, _ in commands} >= {"demo", "drill", "import", "activate", "user"}
    for name, summary in commands:
        assert not summary.endswith("..."), (name, summary)  # cut mid-sentence
    for args in [[name] for name, _ in commands] + [["user", "add"], ["db", "upgrade"]]:
        shown = runner.invoke(app, [*args, "--help"])
        assert shown.exit_code == 0, (args, shown.output)
        for placeholder in ("<bool>", "<list["):
            assert placeholder not in shown.output, (args, shown.output)
