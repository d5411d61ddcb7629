"""The schema check: the database must have exactly the migrations this code ships."""

from __future__ import annotations

from adapters.postgres.schema import NOT_MIGRATED, code_versions, verdict

KNOWN = ["0001_tasks", "0002_leases"]


def test_a_database_with_every_migration_of_the_code_is_fine() -> None:
    assert verdict({"0001_tasks", "0002_leases"}, KNOWN) is None


def test_an_empty_ledger_is_not_migrated() -> None:
    assert verdict(set(), KNOWN) == NOT_MIGRATED == "not migrated (run tasks migrate)"


def test_a_schema_older_than_the_code_says_run_tasks_migrate_and_how_far_behind() -> None:
    said = verdict({"0001_tasks"}, KNOWN)
    assert said is not None
    assert said.startswith(NOT_MIGRATED)
    assert "0001_tasks" in said
    assert "0002_leases" in said


def test_a_schema_newer_than_the_code_says_upgrade_the_service() -> None:
    said = verdict({"0001_tasks", "0002_leases", "0003_future"}, KNOWN)
    assert said is not None
    assert said.startswith("database schema is newer than this code (")
    assert said.endswith("): upgrade the service")
    assert "0003_future" in said
    assert "0002_leases" in said


def test_the_code_knows_its_migrations_from_sql_migrations() -> None:
    versions = code_versions()
    assert versions
    assert list(versions) == sorted(versions)
    assert versions[0].startswith("0001_")
