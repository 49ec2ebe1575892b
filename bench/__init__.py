"""The benchmark harness of zvm-task-etl (``make bench``, ``make bench-quick``).

It is a measuring instrument, not part of the product: nothing in ``etl/``, ``zvm_simulator/``
or ``tests/`` imports it, and its extra tools (dlt, py-spy) live in a venv of their own,
``bench/.venv-dlt``. Modules:

- ``datasets``: realistic task histories rendered by ``zvm_simulator`` and cached on disk;
- ``fakezvm``: a fast fake ZVM that serves those bytes over loopback HTTP (own process);
- ``measure``: runs one case as a child process and records its wall time and peak RSS;
- ``handwritten``: the hand-written limit (parse, flatten, COPY / executemany into the
  product's tables);
- ``dlt_case``: the dlt pipeline (runs in the dlt venv, imports neither ``etl`` nor ``bench``);
- ``cases``: every case of the issue (first pass, scale, incremental, many ZVMs, start-up);
- ``profiles``: py-spy on the zvm-etl process and PostgreSQL's statement log, summarised;
- ``report``: the table on stdout and ``bench/results.md``;
- ``__main__``: the command line (``python -m bench --help``).
"""
