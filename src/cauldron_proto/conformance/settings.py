"""What the runner knows of the implementation under test, and what a case may require of it."""

from __future__ import annotations

import msgspec

__all__ = ["Settings", "needs"]


class Settings(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the runner knows of the implementation under test: a broker's addresses, or
    (dispatcher suite) the addresses the runner bound and what it learned of the dispatcher."""

    router: str | None = None
    publish: str | None = None
    subscribe: str | None = None
    lookup: str | None = None
    heartbeat_timeout: float | None = None
    service: str | None = None
    dispatcher: str | None = None
    keyword: str | None = None
    keyword_type: str | None = None
    enumerated: str | None = None
    write_keyword: str | None = None
    write_value: str | None = None
    refuse_keyword: str | None = None
    refuse_value: str | None = None
    read_command: str | None = None
    write_command: str | None = None
    monitor_command: str | None = None

    def value(self, name: str) -> str | None:
        found = getattr(self, name, None)
        return None if found is None else str(found)


#: What a run must be given (or have learned) for a case that requires a setting.
_NEEDS = {"write_keyword": "--write KEYWORD=VALUE", "write_value": "--write KEYWORD=VALUE",
          "refuse_keyword": "--refuse KEYWORD=VALUE", "refuse_value": "--refuse KEYWORD=VALUE",
          "keyword": "a keyword (the dispatcher enumerated none)",
          "keyword_type": "a keyword (the dispatcher enumerated none)",
          "enumerated": "an enumerated keyword (the dispatcher identified none)",
          "read_command": "--read CMD", "write_command": "--write CMD", "monitor_command": "--monitor CMD"}


def needs(setting: str) -> str:
    """The skip reason for a case that requires a setting the run does not have."""
    return "needs " + _NEEDS.get(setting, "--" + setting.replace("_", "-"))
