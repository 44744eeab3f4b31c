"""Configuration: the `[zmq]` INI section of a Cauldron configuration file.

A configuration is given as a file path, a :class:`configparser.ConfigParser` or None
(the defaults from the spec). Keys and defaults come from the spec (``CONFIG_DEFAULTS``).

Every error is a :class:`ConfigError` of one line naming where the value came from (the
file, or what overrode it), the section, the key and the value:
``broker.ini: [zmq] timeout = 'soon': not a number``. A key of a file's `[zmq]` that the
spec does not know is logged (WARNING, ``cauldron_proto.config``, once per file and key)
with the closest known key.
"""

from __future__ import annotations

import ast
import configparser
import difflib
import ipaddress
import logging
import os
import re
import socket
from typing import Any, Mapping, Union

from .protocol import CONFIG_DEFAULTS, CONFIG_SECTION

__all__ = ["ConfigLike", "ConfigError", "Configuration", "TCP_ADDRESS", "read_configuration", "address",
           "bind_address", "is_ipv6", "invalid", "unusable", "get_float", "get_bool", "get_int"]

log = logging.getLogger("cauldron_proto.config")

ConfigLike = Union[str, "os.PathLike[str]", configparser.RawConfigParser, None]
#: A tcp address: its host (a name, an IPv4 address, a bracketed IPv6 address, ``*``) and port
#: (a number, or ``*`` for one the system chooses). The one pattern the package parses them with.
TCP_ADDRESS = re.compile(r"^tcp://(?P<host>\[[^\]]*\]|[^/]*?):(?P<port>\d+|\*)$")
#: Hosts that bind every interface.
_EVERY_INTERFACE = frozenset({"*", "0.0.0.0", "[::]"})
_warned: set[tuple[str, str]] = set()  # (file, key) already warned about


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; one line naming the file or key."""


class Configuration(configparser.ConfigParser):
    """A ConfigParser that remembers where each `[zmq]` value came from (``origins``: key ->
    a file name, or what overrode it), for error messages that name it."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: dict[str, str] = {}

    def override(self, values: Mapping[str, Any], origin: str) -> None:
        """Set the `[zmq]` keys of ``values`` that are not None, noting ``origin`` for each."""
        given = {key: str(value) for key, value in values.items() if value is not None}
        self.read_dict({CONFIG_SECTION: given})
        self.origins.update(dict.fromkeys(given, origin))


def read_configuration(config: ConfigLike = None) -> Configuration:
    """A ConfigParser with every `[zmq]` key, defaults filled in from the spec.

    ``config`` is a path to an INI file, a ConfigParser (copied, defaults added) or None.
    A file must have a `[zmq]` section.
    """
    parser = Configuration()
    parser.read_dict({CONFIG_SECTION: dict(CONFIG_DEFAULTS)})
    if config is None:
        return parser
    if isinstance(config, configparser.RawConfigParser):
        parser.read_dict({s: dict(config.items(s, raw=True)) for s in config.sections()})
        parser.origins.update(getattr(config, "origins", {}))
        return parser
    path = os.fspath(config)
    from_file = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            from_file.read_file(handle, source=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: {exc.line.strip()!r} is outside any section "
                          f"(the keys go under [{CONFIG_SECTION}])") from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0]  # the line as repr() wrote it
        raise ConfigError(f"{path}, line {lineno}: cannot parse {ast.literal_eval(line).strip()!r}") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid INI file: {' '.join(str(exc).split())}") from None
    if not from_file.has_section(CONFIG_SECTION):
        found = ", ".join(f"[{s}]" for s in from_file.sections()) or "no section"
        raise ConfigError(f"{path}: no [{CONFIG_SECTION}] section (found {found})")
    parser.read_dict({s: dict(from_file.items(s, raw=True)) for s in from_file.sections()})
    own = list(from_file[CONFIG_SECTION].keys())
    parser.origins.update(dict.fromkeys(own, path))
    _warn_unknown(path, own)
    return parser


def _warn_unknown(path: str, keys: list[str]) -> None:
    for key in keys:
        if key in CONFIG_DEFAULTS or (path, key) in _warned:
            continue
        _warned.add((path, key))
        close = difflib.get_close_matches(key, list(CONFIG_DEFAULTS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(CONFIG_DEFAULTS)}"
        log.warning("%s: [%s] %s is not a configuration key and is ignored (%s)", path, CONFIG_SECTION, key, hint)


def invalid(config: configparser.RawConfigParser, key: str, reason: str) -> ConfigError:
    """The error for `[zmq]` ``key``'s value: one line naming where it came from, the key and the value."""
    value = config.get(CONFIG_SECTION, key, fallback="")
    origin = getattr(config, "origins", {}).get(key)
    return ConfigError(f"{origin + ': ' if origin else ''}[{CONFIG_SECTION}] {key} = {value!r}: {reason}")


def address(config: configparser.ConfigParser, key: str) -> str:
    """The address of ``key`` as written, the form peers connect to."""
    value = config.get(CONFIG_SECTION, key).strip()
    if "://" not in value:
        raise invalid(config, key, "not a ZMQ address (transport://...)")
    return value


def is_ipv6(value: str) -> bool:
    """Whether ``value`` is a tcp address with a bracketed IPv6 host (a socket needs ``ipv6`` on for it)."""
    match = TCP_ADDRESS.match(value or "")
    return match is not None and match["host"].startswith("[")


def unusable(value: str) -> str | None:
    """Why peers cannot connect to the tcp address ``value`` (a port out of range, a host that
    does not resolve), found at once rather than by a request that is never answered; None
    when it can be used (or is not tcp: ZMQ's connect reports what it cannot use)."""
    match = TCP_ADDRESS.match(value)
    if match is None:
        return None if "://" in value and not value.startswith("tcp://") else f"{value!r} is not a ZMQ address"
    host, port = match["host"], match["port"]
    if port != "*" and not 0 < int(port) < 65536:
        return f"{value}: port {port} is out of range (1 to 65535)"
    if host in _EVERY_INTERFACE or host.startswith("["):
        return None
    try:
        _resolve(host)
    except ConfigError as exc:
        return f"{value}: {exc}"
    return None


def bind_address(value: str) -> str:
    """The address to bind for a configured (connect-form) address.

    * ``*``, ``0.0.0.0`` (``[::]``: IPv6 too): every interface.
    * A literal IP (``127.0.0.1``, ``[::1]``): that interface alone, as written.
    * A network interface's name (``lo``, ``eth0``): that interface (ZMQ binds it).
    * A host name (``localhost``, ``obs1.example.org``): the address it resolves to (IPv4
      first), so the broker listens exactly where peers that connect by that name arrive,
      and nowhere else: a name never opens every interface. Without CURVE, an open broker
      is open to the network, so every interface is only bound when asked for with ``*``.
      (A name resolving to a loopback address, as Debian's ``127.0.1.1`` for the machine's
      own name, binds loopback: write ``*`` or the interface's IP to serve the network.)
      ConfigError when the name does not resolve.

    Other transports bind as written.
    """
    match = TCP_ADDRESS.match(value)
    if match is None:
        return value
    host, port = match["host"], match["port"]
    if host in _EVERY_INTERFACE:
        return value
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
        return value
    except ValueError:
        pass
    if host in {name for _, name in socket.if_nameindex()}:
        return value
    return f"tcp://{_resolve(host)}:{port}"


def _resolve(host: str) -> str:
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    found.sort(key=lambda entry: entry[0] != socket.AF_INET)
    family, *_, sockaddr = found[0]
    host = str(sockaddr[0])  # an IPv4 or IPv6 address (typeshed allows an int for other families)
    return f"[{host}]" if family == socket.AF_INET6 else host


def get_float(config: configparser.ConfigParser, key: str) -> float:
    try:
        return config.getfloat(CONFIG_SECTION, key)
    except ValueError:
        raise invalid(config, key, "not a number") from None


def get_int(config: configparser.ConfigParser, key: str) -> int:
    try:
        return config.getint(CONFIG_SECTION, key)
    except ValueError:
        raise invalid(config, key, "not an integer") from None


def get_bool(config: configparser.ConfigParser, key: str) -> bool:
    try:
        return config.getboolean(CONFIG_SECTION, key)
    except ValueError:
        raise invalid(config, key, "not yes/no") from None
