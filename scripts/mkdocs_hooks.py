"""MkDocs hooks: what the documentation site draws from the package when it is built.

- ``<!-- generated: config-keys -->`` on a page becomes the table of every ``[zmq]`` key, its
  default and its meaning, from :data:`cauldron_proto.CONFIG_KEYS` (the spec's), so the
  configuration page never goes stale; ``<!-- generated: limit-keys -->`` the same table of
  the limits alone (the keys named ``max_*``).
- A link to a file outside ``docs/`` (``[spec](../spec/protocol.yaml)``, as the generated
  protocol page has) is not a page of the site: it becomes the link text and the file's
  path in the repository.
- The docstrings are written for ``help()`` and Sphinx: their cross-reference roles
  (``:class:`~.registry.Registry` ``) are shown as the name in code, without the role.
"""

from __future__ import annotations

import re

CONFIG_KEYS_MARK = "<!-- generated: config-keys -->"
LIMIT_KEYS_MARK = "<!-- generated: limit-keys -->"
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>~?\.?")
_OUTSIDE_LINK = re.compile(r"\[([^\]]+)\]\(((?:\.\./)+)([^)#\s]+)\)")


def config_table(limits_only: bool = False) -> str:
    """The Markdown table of every configuration key (or every limit): name, default, meaning."""
    from cauldron_proto import CONFIG_KEYS

    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, key in CONFIG_KEYS.items():
        if limits_only and not name.startswith("max_"):
            continue
        default = f"`{key.default}`" if key.default else "(empty)"
        meaning = key.description.removeprefix("limit: ") if limits_only else key.description
        rows.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(rows)


def outside_links(markdown: str, depth: int) -> str:
    """Links that climb out of ``docs/`` (more ``../`` than the page is deep) as plain text."""

    def plain(match: re.Match[str]) -> str:
        text, ups, path = match.groups()
        if ups.count("../") <= depth:
            return match.group(0)
        return f"{text} (`{path}` in the repository)"

    return _OUTSIDE_LINK.sub(plain, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    if CONFIG_KEYS_MARK in markdown:
        markdown = markdown.replace(CONFIG_KEYS_MARK, config_table())
    if LIMIT_KEYS_MARK in markdown:
        markdown = markdown.replace(LIMIT_KEYS_MARK, config_table(limits_only=True))
    return outside_links(markdown, page.file.src_uri.count("/"))


def on_page_content(html: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    return _ROLE.sub("<code>", html)
