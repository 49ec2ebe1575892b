"""``python -m etl.dashboards``: regenerate the dashboards, or zip the Superset bundle.

``python -m etl.dashboards [DIRECTORY]`` (``make dashboards``) writes Grafana's files and
Superset's bundle under ``DIRECTORY`` (default ``dashboards/``) and removes the files there
that the generator no longer writes, so those directories are exactly its output.

``python -m etl.dashboards superset-zip OUT.zip`` zips ``dashboards/superset/bundle/`` for
Superset's import with the warehouse URL read from ``$ZVM_ETL_SUPERSET_DATABASE_URL``
(never from the command line, where the password would show in the process list).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from etl.dashboards.generate import generated_files, write_tree
from etl.dashboards.superset import write_bundle_zip

URL_ENV = "ZVM_ETL_SUPERSET_DATABASE_URL"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["superset-zip"]:
        url = os.environ.get(URL_ENV)
        if len(args) != 2 or not url:
            print(
                f"usage: {URL_ENV}=postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB "
                "python -m etl.dashboards superset-zip OUT.zip",
                file=sys.stderr,
            )
            return 2
        out = write_bundle_zip(Path("dashboards/superset/bundle"), url, Path(args[1]))
        print(f"Wrote {out}: it holds the database password, delete it after the import")
        return 0
    root = Path(args[0] if args else "dashboards")
    written = write_tree(generated_files(), root)
    print(f"Wrote {len(written)} files under {root}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
