"""The replica settings: flags, environment variables, and their way to worker processes."""

from __future__ import annotations

from gateway.cli import build_parser, settings_from
from gateway.config import Settings, settings_from_environment, settings_from_json, settings_to_json


def test_replica_urls_and_lag_come_from_the_environment_comma_separated() -> None:
    settings = settings_from_environment(
        {
            "LOYALTY_GATEWAY_REPLICA_URLS": "postgresql://r1/db, postgresql://a:5432,b:5432/db,postgres://r3/db",
            "LOYALTY_GATEWAY_MAX_REPLICA_LAG": "2.5",
        }
    )
    # A URL naming several hosts keeps its commas: only a comma before a new URL separates.
    assert settings.replica_urls == ("postgresql://r1/db", "postgresql://a:5432,b:5432/db", "postgres://r3/db")
    assert settings.max_replica_lag == 2.5


def test_without_replicas_the_primary_answers_everything_and_the_lag_limit_is_five_seconds() -> None:
    settings = settings_from_environment({})
    assert (settings.replica_urls, settings.max_replica_lag) == ((), 5.0)


def test_replica_url_is_repeatable_and_wins_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LOYALTY_GATEWAY_REPLICA_URLS", "postgresql://from-env/db")
    args = build_parser().parse_args(
        [
            "serve",
            "--replica-url",
            "postgresql://r1/db",
            "--replica-url",
            "postgresql://r2/db",
            "--max-replica-lag",
            "3",
        ]
    )
    settings = settings_from(args)
    assert (settings.replica_urls, settings.max_replica_lag) == (("postgresql://r1/db", "postgresql://r2/db"), 3.0)
    assert settings_from(build_parser().parse_args(["serve"])).replica_urls == ("postgresql://from-env/db",)


def test_replica_urls_reach_worker_processes_and_stay_out_of_reprs() -> None:
    settings = Settings(replica_urls=("postgresql://user:pa55word@r1/db",), max_replica_lag=1.5)
    assert settings_from_json(settings_to_json(settings)) == settings
    assert "pa55word" not in repr(settings)
