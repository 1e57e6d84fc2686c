"""Render the shipped mosquitto config and ACL for one deployment.

    python -m tools.broker.render --prefix polewatch/v1 --port 8883 --certs /etc/mosquitto/certs \\
        --out /etc/mosquitto/conf.d/polewatch [--user mosquitto] [--persistence /var/lib/mosquitto]

``--certs`` must hold ``ca.crt`` (the deployment CA), ``server.crt`` and ``server.key``. Writes ``mosquitto.conf`` and
``acl`` into ``--out``; start the broker with ``mosquitto -c OUT/mosquitto.conf``. The templates beside this file use
``${name}`` placeholders (:class:`string.Template`), so a city can also substitute them by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from string import Template

from edge.transport.topics import check_prefix

TEMPLATES = Path(__file__).resolve().parent


def render(
    *,
    prefix: str,
    port: int,
    certs: Path,
    out: Path,
    user: str = "mosquitto",
    persistence: Path | None = None,
) -> Path:
    """Write ``mosquitto.conf`` and ``acl`` into ``out`` and return the config's path."""
    check_prefix(prefix)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} must be between 1 and 65535")
    out.mkdir(parents=True, exist_ok=True)
    acl = out / "acl"
    acl.write_text(Template((TEMPLATES / "acl.template").read_text()).substitute(prefix=prefix))
    conf = out / "mosquitto.conf"
    conf.write_text(
        Template((TEMPLATES / "mosquitto.conf.template").read_text()).substitute(
            acl_file=acl.resolve(),
            user=user,
            persistence=(
                f"persistence true\npersistence_location {persistence.resolve()}/"
                if persistence
                else "persistence false"
            ),
            port=port,
            certs=certs.resolve(),
        )
    )
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.broker.render", description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="polewatch/v1", help="topic prefix of the deployment")
    parser.add_argument("--port", type=int, default=8883, help="TLS listener port")
    parser.add_argument("--certs", type=Path, required=True, help="directory with ca.crt, server.crt, server.key")
    parser.add_argument("--out", type=Path, required=True, help="directory to write mosquitto.conf and acl into")
    parser.add_argument("--user", default="mosquitto", help="user mosquitto drops privileges to")
    parser.add_argument("--persistence", type=Path, default=None, help="directory for the broker's database")
    args = parser.parse_args(argv)
    missing = [name for name in ("ca.crt", "server.crt", "server.key") if not (args.certs / name).is_file()]
    if missing:
        sys.stderr.write(f"{args.certs}: missing {', '.join(missing)}\n")
        return 1
    try:
        conf = render(
            prefix=args.prefix,
            port=args.port,
            certs=args.certs,
            out=args.out,
            user=args.user,
            persistence=args.persistence,
        )
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"wrote {conf} and {conf.with_name('acl')}; start with: mosquitto -c {conf}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
