"""``python -m etl.dashboards [DIRECTORY]``: regenerate the dashboards (``make dashboards``).

Writes Grafana's files under ``DIRECTORY/grafana/`` (default ``dashboards/``) and removes
the files there that the generator no longer writes, so the directory is exactly its output.
"""

from __future__ import annotations

import sys
from pathlib import Path

from etl.dashboards.generate import generated_files, write_tree


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "dashboards")
    written = write_tree(generated_files(), root)
    print(f"Wrote {len(written)} files under {root}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
