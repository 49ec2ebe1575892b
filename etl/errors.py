"""The exception tree of zvm-task-etl.

Every error the library raises on purpose is an :class:`EtlError`; the CLI turns each into
one message and an exit status, the scheduler into a failed run. Messages say what happened,
to what, and how to fix it, and never contain a secret::

    EtlError
    ├── ConfigError                 the configuration file cannot be used
    ├── ZvmError                    talking to a ZVM failed (has .zvm and .url)
    │   ├── ZvmConnectionError      no connection: refused, DNS, timed out
    │   ├── ZvmTlsError             the ZVM's certificate could not be verified
    │   ├── ZvmAuthError            the ZVM refused the login (user named, never the password)
    │   ├── ZvmResponseError        an answer we cannot use: 4xx, HTML, invalid JSON, wrong shape
    │   └── ZvmRetriesExhausted     transient failures went on past the retry budget
    ├── WarehouseError              the warehouse database failed
    │   ├── WarehouseUnavailable    cannot connect / the database went away
    │   └── SchemaMismatch          the schema is missing, behind or ahead of this code
    ├── InstallationError           the package's own files (migrations, SQL) are missing
    └── ExportError                 an export or report asked for what cannot be given: a
        │                           filter the view has no column for, a bad parameter...
        └── UnknownExportName       no view or ready query has that name (lists the valid ones)

A pass over a ZVM never raises for that ZVM's failures: ``etl.sync`` records them in
``etl_runs`` and returns a failed ``RunResult``; the exceptions above reach the caller only
from what comes before the passes (configuration, the warehouse's schema check).
"""

from __future__ import annotations


class EtlError(Exception):
    """Base class of every error zvm-task-etl raises on purpose."""


class ConfigError(EtlError):
    """The configuration cannot be used: missing file, bad YAML, an invalid key or value.

    ``problems`` lists every problem found (``file: key: what is wrong``), so a user fixes
    them all in one go instead of one per run.
    """

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class ZvmError(EtlError):
    """Talking to a ZVM failed. ``zvm`` is the configured name, ``url`` the base URL."""

    def __init__(self, message: str, *, zvm: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.zvm = zvm
        self.url = url


class ZvmConnectionError(ZvmError):
    """No connection could be made or kept: refused, unknown host, timed out."""


class ZvmTlsError(ZvmError):
    """The ZVM's TLS certificate could not be verified."""


class ZvmAuthError(ZvmError):
    """The ZVM refused the credentials (session login or Keycloak token)."""


class ZvmResponseError(ZvmError):
    """The ZVM answered, but with something we cannot use (4xx, HTML, invalid JSON, wrong shape).

    ``status_code`` is the HTTP status when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        zvm: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, zvm=zvm, url=url)
        self.status_code = status_code


class ZvmRetriesExhausted(ZvmError):
    """Transient failures (5xx, 429, dropped connections, timeouts) outlasted the retry budget."""

    def __init__(
        self, message: str, *, zvm: str | None = None, url: str | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message, zvm=zvm, url=url)
        self.attempts = attempts


class WarehouseError(EtlError):
    """The warehouse database failed."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse cannot be reached, or the connection was lost."""


class SchemaMismatch(WarehouseError):
    """The warehouse schema is missing, behind or ahead of the revision this code expects."""


class InstallationError(EtlError):
    """The package's own files (Alembic migrations, SQL views and queries) are missing or
    unreadable: the installation is broken, and reinstalling it is the fix."""


class ExportError(EtlError):
    """``zvm-etl export`` or ``report`` was asked for something that cannot be given: a
    filter the view has no column for, a parameter the query does not take or a value it
    cannot use, a format that needs ``--out``. The command line is wrong: nothing ran."""


class UnknownExportName(ExportError):
    """No view (``v_...``) or ready query (``sql/queries/``) has this name. ``name`` is what
    was asked for, ``valid`` every name that can be exported."""

    def __init__(self, name: str, valid: list[str]) -> None:
        super().__init__(
            f"there is no view or ready query named {name!r}; the names that can be "
            f"exported are: {', '.join(valid)}"
        )
        self.name = name
        self.valid = valid
