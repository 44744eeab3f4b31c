"""cauldron-keygen: make a CURVE key pair for a broker, a client or a dispatcher.

    cauldron-keygen [--force] DIR NAME

Writes ``DIR/NAME.key`` (the public key: give it to the broker's ``curve_authorized``
folder, or to peers as ``curve_server_key`` if NAME is the broker) and ``DIR/NAME.key_secret``
(the public and the secret key, readable by its owner only: the ``curve_secret_key`` of a
broker or the ``curve_key`` of a peer), in the format of ``zmq.auth.create_certificates``.
DIR is created if needed; existing files are kept unless ``--force``. Exit statuses: see ``EXITS``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import zmq.auth

from .command import INTERRUPTED, new_parser, run

PROG = "cauldron-keygen"
EXITS = (("0", "both files written"), ("1", "the files cannot be written, or exist (one line on stderr)"),
         ("2", "bad arguments"), INTERRUPTED)


def parser() -> argparse.ArgumentParser:
    p = new_parser(PROG, "Write a CURVE key pair: DIR/NAME.key (public) and DIR/NAME.key_secret (public and "
                   "secret), as zmq.auth.create_certificates does.", EXITS)
    p.add_argument("directory", metavar="DIR", help="where to write the key files (created if needed)")
    p.add_argument("name", metavar="NAME", help="the key pair's name, e.g. broker, client1, dispatcher-ktest")
    p.add_argument("--force", action="store_true", help="replace existing key files of that name")
    return p


def generate(directory: "str | os.PathLike[str]", name: str, force: bool = False) -> tuple[Path, Path]:
    """Write the key pair; (public key file, secret key file). FileExistsError unless ``force``."""
    if not name or os.sep in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a usable key name")
    folder = Path(directory)
    public, secret = folder / f"{name}.key", folder / f"{name}.key_secret"
    if not force:
        for path in (public, secret):
            if path.exists():
                raise FileExistsError(f"{path} exists (use --force to replace it)")
    folder.mkdir(parents=True, exist_ok=True)
    old_mask = os.umask(0o077)  # the secret key file is its owner's alone
    try:
        made_public, made_secret = zmq.auth.create_certificates(folder, name)
    finally:
        os.umask(old_mask)
    os.chmod(made_public, 0o644)
    return Path(made_public), Path(made_secret)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: _generate(args), PROG, errors=(OSError, ValueError))


def _generate(args: argparse.Namespace) -> int:
    public, secret = generate(args.directory, args.name, args.force)
    print(f"public key  {public}")
    print(f"secret key  {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
