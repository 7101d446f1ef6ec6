"""Server endpoints given as ``redis://[user:password@]host:port[/db]`` or ``rediss://`` URLs.

An :class:`Endpoint` never shows its password: ``str()``, ``repr()`` and :meth:`display` mask it,
so an endpoint can be logged or put in a report as it is. A ``rediss://`` endpoint carries its
:class:`TlsSettings` (CA file, client certificate and key, or no verification), given on the
command line (``--source-tls-ca`` ...); every connection to it, redis-py's or
:mod:`migrate.protocol.connect`'s, uses them.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from migrate.errors import ConnectError, UsageError

DEFAULT_PORT = 6379
CLIENT_NAME = "kvmigrate"  # CLIENT SETNAME of every connection kvmigrate opens
SCHEMES = ("redis", "rediss")


@dataclass(frozen=True)
class TlsSettings:
    """How to reach a TLS server, as redis-cli's --cacert, --cert, --key and --insecure."""

    ca: str | None = None  # PEM file of the CA(s) that sign the server's certificate
    cert: str | None = None  # PEM client certificate (and its key, when ``key`` is None)
    key: str | None = None
    insecure: bool = False  # do not verify the server's certificate nor its name

    def given(self) -> bool:
        return bool(self.ca or self.cert or self.key or self.insecure)

    def check(self, flag: str) -> None:
        """Refuse files that cannot be read (``flag``: the option prefix, for the message)."""
        if self.key and not self.cert:
            raise UsageError(f"{flag}-key needs {flag}-cert (the certificate of that key)")
        for what, path in (("ca", self.ca), ("cert", self.cert), ("key", self.key)):
            if path is None:
                continue
            if not os.path.isfile(path):
                raise UsageError(f"{flag}-{what} {path}: no such file")
            if not os.access(path, os.R_OK):
                raise UsageError(f"{flag}-{what} {path}: not readable")


NO_TLS = TlsSettings()


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_settings: TlsSettings = NO_TLS

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Parse a URL; a malformed one raises :class:`UsageError` that names what is wrong."""
        shown = mask_url(url)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"malformed URL {shown!r}: {exc}",
                             "expected redis://[user:password@]host:port[/db]") from None
        if parts.scheme not in SCHEMES:
            raise UsageError(f"malformed URL {shown!r}: scheme must be redis:// or rediss://",
                             "expected redis://[user:password@]host:port[/db]")
        if not parts.hostname:
            raise UsageError(f"malformed URL {shown!r}: no host",
                             "expected redis://[user:password@]host:port[/db]")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise UsageError(f"malformed URL {shown!r}: database must be a number, got {path!r}")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is None and username is not None:
            # redis://:secret@host and redis://secret@host are both common; treat a lone
            # user part as the password, as redis-cli -u does.
            password, username = username, None
        return cls(host=parts.hostname, port=port or DEFAULT_PORT, db=int(path or 0),
                   username=username or None, password=password, tls=parts.scheme == "rediss")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def display(self) -> str:
        """The URL with any password masked."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        db = f"/{self.db}" if self.db else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{db}"

    def __str__(self) -> str:
        return self.display()

    def with_db(self, db: int) -> Endpoint:
        return replace(self, db=db)

    def with_tls(self, settings: TlsSettings, flag: str) -> Endpoint:
        """This endpoint reached with ``settings``; ``flag`` (``--source-tls``) names the
        options in a refusal: they need a ``rediss://`` URL and readable files."""
        if not settings.given():
            return self
        if not self.tls:
            raise UsageError(f"{flag}-* options are given but {self.display()} is not a TLS "
                             "URL", "use rediss://host:port for a server reached over TLS")
        settings.check(flag)
        return replace(self, tls_settings=settings)

    def redis_tls_kwargs(self) -> dict[str, Any]:
        """redis-py's names for this endpoint's TLS settings."""
        if not self.tls:
            return {}
        tls = self.tls_settings
        return {"ssl": True, "ssl_ca_certs": tls.ca, "ssl_certfile": tls.cert,
                "ssl_keyfile": tls.key, "ssl_cert_reqs": "none" if tls.insecure else "required",
                "ssl_check_hostname": not tls.insecure}

    def client(self, *, db: int | None = None, timeout: float = 10.0,
               decode_responses: bool = False) -> redis.Redis:
        """A connected, authenticated client; failures raise :class:`ConnectError`."""
        client = redis.Redis(
            host=self.host, port=self.port, db=self.db if db is None else db,
            username=self.username, password=self.password,
            socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=decode_responses, client_name=CLIENT_NAME,
            **self.redis_tls_kwargs(),
        )
        # the first contact has one deadline (``timeout``), not redis-py's retries with
        # backoff (a silent server would take minutes); later commands retry as redis-py does
        later = client.get_retry()
        client.set_retry(Retry(NoBackoff(), 0))
        try:
            _ping_once_loaded(client, self.display())
        except redis.AuthenticationError as exc:
            if self.password is None:  # the server's own words vary (NOAUTH, HELLO ...)
                raise ConnectError(f"cannot authenticate to {self.display()}: the server "
                                   "requires a password",
                                   "put it in the URL: redis://:PASSWORD@host:port") from None
            raise ConnectError(f"cannot authenticate to {self.display()}: {exc}",
                               "check the user and password in the URL") from None
        except redis.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise ConnectError(f"cannot authenticate to {self.display()}: {exc}",
                                   "put the password in the URL: redis://:PASSWORD@host:port") \
                    from None
            raise ConnectError(f"{self.display()} refused PING: {exc}") from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            reason = _reason(exc)
            hint = tls_hint(reason, closed=self.tls)
            raise ConnectError(f"cannot connect to {self.display()}: {reason}",
                               hint or "check the host, the port and that the server is "
                                       "running") from None
        finally:
            if later is not None:
                client.set_retry(later)
        return client


# A server loading its dataset (at start, or a replica loading the RDB it was sent) answers
# every command with LOADING: it is there, only not ready yet. kvmigrate waits this long for
# it (a rollback's verification reaches the old primary while it loads the new one's data).
LOADING_WAIT_S = 120.0


def _ping_once_loaded(client: redis.Redis, where: str) -> None:
    deadline = time.monotonic() + LOADING_WAIT_S
    while True:
        try:
            client.ping()
            return
        except redis.BusyLoadingError:
            if time.monotonic() > deadline:
                raise ConnectError(f"{where} is still loading its dataset after "
                                   f"{LOADING_WAIT_S:.0f} s",
                                   "run again once it has loaded (INFO persistence: "
                                   "loading:0)") from None
            time.sleep(0.1)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


CLIENT_CERT_HINT = ("the server may require a client certificate: --source-tls-cert / "
                    "--target-tls-cert FILE (and -tls-key FILE)")


def tls_hint(reason: str, *, closed: bool = False) -> str | None:
    """What to do about a TLS failure named in ``reason`` (None: not a TLS failure); with
    ``closed``, a TLS connection the server closed at once counts as one (TLS 1.3 servers
    refuse a missing client certificate after the handshake)."""
    text = reason.lower()
    if closed and ("eof occurred" in text or "closed" in text or "reset by peer" in text):
        return CLIENT_CERT_HINT
    if "certificate verify failed" in text or "unknown ca" in text:
        if "hostname" in text or "ip address mismatch" in text:
            return ("the server's certificate does not name this host: connect by a name it "
                    "holds, or --*-tls-insecure to skip the check")
        return "give the CA that signed the server's certificate with --source-tls-ca or " \
               "--target-tls-ca FILE"
    if "certificate required" in text or "alert handshake failure" in text or \
            "alert bad certificate" in text:
        return CLIENT_CERT_HINT
    if "wrong version number" in text or "record layer failure" in text or \
            "packet length too long" in text:
        return "the port does not speak TLS: use redis:// for it, or the server's TLS port"
    return None


def mask_url(url: str) -> str:
    """Mask the password of a URL-like string without parsing it strictly."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    auth, _, hostpart = rest.rpartition("@")
    user, colon, _ = auth.partition(":")
    # redis://secret@host: a lone part is a password (as in Endpoint.parse), in ssh:// a user
    lone = "***" if scheme in SCHEMES else user
    masked = f"{user}:***" if colon else lone
    return f"{scheme}://{masked}@{hostpart}"


def raw_command(client: redis.Redis, *args: object) -> object:
    """Run a command and return the server's reply unparsed (no redis-py reply callback)."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_command(*args)
        reply = conn.read_response()
    finally:
        pool.release(conn)
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply


def has_command(client: redis.Redis, name: str) -> bool:
    """Whether the server knows a command (``COMMAND INFO`` answers nil for unknown ones)."""
    reply = raw_command(client, "COMMAND", "INFO", name)
    return bool(isinstance(reply, list) and reply and reply[0])


_URL_IN_TEXT = re.compile(r"\b(?:rediss?|ssh)://[^\s'\"`]+")


def mask_urls_in_text(text: str) -> str:
    """Mask the password of every URL inside free text (messages, reports)."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
