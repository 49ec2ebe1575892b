"""The tool users would pick instead: a plain dlt pipeline over the ZVM tasks API.

Runs with the dlt venv (``bench/.venv-dlt/bin/python bench/dlt_case.py ...``) and imports
neither ``etl`` nor ``bench``. What a user would write: one resource that logs in and makes
ONE ``GET /v1/tasks`` (requests, as dlt's own helpers use), ``write_disposition="merge"``
on ``TaskIdentifier``, everything else left to dlt's defaults, so the nested
``RelatedEntities`` lists become child tables (``tasks__related_entities__vpgs``...) and
dates stay the ``/Date(...)/`` text the ZVM sent.

Destinations: ``--destination postgres --credentials postgresql://...`` or
``--destination sqlite --credentials sqlite:///path`` (dlt's sqlalchemy destination).
Pipeline state goes to ``--pipelines-dir`` (a fresh temporary folder per run).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--destination", choices=["postgres", "sqlite"], required=True)
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no network here

    import dlt
    import requests

    @dlt.resource(name="tasks", write_disposition="merge", primary_key="TaskIdentifier")  # type: ignore[untyped-decorator]
    def tasks() -> Iterator[Any]:
        with requests.Session() as session:
            login = session.post(f"{args.url}/v1/session/add", auth=("admin", "zerto"))
            login.raise_for_status()
            answer = session.get(
                f"{args.url}/v1/tasks",
                headers={"x-zerto-session": login.headers["x-zerto-session"]},
            )
            answer.raise_for_status()
            yield answer.json()

    if args.destination == "postgres":
        destination: Any = dlt.destinations.postgres(credentials=args.credentials)
    else:
        destination = dlt.destinations.sqlalchemy(credentials=args.credentials)
    pipeline = dlt.pipeline(
        pipeline_name="zvm_tasks",
        destination=destination,
        dataset_name="zvm",
        pipelines_dir=args.pipelines_dir,
    )
    info = pipeline.run(tasks())
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main()
