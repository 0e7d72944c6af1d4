"""Fixtures for the security tests: certificates made here, TLS Redis, ACL users, TLS SMTP servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import shlex
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emailqueue.errors import EmailQueueError
from emailqueue.localserver import RedisServer, free_port

from .acl import acl_lines

# ---- certificates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: Path  # the CA that signed server.pem and client.pem
    server_cert: Path  # CN/SAN localhost + 127.0.0.1
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # an unrelated CA: verification against it must fail
    wrong_host_cert: Path  # signed by ca, but for mail.example.net only
    wrong_host_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str, sans: list[x509.GeneralName], client: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("emailqueue test CA")
    other, _ = _ca("some other CA")
    local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server, server_key = _leaf(ca, ca_key, "localhost", local, client=False)
    client, client_key = _leaf(ca, ca_key, "emailqueue-worker", [], client=True)
    wrong, wrong_key = _leaf(ca, ca_key, "mail.example.net", [x509.DNSName("mail.example.net")], client=False)
    pem = serialization.Encoding.PEM
    paths = Certs(
        dir=directory,
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
        wrong_host_cert=directory / "wrong-host.pem",
        wrong_host_key=directory / "wrong-host.key",
    )
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.other_ca.write_bytes(other.public_bytes(pem))
    paths.server_cert.write_bytes(server.public_bytes(pem))
    paths.client_cert.write_bytes(client.public_bytes(pem))
    paths.wrong_host_cert.write_bytes(wrong.public_bytes(pem))
    _write_key(paths.server_key, server_key)
    _write_key(paths.client_key, client_key)
    _write_key(paths.wrong_host_key, wrong_key)
    return paths


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


# ---- Redis with TLS ----------------------------------------------------------------------------


class TlsRedisServer(RedisServer):
    """A Redis server that listens on TLS only (``--port 0 --tls-port N``)."""

    def __init__(self, certs: Certs, *, auth_clients: bool = False, **kw: Any) -> None:
        self.certs = certs
        self.auth_clients = auth_clients
        super().__init__(**kw)

    def args(self) -> list[str]:
        c = self.certs
        return [
            *super().args(),
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(c.server_cert),
            "--tls-key-file",
            str(c.server_key),
            "--tls-ca-cert-file",
            str(c.ca),
            "--tls-auth-clients",
            "yes" if self.auth_clients else "no",
        ]

    def tls_url(self, host: str = "localhost", ca: Path | None = None, **params: str) -> str:
        auth = f":{self.password}@" if self.password else ""
        query = {"ssl_ca_certs": str(ca or self.certs.ca), **params}
        return f"rediss://{auth}{host}:{self.port}/0?" + "&".join(f"{k}={v}" for k, v in query.items())

    @property
    def url(self) -> str:
        return self.tls_url()

    def _ping(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.certs.ca))
        ctx.check_hostname = False  # readiness only; the tests check names
        if self.auth_clients:
            ctx.load_cert_chain(str(self.certs.client_cert), str(self.certs.client_key))
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw,
                ctx.wrap_socket(raw) as sock,
            ):
                cmd = b"PING\r\n" if not self.password else f"AUTH {self.password}\r\nPING\r\n".encode()
                sock.sendall(cmd)
                data = b""
                deadline = time.monotonic() + 0.5
                while b"PONG" not in data and b"-" not in data and time.monotonic() < deadline:
                    data += sock.recv(100)
                return b"PONG" in data
        except (OSError, ssl.SSLError):
            return False


def _tls_unsupported_reason(exc: Exception) -> str | None:
    text = str(exc).lower()
    if "tls" in text or "unrecognized option" in text or "bad directive" in text:
        return f"this Redis server has no TLS support ({exc!s:.200}); apt-get install redis-server (Debian's has TLS)"
    return None


@pytest.fixture
def tls_redis(certs: Certs, tmp_path: Path) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(certs, data_dir=str(tmp_path / "redis-tls"))
    try:
        server.start()
    except EmailQueueError as exc:
        server.close()
        reason = _tls_unsupported_reason(exc)
        if reason:
            pytest.skip(reason)
        raise
    yield server
    server.close()


@pytest.fixture
def mtls_redis(certs: Certs, tmp_path: Path) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(certs, auth_clients=True, data_dir=str(tmp_path / "redis-mtls"))
    try:
        server.start()
    except EmailQueueError as exc:
        server.close()
        reason = _tls_unsupported_reason(exc)
        if reason:
            pytest.skip(reason)
        raise
    yield server
    server.close()


# ---- Redis with ACL users ----------------------------------------------------------------------


@dataclass
class AclRedis:
    server: RedisServer
    queue: str
    passwords: dict[str, str]

    def url(self, user: str, password: str | None = None) -> str:
        pw = self.passwords[user] if password is None else password
        return f"redis://{user}:{pw}@127.0.0.1:{self.server.port}/0"

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.url("admin"))


def apply_acl(client: redis.Redis, lines: list[str]) -> None:
    """Run ``ACL SETUSER`` lines; drops ``+client|setinfo`` on servers older than 7.2 (no such command)."""
    for line in lines:
        args = shlex.split(line)  # selectors are quoted: '(~key +command)'
        try:
            client.execute_command(*args)
        except redis.ResponseError as exc:
            if "client|setinfo" not in str(exc):
                raise
            client.execute_command(*[a for a in args if a != "+client|setinfo"])


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    queue = "secure"
    passwords = {
        user: f"{user}-{secrets.token_urlsafe(12)}"
        for user in ("emailqueue-producer", "emailqueue-worker", "emailqueue-operator", "admin")
    }
    boot = secrets.token_urlsafe(16)
    server = RedisServer(password=boot, data_dir=str(tmp_path / "redis-acl"))
    server.start()
    try:
        c = redis.Redis.from_url(server.url)
        # the default user goes last: after it is off, the admin user is the way in
        apply_acl(c, acl_lines(queue, passwords))
        c.close()
        server.password = None  # the fixture's own readiness ping must not use the default user
        yield AclRedis(server, queue, passwords)
    finally:
        server.close()


# ---- SMTP over TLS -----------------------------------------------------------------------------


@dataclass
class SmtpLog:
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    auth_attempts: list[tuple[str, bool, bool]] = field(default_factory=list)  # (user, ok, over_tls)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.deliveries)


def _encrypted(server: Any) -> bool:
    """STARTTLS or implicit TLS: the session's transport carries an SSL object."""
    transport = getattr(server, "transport", None)
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _TlsHandler:
    def __init__(self, log: SmtpLog) -> None:
        self.log = log

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.log.lock:
            self.log.deliveries.append(
                {
                    "rcpt": list(envelope.rcpt_tos),
                    "tls": _encrypted(server),
                    "auth": session.authenticated,
                    "data": envelope.original_content or envelope.content,
                }
            )
        return "250 2.0.0 OK"


@dataclass
class SmtpServer:
    port: int
    log: SmtpLog
    controller: Controller

    def stop(self) -> None:
        self.controller.stop()


def server_context(certs: Certs, wrong_host: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if wrong_host:
        ctx.load_cert_chain(str(certs.wrong_host_cert), str(certs.wrong_host_key))
    else:
        ctx.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    return ctx


@pytest.fixture
def smtp_server(certs: Certs) -> Iterator[Callable[..., SmtpServer]]:
    """Start aiosmtpd servers: ``mode`` "starttls", "implicit" or "plain"; optional AUTH."""
    started: list[SmtpServer] = []

    def start(
        mode: str = "starttls",
        *,
        user: str | None = None,
        password: str | None = None,
        auth_require_tls: bool = True,
        wrong_host: bool = False,
    ) -> SmtpServer:
        log = SmtpLog()

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            login = data.login.decode() if isinstance(data, LoginPassword) else "?"
            with log.lock:
                log.auth_attempts.append((login, ok, _encrypted(server)))
            return AuthResult(success=ok, handled=False)

        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs.update(authenticator=authenticator, auth_require_tls=auth_require_tls)
        if mode == "starttls":
            kwargs.update(tls_context=server_context(certs, wrong_host), require_starttls=False)
        ctx = server_context(certs, wrong_host) if mode == "implicit" else None
        controller = Controller(
            _TlsHandler(log),
            hostname="127.0.0.1",
            port=free_port(),
            ssl_context=ctx,
            ready_timeout=10,
            server_hostname="localhost",
            **kwargs,
        )
        controller.start()
        srv = SmtpServer(controller.port, log, controller)
        started.append(srv)
        return srv

    yield start
    for s in started:
        s.stop()
