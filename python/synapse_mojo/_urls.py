"""Connection URLs: one parser, one redaction, one rule for query options.

    from synapse_mojo._urls import parse_url, redact, check_options
    url = parse_url("redis://:s3cret@127.0.0.1:6379/0?prefix=app", what="store URL")
    url.scheme, url.host, url.port, url.database     # 'redis', '127.0.0.1', 6379, '0'
    url.options                                      # {'prefix': 'app'}
    str(url), repr(url)                              # the password shows as ***
    check_options(url, ("prefix", "timeout"))        # ConfigError for anything else
    redact("neo4j://neo4j:pw@db:7687")               # 'neo4j://neo4j:***@db:7687'

Every URL the package takes (pattern stores, routers, the embeddings server) goes through
here. It sits at the bottom of the layers: it imports nothing but :mod:`.errors`.

Redaction (what ``redact`` and ``str(ParsedURL)`` show): a password in the user info becomes
``***`` (the user name stays: it names an account, it does not open it; in http(s) URLs a
lone user info is the usual place for a token, so it is hidden too); values of query options
whose name says secret (``password``, ``token``, ``api_key``, ``secret``, ...) become ``***``;
a URL inside an option value (``backing=neo4j://user:pw@db``) is redacted the same way.
Text that cannot be parsed is shown as ``<unparseable URL>``. ``redact_text`` does the same
for URLs embedded in free text (command lines, driver messages).

Options: the query string is ``key=value`` pairs, each key at most once. Whoever takes a URL
names every option it understands, and any other is a ``ConfigError`` naming the option and
the allowed ones. Options meant for a driver are forwarded only when listed explicitly
(:func:`redis_driver_options`), so a misspelt option fails at once instead of being ignored by
the driver or failing on first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import ConfigError

MASK = "***"

# Query options forwarded to redis-py (``redis.Redis.from_url``) by the Redis store and the
# Redis Streams router, besides their own. Left out on purpose: ``socket_timeout`` and
# ``timeout`` (the router and the store set these from their own options),
# ``retry_on_timeout``/``retry_on_error`` (the router retries each operation itself, so that a
# lost reply never makes a write happen twice) and ``decode_responses`` (both read bytes).
REDIS_DRIVER_OPTIONS: tuple[str, ...] = (
    "db",
    "username",
    "password",
    "client_name",
    "protocol",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_read_size",
    "health_check_interval",
    "max_connections",
)
# Only for rediss:// (a plain connection refuses them on first use).
REDIS_TLS_OPTIONS: tuple[str, ...] = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_check_hostname",
    "ssl_min_version",
)


def redis_driver_options(scheme: str) -> tuple[str, ...]:
    """The redis-py options a ``scheme://`` URL may carry (TLS ones for ``rediss`` only)."""
    return REDIS_DRIVER_OPTIONS + (REDIS_TLS_OPTIONS if scheme.lower() == "rediss" else ())


_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "credential",
    "signature",
)
_SECRET_NAMES = frozenset(
    {"pw", "pwd", "pass", "key", "auth", "sig", "authorization", "access_key"}
)


def is_secret_option(name: str) -> bool:
    """True for query option names that carry a secret (their values are never shown)."""
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


# ------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class ParsedURL:
    """A URL taken apart. ``str()`` and ``repr()`` are redacted; ``secret_url`` is not."""

    scheme: str
    host: str | None
    port: int | None
    path: str
    username: str | None
    password: str | None = field(repr=False)
    options: Mapping[str, str]
    secret_url: str = field(repr=False)

    @property
    def database(self) -> str | None:
        """``?database=`` or ``?db=``, else the path without slashes (Redis: ``/0``), else None."""
        for name in ("database", "db"):
            if self.options.get(name):
                return self.options[name]
        return self.path.strip("/") or None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value in the URL (for :func:`scrub`)."""
        values = [self.password or ""]
        values += [v for k, v in self.options.items() if is_secret_option(k)]
        return tuple(v for v in values if v)

    def driver_url(self, keep: Iterable[str] = ()) -> str:
        """The URL with only the options in ``keep`` -- credentials included: hand it to the
        driver, never show it."""
        wanted = set(keep)
        parts = urlsplit(self.secret_url)
        query = urlencode([(k, v) for k, v in self.options.items() if k in wanted])
        # Not urlunsplit: it writes unix:///path as unix:/path, which redis-py refuses.
        base = (
            f"{parts.scheme}://{parts.netloc}{parts.path}"
            if "://" in self.secret_url
            else parts._replace(query="", fragment="").geturl()
        )
        return f"{base}?{query}" if query else base

    def redacted(self) -> str:
        return redact(self.secret_url)

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"ParsedURL({self.redacted()!r})"


def parse_url(url: str, *, what: str = "URL", schemes: Iterable[str] | None = None) -> ParsedURL:
    """Takes a URL apart (see the module docstring); any problem is a ``ConfigError``.

    ``what`` names the URL in messages ("store URL", "router URL"); ``schemes``, when given,
    are the accepted schemes (lower case).
    """
    if not isinstance(url, str):
        raise ConfigError(f"{what} must be a string, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise ConfigError(f"{what} is empty")
    shown = redact(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{what} {shown!r}: {scrub(str(exc), text)}") from None
    scheme = parts.scheme.lower()
    if schemes is not None:
        allowed = tuple(schemes)
        if scheme not in allowed:
            expected = ", ".join(f"{s}://" for s in allowed)
            raise ConfigError(
                f"{what} {shown!r}: unknown scheme {parts.scheme!r}; expected {expected}"
            )
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(
            f"{what} {shown!r}: malformed query string (expected key=value&...)"
        ) from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options:
            raise ConfigError(f"{what} {shown!r}: option {key!r} given twice")
        options[key] = value
    return ParsedURL(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        path=parts.path,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        options=options,
        secret_url=text,
    )


def check_options(
    url: ParsedURL | str,
    allowed: Iterable[str],
    *,
    what: str = "URL",
    options: Mapping[str, str] | None = None,
    hint: str = "",
) -> None:
    """The one rule for options: anything not in ``allowed`` is a ``ConfigError`` naming it.

    ``options``: the options left to check (default: all of the URL's). ``hint`` is appended
    to the message.
    """
    left = options if options is not None else (url.options if isinstance(url, ParsedURL) else {})
    unknown = sorted(set(left) - set(allowed))
    if not unknown:
        return
    shown = url.redacted() if isinstance(url, ParsedURL) else redact(url)
    names = ", ".join(repr(n) for n in unknown)
    known = ", ".join(sorted(set(allowed))) or "none"
    plural = "s" if len(unknown) > 1 else ""
    raise ConfigError(
        f"{what} {shown!r}: unknown option{plural} {names}; allowed: {known}"
        + (f" ({hint})" if hint else "")
    )


# ------------------------------------------------------------------ redaction

_UNPARSEABLE = "<unparseable URL>"


def redact(url: str) -> str:
    """The URL with passwords and secret option values replaced by ``***``.

    Works on the text as written, so that a malformed URL is hidden too: the user info ends
    at the last ``@`` before the first ``=`` (a password with an unencoded ``/``, ``?`` or
    ``#`` still disappears whole).
    """
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return _UNPARSEABLE
    start = len(scheme) + 1 if scheme else 0
    if url.startswith("//", start):
        start += 2
    out = url
    first_equals = url.find("=", start)
    at = url.rfind("@", start, first_equals if first_equals >= 0 else len(url))
    if at >= 0 and not url.startswith("/", start):  # sqlite:///a@b.db has no user info
        user, colon, _ = url[start:at].partition(":")
        if colon:
            shown = f"{user}:{MASK}"
        elif scheme.lower() in ("http", "https"):
            shown = MASK  # https://TOKEN@host
        else:
            shown = url[start:at]  # a user name alone opens nothing
        out = url[:start] + shown + url[at:]
        start += len(shown) + 1
    query_at = out.find("?", start)
    if query_at < 0:
        return out
    query, hash_, fragment = out[query_at + 1 :].partition("#")
    return out[: query_at + 1] + _redact_query(query) + hash_ + fragment


def _redact_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        if eq and is_secret_option(unquote(name)):
            piece = f"{name}={MASK}"
        elif eq and "://" in unquote(value):  # a URL inside an option (backing=...)
            shown = redact(unquote(redact(value)))
            if shown != unquote(value):
                piece = f"{name}={shown}"
        pieces.append(piece)
    return "&".join(pieces)


_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (for command lines and driver messages)."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def scrub(text: str, *secrets_or_urls: str | ParsedURL | None) -> str:
    """``text`` with URLs redacted and the given secrets (or the secrets of the given URLs, in
    raw and percent-encoded form) replaced by ``***``."""
    values: set[str] = set()
    for item in secrets_or_urls:
        if item is None:
            continue
        if isinstance(item, ParsedURL) or "://" in item:
            try:
                parsed = item if isinstance(item, ParsedURL) else _lenient(item)
            except ConfigError:
                continue
            if parsed is not None:
                values.update(parsed.secrets)
        else:
            values.add(item)
    out = redact_text(text)
    for value in sorted(values, key=len, reverse=True):
        # Shorter ones cannot be replaced without mangling the message (URLs in it are
        # redacted above all the same).
        if len(value) < 3:
            continue
        for form in {value, quote(value, safe="")}:
            out = out.replace(form, MASK)
    return out


def _lenient(url: str) -> ParsedURL | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    password = unquote(parts.password) if parts.password is not None else None
    if password is None and parts.scheme.lower() in ("http", "https") and parts.username:
        password = unquote(parts.username)
    return ParsedURL(parts.scheme, None, None, parts.path, None, password, options, url)


__all__ = [
    "MASK",
    "REDIS_DRIVER_OPTIONS",
    "REDIS_TLS_OPTIONS",
    "ParsedURL",
    "check_options",
    "is_secret_option",
    "parse_url",
    "redact",
    "redact_text",
    "redis_driver_options",
    "scrub",
]
