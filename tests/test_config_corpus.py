"""A corpus of broken configuration files, each refused with its own clear message.

Every file in ``tests/configs/bad/`` holds one mistake a user makes (several, for
``several_problems.yaml``) and says in its header what the loader must answer::

    # expect: sync.interval: '5 minutes' is not a duration
    # never: hunter2

Each ``expect`` line is a fragment of exactly one reported problem, and there are exactly
as many problems as ``expect`` lines: a file with several mistakes reports all of them in
one :class:`~etl.errors.ConfigError`, each as ``file: key: problem``. A ``never`` line is
text no problem may contain (a secret written in the file); the password the files read
from the environment must never appear either. ``zvm-etl config check`` exits 2 with every
problem on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from etl.cli import EXIT_CONFIG, cli
from etl.config import load_config
from etl.errors import ConfigError

CORPUS = Path(__file__).parent / "configs" / "bad"
SECRET = "corpus-Pa55word-5d1c"
ENV = {"ZVM_PASSWORD": SECRET}
"""The environment the files are loaded with: ZVM_PASSWORD is set, nothing else is."""


@dataclass(frozen=True)
class Case:
    path: Path
    expect: list[str]
    never: list[str]


def read_case(path: Path) -> Case:
    """The ``# expect:`` and ``# never:`` lines of a file's leading comment block."""
    expect: list[str] = []
    never: list[str] = []
    # Latin-1 reads any byte: one file of the corpus is deliberately not UTF-8.
    for line in path.read_bytes().decode("latin-1").splitlines():
        if not line.startswith("#"):
            break
        tag, _, value = line.lstrip("# ").partition(":")
        if tag == "expect":
            expect.append(value.strip())
        elif tag == "never":
            never.append(value.strip())
    return Case(path, expect, never)


CASES = [read_case(path) for path in sorted(CORPUS.glob("*.yaml"))]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    error = caught.value
    assert str(error) == "\n".join(error.problems), "the message lists every problem"
    return error.problems


def test_the_corpus_covers_the_common_mistakes() -> None:
    names = {case.path.stem for case in CASES}
    assert len(CASES) >= 15, names
    assert {"empty", "several_problems", "yaml_syntax_error", "top_level_list"} <= names
    for case in CASES:
        assert case.expect, f"{case.path.name} has no '# expect:' line"


@pytest.mark.parametrize("case", CASES, ids=[case.path.stem for case in CASES])
def test_each_bad_file_is_refused_with_its_message(case: Case) -> None:
    problems = problems_of(case.path)
    prefix = f"{case.path}: "
    assert all(problem.startswith(prefix) for problem in problems), problems
    # One problem per expected fragment: nothing missing, nothing extra, no duplicate.
    assert len(problems) == len(case.expect), problems
    for fragment in case.expect:
        matching = [p for p in problems if fragment in p.removeprefix(prefix)]
        assert len(matching) == 1, f"{fragment!r} should be in exactly one of {problems}"
    for problem in problems:
        assert SECRET not in problem
        for text in case.never:
            assert text not in problem
        # No Python or pydantic internals leak into what a user reads.
        for jargon in ("Traceback", "ValidationError", "instance of", "[type=", "pydantic"):
            assert jargon not in problem, problem


def test_several_problems_come_in_one_error_as_file_key_problem() -> None:
    path = CORPUS / "several_problems.yaml"
    problems = problems_of(path)
    assert len(problems) == 7
    keys = [problem.removeprefix(f"{path}: ").split(": ", 1)[0] for problem in problems]
    assert sorted(keys) == sorted(
        [
            "zvms[0] (nyc).url",
            "zvms[0] (nyc).timeout",
            "zvms[1].password",
            "zvms[1] (lon).verify_tsl",
            "sync.interval",
            "sync.retention_warning",
            "schedule",
        ]
    )


def test_a_truly_empty_file_is_refused_like_a_comment_only_one(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"")
    assert problems_of(path) == [
        f"{path}: the configuration is empty: it needs at least a zvms list "
        "(copy config.example.yaml and edit it)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Each of these made the loader crash with a Python exception instead of a message.
        ("? [a, b]\n: 1\n", "invalid YAML at line 1, column 3: a key must be a name"),
        ("zvms: !!int many\n", "invalid YAML: invalid literal for int()"),
        ("zvms: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML: nested too deeply"),
        ("sync:\n  backfill_since: 2024-02-30\n", "sync.backfill_since: '2024-02-30' is not"),
        ("1: x\n", "(top level): the key 1 is not a name"),
    ],
    ids=["list-as-key", "bad-tag", "deep-nesting", "february-30", "number-as-key"],
)
def test_odd_yaml_is_a_config_error_not_a_crash(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    problems = problems_of(path)
    assert any(expected in problem for problem in problems), problems


def test_config_check_exits_2_listing_every_problem() -> None:
    path = CORPUS / "several_problems.yaml"
    expected = read_case(path).expect
    runner = CliRunner(env={"ZVM_ETL_WAREHOUSE_URL": None, **ENV})
    result = runner.invoke(cli, ["--config", str(path), "config", "check"])
    assert result.exit_code == EXIT_CONFIG == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Configuration error:\n")
    for fragment in expected:
        assert fragment in result.stderr
    assert SECRET not in result.output


def test_the_installed_command_exits_2_too() -> None:
    """The real ``zvm-etl`` process: no traceback, status 2, the problem on stderr."""
    path = CORPUS / "backfill_since_bad_date.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZVM_ETL_")} | ENV
    done = subprocess.run(
        [sys.executable, "-m", "etl", "--config", str(path), "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{path}: sync.backfill_since: '2024-13-45' is not a date" in done.stderr
