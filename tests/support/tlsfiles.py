"""Test certificates (made with ``trustme``) written to PEM files a node and its clients read."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")
"""What the server certificate is valid for: the address test nodes listen on, and its name."""


@dataclass(frozen=True)
class TlsFiles:
    """``ca``: the CA that signed ``cert`` (with its key ``key``); ``other_ca``: a CA that did
    not, for clients and nodes that must refuse the certificate."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path

    def trusting(self, ca: Path | None = None) -> ssl.SSLContext:
        """A client context that trusts ``ca`` (default: the CA that signed the certificate);
        for httpx, which deprecates a CA file path as ``verify``."""
        return ssl.create_default_context(cafile=str(ca or self.ca))

    def serve_args(self, *, ca: Path | None = None) -> list[str]:
        """``serve`` options for HTTPS with this certificate, checking other nodes against ``ca``
        (default: the CA that signed them)."""
        return ["--cert", str(self.cert), "--key", str(self.key),
                "--ca-cert", str(ca or self.ca)]


def write_tls_files(folder: Path) -> TlsFiles:
    """A CA, a server certificate and key for ``SERVER_NAMES`` signed by it, and an unrelated CA."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_NAMES)
    files = TlsFiles(
        ca=folder / "ca.pem",
        cert=folder / "server.pem",
        key=folder / "server-key.pem",
        other_ca=folder / "other-ca.pem",
    )
    ca.cert_pem.write_to_path(files.ca)
    # The chain: the server certificate first, then any intermediates (none here).
    for index, blob in enumerate(server.cert_chain_pems):
        blob.write_to_path(files.cert, append=index > 0)
    server.private_key_pem.write_to_path(files.key)
    trustme.CA().cert_pem.write_to_path(files.other_ca)
    return files
