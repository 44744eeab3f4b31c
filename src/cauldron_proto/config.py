"""Configuration: the `[zmq]` INI section of a Cauldron configuration file.

A configuration is given as a file path, a :class:`configparser.ConfigParser` or None
(the defaults from the spec). Keys and defaults come from ``CONFIG_KEYS``.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
from typing import Union

from .protocol import CONFIG_DEFAULTS, CONFIG_SECTION

__all__ = ["ConfigLike", "ConfigError", "TCP_ADDRESS", "read_configuration", "address", "bind_address",
           "get_float", "get_bool", "get_int"]

ConfigLike = Union[str, "os.PathLike[str]", configparser.ConfigParser, None]
#: A tcp address: its host (a name, an IPv4 address, a bracketed IPv6 address, ``*``) and port
#: (a number, or ``*`` for one the system chooses). The one pattern the package parses them with.
TCP_ADDRESS = re.compile(r"^tcp://(?P<host>\[[^\]]*\]|[^/]*?):(?P<port>\d+|\*)$")


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; names the file or key."""


def read_configuration(config: ConfigLike = None) -> configparser.ConfigParser:
    """A ConfigParser with every `[zmq]` key, defaults filled in from the spec.

    ``config`` is a path to an INI file, a ConfigParser (copied, defaults added) or None.
    """
    parser = configparser.ConfigParser()
    parser.read_dict({CONFIG_SECTION: dict(CONFIG_DEFAULTS)})
    if config is None:
        return parser
    if isinstance(config, configparser.RawConfigParser):
        parser.read_dict({s: dict(config.items(s, raw=True)) for s in config.sections()})
        return parser
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid INI file: {exc}") from None
    return parser


def address(config: configparser.ConfigParser, key: str) -> str:
    """The address of ``key`` as written, the form peers connect to."""
    value = config.get(CONFIG_SECTION, key).strip()
    if "://" not in value:
        raise ConfigError(f"[{CONFIG_SECTION}] {key} = {value!r} is not a ZMQ address (transport://...)")
    return value


def bind_address(value: str) -> str:
    """The address to bind for a configured address.

    ``tcp://localhost:PORT`` binds the resolved loopback address; any other
    ``tcp://HOST:PORT`` binds ``tcp://*:PORT`` (all interfaces); other transports bind as written.
    """
    match = TCP_ADDRESS.match(value)
    if match is None:
        return value
    host, port = match["host"], match["port"]
    if host == "localhost":
        try:
            return f"tcp://{socket.gethostbyname('localhost')}:{port}"
        except OSError:
            return f"tcp://127.0.0.1:{port}"
    return f"tcp://*:{port}"


def get_float(config: configparser.ConfigParser, key: str) -> float:
    try:
        return config.getfloat(CONFIG_SECTION, key)
    except ValueError:
        raise ConfigError(f"[{CONFIG_SECTION}] {key} = {config.get(CONFIG_SECTION, key)!r} is not a number") from None


def get_int(config: configparser.ConfigParser, key: str) -> int:
    try:
        return config.getint(CONFIG_SECTION, key)
    except ValueError:
        raise ConfigError(f"[{CONFIG_SECTION}] {key} = {config.get(CONFIG_SECTION, key)!r} is not an integer") from None


def get_bool(config: configparser.ConfigParser, key: str) -> bool:
    try:
        return config.getboolean(CONFIG_SECTION, key)
    except ValueError:
        raise ConfigError(f"[{CONFIG_SECTION}] {key} = {config.get(CONFIG_SECTION, key)!r} is not yes/no") from None
