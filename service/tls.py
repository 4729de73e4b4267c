"""TLS on the gateway's port: server credentials that pick up renewed certificate files without a restart.

gRPC asks for the certificate configuration at each new TLS handshake; the files are checked then (a stat each)
and read again only when one has changed, so connections made after a renewal use the new certificate.
"""

from __future__ import annotations

import logging
import os
import ssl

import grpc

from service import reload_failures
from service.config import Config

log = logging.getLogger(__name__)


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


class _Certificates:
    def __init__(self, cert: str, key: str, client_ca: str) -> None:
        self._paths = tuple(p for p in (cert, key, client_ca) if p)
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._stamps = self._stat()
        # The files as they were when they last could not be taken up: each handshake asks, and the files are read,
        # checked, told of and counted once per change, not once per connection.
        self._refused: tuple[tuple[int, int] | None, ...] | None = None

    def _stat(self) -> tuple[tuple[int, int] | None, ...]:
        stamps = []
        for path in self._paths:
            try:
                info = os.stat(path)
                stamps.append((info.st_mtime_ns, info.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(_read(self._key), _read(self._cert))],
            root_certificates=_read(self._client_ca) if self._client_ca else None,
        )

    def changed(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration if a file changed since last read, else None (gRPC keeps the current one)."""
        stamps = self._stat()
        if stamps in (self._stamps, self._refused):
            return None
        if None in stamps:  # gone, or between a removal and its replacement: the current certificate stays
            self._refuse(stamps)
            return None
        try:
            self._check()
            configuration = self.configuration()
        except (OSError, ValueError) as exc:  # half-written: keep serving with the current certificate
            log.warning("TLS files changed but could not be read, keeping the current certificate: %s", exc)
            self._refuse(stamps)
            return None
        self._stamps = stamps
        log.info("TLS certificate files changed: new connections use the new certificate")
        reload_failures.taken_up("tls")
        return configuration

    def _refuse(self, stamps: tuple[tuple[int, int] | None, ...]) -> None:
        self._refused = stamps
        reload_failures.failed("tls")

    def _check(self) -> None:
        """Raises ssl.SSLError (an OSError) unless the files hold a certificate, its own key and, if configured, CA
        certificates: gRPC takes any bytes here and would keep the old certificate without a word."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert, self._key)
        if self._client_ca:
            context.load_verify_locations(self._client_ca)


def server_credentials(config: Config) -> grpc.ServerCredentials:
    certificates = _Certificates(config.tls_cert, config.tls_key, config.tls_client_ca)
    return grpc.dynamic_ssl_server_credentials(
        certificates.configuration(),
        certificates.changed,
        require_client_authentication=bool(config.tls_client_ca),
    )
