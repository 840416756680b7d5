"""TLS for a served mesh: kubectl sends its bearer token only over HTTPS.

client-go reads a kubeconfig's user credentials only when the server's
transport is TLS, so a locked served mesh must speak TLS to kubectl. Each
``serve()`` makes its own short-lived, self-signed certificate for
127.0.0.1/localhost (an EC P-256 key, made in milliseconds) and writes the
certificate into the kubeconfig as ``certificate-authority-data``; nothing is
shared between serves, so no other process holds a key that would let it
pose as this server. The same port keeps answering plain HTTP (the first
byte of a connection tells which: a TLS record starts with 0x16) for
clients that were given the token some other way.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, bytes]:
    """(a server SSLContext, the certificate PEM clients should trust), the key written 0600 into ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit-embedded-mesh")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if host not in ("127.0.0.1", "localhost"):
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context, cert_pem


def client_context(cert_pem: bytes | str) -> ssl.SSLContext:
    """An SSLContext that trusts exactly this served mesh's certificate."""
    text = cert_pem.decode("ascii") if isinstance(cert_pem, bytes) else cert_pem
    return ssl.create_default_context(cadata=text)
