"""The configuration: one YAML file, validated before anything runs.

:func:`load_config` finds the file (``--config``, then ``$ZVM_ETL_CONFIG``, then
``./config.yaml``), replaces ``${VAR}`` from the environment in every string value, and
validates the result with pydantic. Every problem found is reported at once, each naming the
file, the key and what is wrong; nothing runs with a configuration that has one.

Usage::

    config = load_config("prod.yaml")
    for zvm in config.zvms:
        print(zvm.name, zvm.url)
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from etl.errors import ConfigError

__all__ = [
    "Config",
    "SyncConfig",
    "WarehouseConfig",
    "ZvmConfig",
    "find_config_path",
    "format_duration",
    "load_config",
    "mask_url",
    "parse_config",
    "parse_date",
    "parse_duration",
]

CONFIG_ENV = "ZVM_ETL_CONFIG"
WAREHOUSE_URL_ENV = "ZVM_ETL_WAREHOUSE_URL"
DEFAULT_CONFIG = Path("config.yaml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")

SECRET_KEYS = frozenset({"password", "client_secret"})
"""The keys of a ZVM that hold secrets: masked everywhere, needed only to talk to a ZVM."""


def parse_duration(value: object) -> timedelta:
    """Read ``30s``, ``10m``, ``2h``, ``7d`` (or a bare number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 2h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return timedelta(seconds=float(number) * _UNITS[unit or "s"])
        if _DURATION.match(value.strip().removeprefix("-")):
            raise ValueError(f"{value!r} is not a duration: a duration cannot be negative")
    raise ValueError(f"{value!r} is not a duration: write 30s, 10m, 2h or 7d (a number is seconds)")


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration: ``2m``, ``90s``, ``7d``."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


def parse_date(value: str) -> datetime:
    """A date (midnight UTC) or a date-time (UTC when it has no offset; ``Z`` allowed) as
    an aware UTC datetime; ValueError says how to write one."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date: write 2024-01-31 or 2024-01-31T08:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_since(value: object) -> datetime | None:
    """``backfill_since``: a date (midnight UTC) or a date-time (UTC when no offset)."""
    if value is None or isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time.min)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date: write 2024-01-31 or 2024-01-31T08:00:00Z"
            ) from None
    else:
        raise ValueError(f"{value!r} is not a date: write 2024-01-31 or 2024-01-31T08:00:00Z")
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC) if parsed is not None else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class WarehouseConfig(_Model):
    """Where the warehouse lives: any SQLAlchemy URL."""

    url: str = "sqlite:///warehouse.db"

    @field_validator("url")
    @classmethod
    def _url_has_dialect(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(
                f"{value!r} is not a database URL: write e.g. sqlite:///warehouse.db or "
                "postgresql+psycopg://user@host/db"
            )
        return value


class ZvmConfig(_Model):
    """One Zerto Virtual Manager to extract from."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str
    auth: Literal["session", "keycloak"] = "session"
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = "zerto-client"
    client_secret: SecretStr | None = None
    verify_tls: bool = True
    ca_bundle: Path | None = None
    timeout: Duration = timedelta(seconds=120)
    connect_timeout: Duration = timedelta(seconds=10)
    retry_for: Duration = timedelta(minutes=2)
    """How long one call is retried while the ZVM answers with failures (5xx, 429,
    timeouts, dropped connections): a ZVM that is busy or restarting."""
    connect_retry_for: Duration = timedelta(seconds=15)
    """How long one call is retried while no connection can be made at all (refused, an
    unknown host, connecting timed out): a ZVM that is down or a wrong url; an interactive
    ``sync`` says so quickly, and the next pass tries again."""
    task_retention: Duration = timedelta(days=30)

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        scheme, sep, rest = value.partition("://")
        example = "write e.g. https://zvm.example.com:9669"
        if not sep:
            # Never a silent http://: credentials go in clear text only when the URL says so.
            raise ValueError(f"{value!r} has no http:// or https:// scheme: {example}")
        if scheme.lower() not in ("http", "https"):
            raise ValueError(
                f"{value!r}: the scheme {scheme}:// is not supported, a ZVM's API is reached "
                f"with https:// (or http://): {example}"
            )
        if not rest.split("/", 1)[0]:
            raise ValueError(f"{value!r} has no host: {example}")
        if "@" in rest.split("/", 1)[0]:
            raise ValueError("put credentials in username/password, not in the URL")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @model_validator(mode="after")
    def _credentials_present(self, info: ValidationInfo) -> ZvmConfig:
        if info.context is not None and not info.context.get("zvm_secrets", True):
            return self  # a command that never talks to a ZVM does not need them
        client_credentials = self.auth == "keycloak" and self.client_secret is not None
        if not client_credentials and (not self.username or self.password is None):
            raise ValueError(
                "username and password are required"
                + (
                    " (or client_id and client_secret for keycloak)"
                    if self.auth == "keycloak"
                    else ""
                )
            )
        if self.client_secret is not None and self.auth != "keycloak":
            raise ValueError("client_secret is only used with auth: keycloak")
        return self


class SyncConfig(_Model):
    """How and how often each ZVM is synced, and when `status` calls it unhealthy.

    The scheduler settings (``jitter``, ``misfire_grace``, ``shutdown_grace``,
    ``max_backoff``) are read by ``zvm-etl schedule`` only; ``stale_after`` and
    ``retention_warning`` by ``zvm-etl status``, the scheduler and ``sync``.
    """

    interval: Duration = timedelta(minutes=5)
    overlap: Duration = timedelta(minutes=10)
    backfill_since: Annotated[datetime | None, BeforeValidator(_parse_since)] = None
    backfill_window: Duration = timedelta(days=1)
    entity_refresh_interval: Duration = timedelta(hours=1)
    """How often a pass re-reads the ZVM's entity listings (names of VPGs, sites, hosts):
    on its first pass, then at most this often; ``0s``: every pass."""
    entity_refresh_budget: Duration = timedelta(seconds=10)
    """The most time reading the entity listings may add to a pass, all of them together
    (retries and waits included): each listing may retry for an equal share of what is left,
    a listing that failed is not asked again before the next refresh, and listings not yet
    read when it is spent are skipped with a warning; the names known so far stay. The
    tasks' own calls keep ``retry_for``."""
    recovery_report: bool = True
    """Whether every pass (and backfill) also reads the ZVM's Recovery Report
    (``/v1/reports/recovery``): its failovers, tests and moves with their RTO."""
    recovery_page_size: int = Field(default=500, ge=1, le=1000)
    """Operations asked for per page of the report (the ZVM serves at most 1000)."""
    recovery_report_budget: Duration = timedelta(seconds=60)
    """The most time reading the report may add to a pass, every window and page together
    (retries and waits included); what is left unread is read by the next pass."""
    jitter: Duration = timedelta(seconds=10)
    """Each scheduled pass starts up to this much later, at random (spreads ZVMs out); never
    more than a tenth of ``interval`` (``etl.scheduler.effective_jitter``), so a short
    interval keeps its rhythm."""
    misfire_grace: Duration | None = None
    """A scheduled pass that cannot start within this of its time is dropped (None: interval)."""
    shutdown_grace: Duration = timedelta(seconds=20)
    """On SIGINT/SIGTERM, how long a running pass may take to finish before the exit."""
    max_backoff: Duration = timedelta(hours=1)
    """The longest interval a failing ZVM backs off to (never shorter than ``interval``)."""
    stale_after: Duration | None = None
    """`status` exits 4 when a ZVM's last success is older than this (None: 3 x interval)."""
    retention_warning: float = Field(default=0.5, gt=0, le=1)
    """Warn when the time since a ZVM's last success exceeds this fraction of its
    ``task_retention``: history older than the retention is purged by the ZVM."""

    @field_validator(
        "interval",
        "backfill_window",
        "max_backoff",
        "entity_refresh_budget",
        "recovery_report_budget",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("misfire_grace", "stale_after")
    @classmethod
    def _positive_or_none(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than 0s (or null for the default)")
        return value

    @property
    def stale_threshold(self) -> timedelta:
        """``stale_after``, or three intervals when it is not set."""
        return self.stale_after if self.stale_after is not None else 3 * self.interval

    @property
    def misfire_threshold(self) -> timedelta:
        """``misfire_grace``, or one interval when it is not set."""
        return self.misfire_grace if self.misfire_grace is not None else self.interval


class Config(_Model):
    """The whole configuration, as :func:`load_config` returns it."""

    warehouse: WarehouseConfig = WarehouseConfig()
    zvms: list[ZvmConfig] = Field(min_length=1)
    sync: SyncConfig = SyncConfig()
    source: str | None = Field(default=None, exclude=True)
    """The file it was read from (None when built in code)."""

    @field_validator("zvms")
    @classmethod
    def _unique_names(cls, zvms: list[ZvmConfig]) -> list[ZvmConfig]:
        seen: set[str] = set()
        for zvm in zvms:
            if zvm.name in seen:
                raise ValueError(f"the ZVM name {zvm.name!r} is used twice; names must be unique")
            seen.add(zvm.name)
        return zvms

    def zvm(self, name: str) -> ZvmConfig:
        """The ZVM called ``name``; ConfigError naming the known ones when there is none."""
        for zvm in self.zvms:
            if zvm.name == name:
                return zvm
        known = ", ".join(z.name for z in self.zvms)
        raise ConfigError(f"{self.source or 'config'}: no ZVM is named {name!r} (known: {known})")

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, every secret replaced by ``********``."""
        data: dict[str, Any] = self.model_dump(mode="json")
        data["warehouse"]["url"] = mask_url(self.warehouse.url)
        for zvm in data["zvms"]:
            for key in SECRET_KEYS:
                if zvm.get(key) is not None:
                    zvm[key] = "********"
        return data


def mask_url(url: str) -> str:
    """A database URL with its password replaced by ``***`` (for logs and messages)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def find_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The file to read: ``path``, else ``$ZVM_ETL_CONFIG``, else ``./config.yaml``."""
    if path is not None:
        return Path(path)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key written twice in one mapping (YAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a name, not a list or a mapping", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is written twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


def _construct_timestamp(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> Any:
    """A date YAML cannot build (``2024-13-45``) stays text: the key's validation then
    says what is wrong with it, and where."""
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _interpolate(
    value: Any,
    key: str,
    env: dict[str, str],
    problems: list[str],
    *,
    secrets: bool = True,
    unset: set[str] | None = None,
) -> Any:
    """Replace ``${VAR}`` in every string; ``$$`` is a literal ``$``.

    With ``secrets`` False, a secret key whose variable is not set becomes null instead of
    a problem: commands that never talk to a ZVM run without the ZVM credentials. The keys
    whose variable is not set are added to ``unset``.
    """
    if isinstance(value, dict):
        return {
            k: _interpolate(
                v, f"{key}.{k}" if key else str(k), env, problems, secrets=secrets, unset=unset
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, f"{key}[{i}]", env, problems, secrets=secrets, unset=unset)
            for i, v in enumerate(value)
        ]
    if isinstance(value, str):
        if not secrets and key.rsplit(".", 1)[-1] in SECRET_KEYS:
            names = [m.group(1) for m in _VAR.finditer(value) if m.group(1)]
            if any(name not in env for name in names):
                return None

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "$"
            if name not in env:
                if unset is not None:
                    unset.add(key)
                problems.append(
                    f"{key}: the environment variable {name} is not set "
                    f"(export {name}=... or remove ${{{name}}})"
                )
                return ""
            return env[name]

        return _VAR.sub(replace, value)
    return value


def _key_path(loc: tuple[int | str, ...], data: Any) -> str:
    """``("zvms", 0, "url")`` → ``zvms[0].url`` (with the ZVM's name when known)."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = (
                node[item].get("name")
                if isinstance(node, list) and item < len(node) and isinstance(node[item], dict)
                else None
            )
            parts.append(f"[{item}]" + (f" ({name})" if name else ""))
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            if item.startswith(("function-", "union", "literal")) or item in (
                "datetime",
                "str",
                "list[ZvmConfig]",
            ):
                continue
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


_SECTIONS: dict[str, type[_Model]] = {
    "warehouse": WarehouseConfig,
    "zvms": ZvmConfig,
    "sync": SyncConfig,
}
_HINTS = {
    "auth": "session for a Windows ZVM, keycloak for the ZVM appliance",
    "verify_tls": "write true or false",
    "retention_warning": "a fraction of task_retention, above 0 and at most 1, e.g. 0.5",
}
"""A hint appended to a type or range error of these keys (pydantic says what, not why)."""
_KINDS = {"str": "text", "int": "a number", "float": "a number", "bool": "true/false"}
_KINDS |= {"dict": "a mapping", "list": "a list"}
_NAME_RULE = (
    "a ZVM name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)


def _field_of(loc: tuple[int | str, ...]) -> tuple[type[_Model], str] | None:
    """The model and field name a location points at: ``("zvms", 0, "url")`` →
    ``(ZvmConfig, "url")``; None when it is not a known model's key."""
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return None
    if len(names) == 1:
        model: type[_Model] = Config
    elif names[0] in _SECTIONS:
        model = _SECTIONS[names[0]]
    else:
        return None
    name = names[-1] if len(names) == 1 else names[1]
    return (model, name) if name in model.model_fields else None


def _keys_of(model: type[_Model]) -> list[str]:
    return [name for name, field in model.model_fields.items() if not field.exclude]


def _unknown_key(loc: tuple[int | str, ...], key: str) -> str:
    """``unknown key``, with the closest key there is when it looks like a typo."""
    import difflib

    names = [part for part in loc[:-1] if isinstance(part, str)]
    model = _SECTIONS.get(names[0], Config) if names else Config
    name = str(loc[-1])
    close = difflib.get_close_matches(name.lower(), _keys_of(model), n=1, cutoff=0.7)
    hint = f"; did you mean {close[0]}?" if close else ""
    where = {"zvms": "a ZVM"}.get(names[0], names[0]) if names else "the top level"
    return (
        f"{key}: unknown key{hint} (the keys of {where} are: {', '.join(_keys_of(model))}; "
        "see config.example.yaml)"
    )


def _describe(error: Any, data: Any) -> str:
    loc = tuple(error["loc"])
    key = _key_path(loc, data)
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(loc, key)
    if kind == "missing":
        return f"{key}: required but missing"
    if kind == "invalid_key":
        parent = _key_path(loc[:-1], data)
        return f"{parent}: the key {error.get('input')!r} is not a name: write keys as text"
    field = _field_of(loc)
    if kind == "too_short" and loc == ("zvms",):
        return f"{key}: the list is empty: configure at least one ZVM (name, url, credentials)"
    if kind in ("model_type", "dict_type", "list_type"):
        shape = "a list (one '- ' item per line)" if kind == "list_type" else "a mapping"
        what = "each ZVM" if loc[:1] == ("zvms",) and len(loc) == 2 else "it"
        if error.get("input") is None:
            return f"{key}: is empty: {what} must be {shape} of keys, or be left out"
        got = _KINDS.get(type(error.get("input")).__name__, "single value")
        return f"{key}: {what} must be {shape}, not {got} (see config.example.yaml)"
    if kind == "string_pattern_mismatch" and field is not None and field[1] == "name":
        return f"{key}: {error.get('input')!r} cannot be used: {_NAME_RULE}"
    if error.get("input", ...) is None and kind.endswith("_type") and field is not None:
        model, name = field
        default = model.model_fields[name].default
        instead = (
            f", or leave the key out for the default ({default})"
            if default is not None and not model.model_fields[name].is_required()
            else ""
        )
        return f"{key}: has no value: write one{instead}"
    message = str(error["msg"]).removeprefix("Value error, ")
    secret = any(part in SECRET_KEYS for part in loc)
    if (
        kind not in ("value_error", "assertion_error")
        and "input" in error
        and not secret
        and not isinstance(error["input"], dict | list)
    ):
        message = f"{message} (got {error['input']!r})"
    if kind != "value_error" and field is not None and field[1] in _HINTS:
        message = f"{message}: {_HINTS[field[1]]}"
    return f"{key}: {message}"


def parse_config(
    data: Any,
    *,
    source: str = "config",
    env: dict[str, str] | None = None,
    zvm_secrets: bool = True,
) -> Config:
    """Validate already-loaded YAML data; ``source`` names it in messages.

    ``zvm_secrets`` False is for commands that never talk to a ZVM (``db``, ``status``,
    ``export``, ``report``): ZVM passwords and client secrets may then be missing (their
    ``${VAR}`` unset), so an analyst or a probe runs without holding credentials.
    """
    env = dict(os.environ) if env is None else env
    problems: list[str] = []
    if data is None:
        raise ConfigError(
            f"{source}: the configuration is empty: it needs at least a zvms list "
            "(copy config.example.yaml and edit it)"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping with warehouse, zvms and sync"
        )
    unset: set[str] = set()
    data = _interpolate(data, "", env, problems, secrets=zvm_secrets, unset=unset)
    found = [f"{source}: {p}" for p in problems]
    if env.get(WAREHOUSE_URL_ENV):
        warehouse = data.get("warehouse") if isinstance(data.get("warehouse"), dict) else {}
        data["warehouse"] = {**warehouse, "url": env[WAREHOUSE_URL_ENV]}

    def from_unset(loc: tuple[int | str, ...]) -> bool:
        # A key whose ${VAR} is not set was reported as such: not again as a bad value.
        path = _key_path(loc, None)
        return any(path == key or path.startswith((key + ".", key + "[")) for key in unset)

    try:
        config = Config.model_validate(
            {**data, "source": source}, context={"zvm_secrets": zvm_secrets}
        )
    except ValidationError as exc:
        found += [
            f"{source}: {_describe(err, data)}"
            for err in exc.errors()
            if not from_unset(tuple(err["loc"]))
        ]
        raise ConfigError("\n".join(found), problems=found) from None
    if found:
        raise ConfigError("\n".join(found), problems=found)
    return config


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    zvm_secrets: bool = True,
) -> Config:
    """Find, read, interpolate and validate the configuration file.

    Raises :class:`ConfigError` listing every problem when the file is missing, is not
    valid YAML, or has an unknown key, a wrong type, a bad duration, a missing ``${VAR}``,
    a duplicate ZVM name or a URL without scheme. ``zvm_secrets``: see :func:`parse_config`.
    """
    config_path = find_config_path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{config_path}: the configuration file is not UTF-8 text (byte {exc.start}: "
            f"{exc.reason}); save it as UTF-8"
        ) from None
    except FileNotFoundError:
        hint = "pass --config PATH, set ZVM_ETL_CONFIG, or copy config.example.yaml to config.yaml"
        raise ConfigError(
            f"{config_path}: the configuration file does not exist ({hint})"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{config_path}: cannot read the configuration file: {exc.strerror}"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{config_path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{config_path}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # a value its explicit tag cannot build: !!int abc
        raise ConfigError(f"{config_path}: invalid YAML: {exc}") from None
    return parse_config(data, source=str(config_path), env=env, zvm_secrets=zvm_secrets)
