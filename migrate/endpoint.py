"""Server endpoints given as ``redis://[user:password@]host:port[/db]`` or ``rediss://`` URLs.

An :class:`Endpoint` never shows its password: ``str()``, ``repr()`` and :meth:`display` mask it,
so an endpoint can be logged or put in a report as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import redis

from migrate.errors import ConnectError, UsageError

DEFAULT_PORT = 6379
CLIENT_NAME = "kvmigrate"  # CLIENT SETNAME of every connection kvmigrate opens
SCHEMES = ("redis", "rediss")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

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
        return Endpoint(self.host, self.port, db, self.username, self.password, self.tls)

    def client(self, *, db: int | None = None, timeout: float = 10.0,
               decode_responses: bool = False) -> redis.Redis:
        """A connected, authenticated client; failures raise :class:`ConnectError`."""
        client = redis.Redis(
            host=self.host, port=self.port, db=self.db if db is None else db,
            username=self.username, password=self.password, ssl=self.tls,
            socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=decode_responses, client_name=CLIENT_NAME,
        )
        try:
            client.ping()
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
            raise ConnectError(f"cannot connect to {self.display()}: {_reason(exc)}",
                               "check the host, the port and that the server is running") \
                from None
        return client


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


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
