"""Settings from the environment (and ./.env); a bad value stops start-up with one clear line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec

from adapters.diagnosis import scrub
from entrypoints.keys import ApiKey, parse_api_keys

DAY = 86_400.0
Seconds = Annotated[float, msgspec.Meta(ge=0, le=DAY)]
Interval = Annotated[float, msgspec.Meta(gt=0, le=DAY)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "postgresql://postgres:postgres@localhost:5432/tasks"
    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/"
    http_host: str = "0.0.0.0"
    http_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    http_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    worker_http_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8001
    processing_min_seconds: Seconds = 5.0
    processing_max_seconds: Seconds = 10.0
    failure_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    worker_concurrency: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 100
    lease_seconds: Interval = 30.0
    #: unset (or 0): a third of lease_seconds, so that setting only the lease always works
    lease_renew_seconds: Seconds = 0.0
    recovery_interval_seconds: Interval = 5.0
    #: a task still `new` this long after it became `new` or was last dispatched again, with no
    #: dispatch pending, lost its dispatch: long enough above a normal relay and delivery
    #: (seconds at most, through a broker reconnect) that a dispatch on its way is never taken
    #: for lost, short enough that a lost one waits about a minute
    redispatch_seconds: Annotated[float, msgspec.Meta(ge=1, le=DAY)] = 60.0
    max_attempts: Positive = 3
    shutdown_grace_seconds: Seconds = 20.0
    #: how often the outbox is looked at (a scheduled task is dispatched within this of its
    #: run_at): a create's own dispatch does not wait for it
    relay_interval_seconds: Interval = 0.5
    db_pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    #: how many quorum queues the dispatch traffic is split over (a task's queue follows from
    #: its id; every worker consumes them all)
    dispatch_queues: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    intake_enabled: bool = True
    intake_prefetch: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 200
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576
    random_seed: int | None = None
    log_format: Literal["json", "console"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    api_keys: str | None = None
    retention_days: Annotated[float, msgspec.Meta(gt=0)] | None = None
    rate_limit_per_second: Annotated[int, msgspec.Meta(ge=1)] | None = None

    def __post_init__(self) -> None:
        if self.api_keys:
            try:
                parse_api_keys(self.api_keys)
            except ValueError as exc:  # never echo the value: it holds secrets
                raise ValueError(f"TASKS_API_KEYS: {exc}") from None
        if self.processing_min_seconds > self.processing_max_seconds:
            raise ValueError(
                "TASKS_PROCESSING_MIN_SECONDS must not exceed TASKS_PROCESSING_MAX_SECONDS "
                f"({self.processing_min_seconds} > {self.processing_max_seconds})"
            )
        if not self.lease_renew_seconds:
            msgspec.structs.force_setattr(self, "lease_renew_seconds", self.lease_seconds / 3)
        if self.lease_renew_seconds >= self.lease_seconds:
            raise ValueError(
                "TASKS_LEASE_RENEW_SECONDS must be shorter than TASKS_LEASE_SECONDS "
                f"({self.lease_renew_seconds} >= {self.lease_seconds}), or leases expire "
                "before they are renewed; leave it unset to renew every third of the lease"
            )


    def rabbitmq_urls(self) -> tuple[str, ...]:
        """The nodes of one RabbitMQ cluster: TASKS_RABBITMQ_URL split at its commas."""
        return split_urls(self.rabbitmq_url)

    def keys(self) -> tuple[ApiKey, ...]:
        """The API keys; empty when authentication is off."""
        return parse_api_keys(self.api_keys) if self.api_keys else ()


class SettingsError(Exception):
    """One line naming the bad setting."""


PREFIX = "TASKS_"
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
            "false": False, "no": False, "off": False, "0": False}
#: setting -> the URL schemes it accepts, and what a good value looks like
URLS = {
    "database_url": (("postgresql", "postgres"), "postgresql://user:password@host:5432/tasks"),
    "rabbitmq_url": (("amqp", "amqps"), "amqp://user:password@host:5672/vhost"),
}


class _Invalid(ValueError):
    """A value that does not fit its setting; the message says what would."""


def _convert(name: str, hint: Any, value: str) -> Any:
    """The value of one setting from its text: choices and booleans in any case."""
    text = value.strip().lower()
    if hint is bool:
        if text not in BOOLEANS:
            raise _Invalid(f"must be one of {', '.join(BOOLEANS)} (any case)")
        return BOOLEANS[text]
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        for choice in choices:
            if choice.lower() == text:
                return choice
        raise _Invalid(f"must be one of {', '.join(choices)} (any case)")
    if name in URLS:
        _check_url(name, value)
    one = msgspec.defstruct("One", [(name, hint)])
    try:
        return getattr(msgspec.convert({name: value}, one, strict=False), name)
    except msgspec.ValidationError as exc:
        raise _Invalid(_plain(str(exc).split(" - at ")[0])) from None


def _plain(message: str) -> str:
    """msgspec's "Expected `int`, got `str`" / "Expected `float` <= 86400.0" in words."""
    if re.match(r"Expected `int( \| null)?`, got", message):
        return "must be a whole number"
    if re.match(r"Expected `float( \| null)?`, got", message):
        return "must be a number"
    bound = re.match(r"Expected `[^`]+` (.+)$", message)
    return f"must be {bound[1]}" if bound else message


def split_urls(value: str) -> tuple[str, ...]:
    """Comma-separated URLs, blanks around them ignored."""
    return tuple(url.strip() for url in value.split(",") if url.strip())


def _check_url(name: str, value: str) -> None:
    schemes, example = URLS[name]
    if name == "rabbitmq_url":  # the nodes of one cluster, each a URL of its own
        urls = split_urls(value)
        if urls and all(_scheme(url) in schemes for url in urls):
            return
        raise _Invalid(f"must be one URL starting with {' or '.join(s + '://' for s in schemes)}"
                       f", or several separated by commas (the nodes of one cluster), e.g. "
                       f"{example}")
    if _scheme(value) in schemes:
        return  # several hosts too, the libpq way: postgresql://h1:5432,h2:5432/tasks
    if "://" not in value and name == "database_url" and "=" in value:
        return  # libpq's key=value form: host=... dbname=...
    raise _Invalid(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}, "
                   f"e.g. {example}")


def _scheme(url: str) -> str | None:
    scheme, found, _ = url.partition("://")
    return scheme.lower() if found else None


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blanks and # comments ignored; optional matching quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(
    environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """The process environment wins over .env; unknown TASKS_* names are ignored."""
    source = read_dotenv(dotenv) if dotenv else {}
    source.update(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    hints = get_type_hints(Settings, include_extras=True)
    for name in Settings.__struct_fields__:
        key = PREFIX + name.upper()
        value = source.get(key)
        if value is None or value == "":
            continue
        try:
            raw[name] = _convert(name, hints[name], value)
        except _Invalid as exc:
            raise SettingsError(f"invalid setting {key}={scrub(value)!r}: {exc}") from None
    try:
        return Settings(**raw)
    except ValueError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None
