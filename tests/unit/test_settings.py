"""Settings come from the environment and ./.env; a bad value is one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.settings import PREFIX, Settings, SettingsError, load_settings, read_dotenv

NO_DOTENV = None


def test_the_defaults_are_those_of_the_design() -> None:
    s = load_settings(environ={}, dotenv=NO_DOTENV)
    assert s.database_url == "postgresql://postgres:postgres@localhost:5432/tasks"
    assert s.rabbitmq_url == "amqp://guest:guest@localhost:5672/"
    assert (s.http_host, s.http_port) == ("0.0.0.0", 8000)
    assert (s.processing_min_seconds, s.processing_max_seconds) == (5, 10)
    assert s.failure_rate == 0.2
    assert s.worker_concurrency == 100
    assert s.lease_seconds == 30
    assert s.lease_renew_seconds == 10
    assert s.redispatch_seconds == 60
    assert s.max_body_bytes == 1_048_576
    assert s.random_seed is None
    assert (s.log_format, s.log_level) == ("console", "INFO")
    assert s == Settings()


def test_every_setting_is_read_from_its_variable() -> None:
    s = load_settings(
        environ={
            "TASKS_DATABASE_URL": "postgresql://u:p@db:5433/x",
            "TASKS_RABBITMQ_URL": "amqp://u:p@mq:5673/v",
            "TASKS_HTTP_HOST": "127.0.0.1",
            "TASKS_HTTP_PORT": "9000",
            "TASKS_PROCESSING_MIN_SECONDS": "0.5",
            "TASKS_PROCESSING_MAX_SECONDS": "1.5",
            "TASKS_FAILURE_RATE": "1",
            "TASKS_WORKER_CONCURRENCY": "7",
            "TASKS_LEASE_SECONDS": "12",
            "TASKS_MAX_BODY_BYTES": "4096",
            "TASKS_RANDOM_SEED": "42",
            "TASKS_LOG_FORMAT": "json",
            "TASKS_LOG_LEVEL": "DEBUG",
            "TASKS_INTAKE_ENABLED": "false",
            "TASKS_UNKNOWN_THING": "ignored",
        },
        dotenv=NO_DOTENV,
    )
    assert (s.database_url, s.rabbitmq_url) == ("postgresql://u:p@db:5433/x", "amqp://u:p@mq:5673/v")
    assert (s.http_host, s.http_port) == ("127.0.0.1", 9000)
    assert (s.processing_min_seconds, s.processing_max_seconds, s.failure_rate) == (0.5, 1.5, 1.0)
    assert (s.worker_concurrency, s.lease_seconds, s.max_body_bytes) == (7, 12.0, 4096)
    assert (s.random_seed, s.log_format, s.log_level) == (42, "json", "DEBUG")
    assert s.intake_enabled is False


def test_an_empty_variable_means_the_default() -> None:
    assert load_settings(environ={"TASKS_HTTP_PORT": ""}, dotenv=NO_DOTENV).http_port == 8000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TASKS_HTTP_PORT", "http"),
        ("TASKS_HTTP_PORT", "0"),
        ("TASKS_HTTP_PORT", "65536"),
        ("TASKS_PROCESSING_MIN_SECONDS", "-1"),
        ("TASKS_PROCESSING_MAX_SECONDS", "soon"),
        ("TASKS_PROCESSING_MAX_SECONDS", "nan"),
        ("TASKS_FAILURE_RATE", "1.5"),
        ("TASKS_FAILURE_RATE", "-0.1"),
        ("TASKS_FAILURE_RATE", "nan"),
        ("TASKS_WORKER_CONCURRENCY", "0"),
        ("TASKS_WORKER_CONCURRENCY", "2.5"),
        ("TASKS_LEASE_SECONDS", "0"),
        ("TASKS_MAX_BODY_BYTES", "10"),
        ("TASKS_MAX_BODY_BYTES", "1MB"),
        ("TASKS_RANDOM_SEED", "lucky"),
        ("TASKS_LOG_FORMAT", "xml"),
        ("TASKS_LOG_LEVEL", "LOUD"),
        ("TASKS_INTAKE_ENABLED", "maybe"),
        ("TASKS_HTTP_PORT", "80\n80"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={variable: value}, dotenv=NO_DOTENV)
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_min_processing_seconds_above_max_is_rejected_naming_both() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            environ={"TASKS_PROCESSING_MIN_SECONDS": "11", "TASKS_PROCESSING_MAX_SECONDS": "10"},
            dotenv=NO_DOTENV,
        )
    message = str(caught.value)
    assert "TASKS_PROCESSING_MIN_SECONDS" in message
    assert "TASKS_PROCESSING_MAX_SECONDS" in message
    assert "\n" not in message


def test_min_equal_to_max_is_allowed() -> None:
    env = {"TASKS_PROCESSING_MIN_SECONDS": "0", "TASKS_PROCESSING_MAX_SECONDS": "0"}
    s = load_settings(environ=env, dotenv=NO_DOTENV)
    assert (s.processing_min_seconds, s.processing_max_seconds) == (0, 0)


def test_a_lease_renewal_not_shorter_than_the_lease_is_rejected() -> None:
    env = {"TASKS_LEASE_SECONDS": "10", "TASKS_LEASE_RENEW_SECONDS": "10"}
    with pytest.raises(SettingsError, match="TASKS_LEASE_RENEW_SECONDS") as caught:
        load_settings(environ=env, dotenv=NO_DOTENV)
    assert "TASKS_LEASE_SECONDS" in str(caught.value)
    assert "unset" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("lease", ["5", "0.3", "30", "3600"])
def test_setting_only_the_lease_always_works_renewing_every_third_of_it(lease: str) -> None:
    s = load_settings(environ={"TASKS_LEASE_SECONDS": lease}, dotenv=NO_DOTENV)
    assert s.lease_renew_seconds == pytest.approx(float(lease) / 3)
    assert Settings(lease_seconds=float(lease)).lease_renew_seconds == s.lease_renew_seconds


def test_a_renewal_left_empty_or_zero_renews_every_third_of_the_lease() -> None:
    for renew in ("", "0"):
        env = {"TASKS_LEASE_SECONDS": "5", "TASKS_LEASE_RENEW_SECONDS": renew}
        assert load_settings(environ=env, dotenv=NO_DOTENV).lease_renew_seconds == (
            pytest.approx(5 / 3))


@pytest.mark.parametrize("redispatch", ["0", "0.5", "-1", "90000"])
def test_a_redispatch_time_outside_one_second_to_a_day_is_refused_in_one_line(
    redispatch: str,
) -> None:
    with pytest.raises(SettingsError,
                       match=r"^invalid setting TASKS_REDISPATCH_SECONDS=") as caught:
        load_settings(environ={"TASKS_REDISPATCH_SECONDS": redispatch}, dotenv=NO_DOTENV)
    assert "\n" not in str(caught.value)


def test_a_redispatch_time_needs_no_relation_to_the_lease() -> None:
    """The sweep looks at tasks in `new`, leases at tasks in progress: any pair works."""
    env = {"TASKS_LEASE_SECONDS": "600", "TASKS_REDISPATCH_SECONDS": "1"}
    s = load_settings(environ=env, dotenv=NO_DOTENV)
    assert (s.lease_seconds, s.lease_renew_seconds, s.redispatch_seconds) == (600, 200, 1)


def test_an_explicit_renewal_shorter_than_the_lease_is_kept() -> None:
    env = {"TASKS_LEASE_SECONDS": "5", "TASKS_LEASE_RENEW_SECONDS": "4"}
    assert load_settings(environ=env, dotenv=NO_DOTENV).lease_renew_seconds == 4


@pytest.mark.parametrize(
    ("value", "level"),
    [("debug", "DEBUG"), ("Info", "INFO"), ("WARNING", "WARNING"), (" error ", "ERROR")],
)
def test_a_log_level_may_be_written_in_any_case(value: str, level: str) -> None:
    assert load_settings(environ={"TASKS_LOG_LEVEL": value}, dotenv=NO_DOTENV).log_level == level


def test_a_log_format_may_be_written_in_any_case() -> None:
    s = load_settings(environ={"TASKS_LOG_FORMAT": "JSON"}, dotenv=NO_DOTENV)
    assert s.log_format == "json"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(v, True) for v in ("true", "True", "YES", "yes", "1", "on", "ON")]
    + [(v, False) for v in ("false", "FALSE", "no", "No", "0", "off", "Off")],
)
def test_a_boolean_may_be_true_false_yes_no_1_0_on_off_in_any_case(
    value: str, expected: bool
) -> None:
    s = load_settings(environ={"TASKS_INTAKE_ENABLED": value}, dotenv=NO_DOTENV)
    assert s.intake_enabled is expected


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("TASKS_LOG_LEVEL", "LOUD", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
        ("TASKS_LOG_FORMAT", "xml", ["json", "console"]),
        ("TASKS_INTAKE_ENABLED", "maybe", ["true", "false", "yes", "no", "1", "0", "on", "off"]),
    ],
)
def test_the_error_for_a_choice_lists_every_allowed_value(
    variable: str, value: str, allowed: list[str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={variable: value}, dotenv=NO_DOTENV)
    message = str(caught.value)
    assert message.startswith(f"invalid setting {variable}=")
    for choice in allowed:
        assert choice in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TASKS_DATABASE_URL", "mysql://root:s3cret@127.0.0.1:3306/tasks", "postgresql://"),
        ("TASKS_DATABASE_URL", "postgresql+psycopg://u:s3cret@h/db", "postgresql://"),
        ("TASKS_DATABASE_URL", "localhost", "postgresql://"),
        ("TASKS_RABBITMQ_URL", "http://guest:s3cret@127.0.0.1:15672/", "amqp://"),
    ],
)
def test_a_url_of_the_wrong_kind_is_refused_without_showing_its_password(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={variable: value}, dotenv=NO_DOTENV)
    message = str(caught.value)
    assert variable in message
    assert expected in message
    assert "s3cret" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value",
    ["postgresql://u:p@h:5432/db", "postgres://u@h/db", "POSTGRESQL://h/db",
     "host=127.0.0.1 dbname=tasks user=postgres"],
)
def test_postgres_urls_and_libpq_key_value_strings_are_accepted(value: str) -> None:
    s = load_settings(environ={"TASKS_DATABASE_URL": value}, dotenv=NO_DOTENV)
    assert s.database_url == value


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("TASKS_HTTP_PORT", "http", "must be a whole number"),
        ("TASKS_FAILURE_RATE", "often", "must be a number"),
        ("TASKS_HTTP_PORT", "0", "must be >= 1"),
    ],
)
def test_a_number_error_says_what_kind_of_number(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        load_settings(environ={variable: value}, dotenv=NO_DOTENV)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TASKS_LEASE_SECONDS", "inf"),
        ("TASKS_LEASE_SECONDS", "1e15"),
        ("TASKS_PROCESSING_MAX_SECONDS", "inf"),
        ("TASKS_RELAY_INTERVAL_SECONDS", "inf"),
    ],
)
def test_an_infinite_or_absurd_number_of_seconds_is_rejected(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={variable: value}, dotenv=NO_DOTENV)


def test_the_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\n"
        "\n"
        "TASKS_HTTP_PORT=9001\n"
        "export TASKS_LOG_LEVEL=WARNING\n"
        'TASKS_DATABASE_URL="postgresql://from-dotenv/db"\n'
        "TASKS_FAILURE_RATE='0.5'\n"
        "not a setting line\n"
    )
    s = load_settings(environ={"TASKS_HTTP_PORT": "9002"}, dotenv=dotenv)
    assert s.http_port == 9002
    assert s.log_level == "WARNING"
    assert s.database_url == "postgresql://from-dotenv/db"
    assert s.failure_rate == 0.5


def test_a_bad_value_in_the_dotenv_file_names_the_variable(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TASKS_WORKER_CONCURRENCY=lots\n")
    with pytest.raises(SettingsError, match="TASKS_WORKER_CONCURRENCY"):
        load_settings(environ={}, dotenv=dotenv)


def test_a_missing_dotenv_file_is_fine(tmp_path: Path) -> None:
    assert load_settings(environ={}, dotenv=tmp_path / "absent.env") == Settings()


def test_the_env_example_lists_every_setting_with_its_default() -> None:
    example = Path(__file__).resolve().parents[2] / ".env-example"
    listed = read_dotenv(example)
    assert set(listed) == {PREFIX + name.upper() for name in Settings.__struct_fields__}
    assert load_settings(environ={}, dotenv=example) == Settings()
