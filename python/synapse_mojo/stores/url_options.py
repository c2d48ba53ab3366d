"""Store URL schemes and the readers of their query options, shared by every backend.

    opts = dict(parse_url(url, what="store URL").options)
    read_only = take_flag(opts, "read_only", False, url)
    timeout = take_number(opts, "timeout", 30.0, url, minimum=0.1)
    reject_unknown(opts, url, ("read_only", "timeout"))   # anything left is a ConfigError

Each reader pops the option it reads, so what is left at the end is what nobody understood.
The backends import this module, never ``stores.url`` (which imports the backends to open
them); errors show the URL redacted (:func:`synapse_mojo._urls.redact`).
"""

from __future__ import annotations

from collections.abc import Mapping

from .._urls import check_options, redact
from ..errors import ConfigError

SQLITE_SCHEMES = ("sqlite",)
NEO4J_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def take_flag(options: dict[str, str], key: str, default: bool, url: str) -> bool:
    """Pops a boolean option (1/0, true/false, yes/no, on/off)."""
    if key not in options:
        return default
    value = options.pop(key).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"store URL {redact(url)!r}: {key}={value!r} is not a boolean")


def take_number(
    options: dict[str, str],
    key: str,
    default: float,
    url: str,
    *,
    integer: bool = False,
    minimum: float = 0,
) -> float:
    """Pops a numeric option, checked against ``minimum``."""
    if key not in options:
        return default
    raw = options.pop(key)
    try:
        value: float = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"store URL {redact(url)!r}: {key}={raw!r} is not {kind}") from None
    if value < minimum:
        raise ConfigError(f"store URL {redact(url)!r}: {key} must be >= {minimum}")
    return value


def reject_unknown(options: Mapping[str, str], url: str, known: tuple[str, ...]) -> None:
    """Options left over after a backend took its own are an error (``_urls.check_options``)."""
    check_options(url, known, what="store URL", options=options)
