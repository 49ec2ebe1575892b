"""HTTPS for the simulator: a throwaway CA and a server certificate, made with trustme.

The certificate is valid for ``127.0.0.1``, ``localhost`` and ``::1`` (plus the configured
host when it is something else). The CA's PEM is written to a temporary file so that a
client can trust it (``verify=ca_path``); :meth:`TlsFiles.cleanup` removes it.

trustme is needed only here, and only when TLS is asked for: it is an optional dependency
(``pip install 'zvm-task-etl[simulator]'``), so a plain install never carries it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

__all__ = ["TlsFiles"]

_DEFAULT_NAMES = ("127.0.0.1", "localhost", "::1")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


class TlsFiles:
    """A generated CA, a server :class:`ssl.SSLContext` using a certificate it issued, and
    the CA's PEM in a temporary file (``ca_path``)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        names = list(_DEFAULT_NAMES)
        if host not in names and host not in _WILDCARD_HOSTS:
            names.append(host)
        try:
            import trustme
        except ModuleNotFoundError:
            raise RuntimeError(
                "the simulator's TLS needs the trustme package, which is not installed: "
                "pip install 'zvm-task-etl[simulator]' (or serve plain HTTP without --tls)"
            ) from None
        ca = trustme.CA(organization_name="zvm-task-etl simulator")
        cert = ca.issue_cert(*names, common_name="zvm-simulator")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self.context = context
        handle, name = tempfile.mkstemp(prefix="zvm-simulator-ca-", suffix=".pem")
        with os.fdopen(handle, "wb") as file:
            file.write(ca.cert_pem.bytes())
        self.ca_path = Path(name)

    def cleanup(self) -> None:
        """Remove the CA file (idempotent)."""
        self.ca_path.unlink(missing_ok=True)
