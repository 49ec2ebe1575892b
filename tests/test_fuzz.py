"""Fuzzing (Hypothesis): nothing a ZVM or a user writes can crash the ETL.

* :func:`~etl.normalize.normalize_task` never raises: any JSON value, and real task
  records from the simulator (both wire styles, malformed ones included) with keys deleted,
  retyped, re-cased or duplicated, non-ASCII and surrogate text, integers beyond 64 bits and
  odd dates give a :class:`~etl.normalize.TaskRecord` that keeps every invariant the
  warehouse relies on, or a :class:`~etl.normalize.Rejected` with a reason.
* The decoder of a ``GET /v1/tasks`` answer (:meth:`~etl.zvm.client.ZvmClient.fetch_task_list`:
  spool, shape check, streaming parse) raises nothing but
  :class:`~etl.errors.ZvmResponseError` for arbitrary bytes, truncated or mutated real
  answers, and JSON that is not an array; a valid array decodes to exactly what it holds,
  however the body is split into chunks on the wire.
* :func:`~etl.config.load_config` raises nothing but :class:`~etl.errors.ConfigError`
  for any text.

Every test is derandomized (the same examples on every run, no example database) and has
no deadline: CI is stable and nothing races the clock.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from etl.config import Config, ZvmConfig, load_config
from etl.errors import ConfigError, ZvmResponseError
from etl.normalize import (
    IDENTIFIER_MAX,
    STATE_NAMES,
    TYPE_MAX,
    Rejected,
    TaskRecord,
    normalize_task,
)
from etl.zvm.client import ZvmClient
from tests.test_normalize import zerto_example
from zvm_simulator import Simulator

PASSWORD = "fuzz-Pa55word"
FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- real records ------------------------------------------------------------------------

WIRE_STYLES: list[dict[str, Any]] = [
    {"date_style": "windows", "key_case": "pascal"},
    {"date_style": "appliance", "key_case": "camel", "include_task_identifier": False},
]


START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@functools.cache
def real_bodies() -> tuple[bytes, ...]:
    """``GET /v1/tasks`` answers of the simulator, as sent: one per wire style, a fifth of
    the tasks malformed (bad Started, State outside 0-7, no identifier)."""
    bodies = []
    for style in WIRE_STYLES:
        # A fixed seed and simulated now: the same tasks on every run (only the port in
        # the links differs), so the derandomized examples are the same too.
        options: dict[str, Any] = {"seed": 11, "speed": 0, "days": 0.5, "start": START}
        options["tasks_per_hour"] = 30
        options |= style
        with Simulator(password=PASSWORD, **options) as sim:
            sim.faults.malformed_rate = 0.2
            with httpx.Client(base_url=sim.url) as http:
                login = http.post("/v1/session/add", auth=(sim.settings.username, PASSWORD))
                session = {"x-zerto-session": login.headers["x-zerto-session"]}
                answer = http.get("/v1/tasks", headers=session)
                answer.raise_for_status()
                bodies.append(answer.content)
    return tuple(bodies)


@functools.cache
def real_tasks() -> tuple[dict[str, Any], ...]:
    tasks = tuple(task for body in real_bodies() for task in json.loads(body))
    assert len(tasks) > 20
    return tasks


def test_the_real_records_are_varied() -> None:
    """The fuzzed records start from tasks that load and tasks that are rejected."""
    results = [normalize_task(copy.deepcopy(task)) for task in real_tasks()]
    assert any(isinstance(r, TaskRecord) for r in results)
    assert any(isinstance(r, Rejected) for r in results)
    assert any("TaskIdentifier" in task for task in real_tasks())
    assert any("taskIdentifier" not in task and "link" in task for task in real_tasks())


# ---- values ------------------------------------------------------------------------------

ODD_TEXT = [
    "",
    " ",
    "\u0000",
    "nul\u0000inside",
    "\ud800",
    "lone \udfff low",
    "Zürich – 東京 – Ελλάδα",
    "\u202eRTL override",
    "😀" * 40,
    "x" * 300,
    "a.b",
    ":",
    ".",
    "00000000-0000-0000-0000-000000000000:11111111-1111-1111-1111-111111111111",
]
HUGE_NUMBERS = [2**31, -(2**31) - 1, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**40)]
ODD_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.5, 99.99]
ODD_DATES = [
    "/Date()/",
    "/Date(abc)/",
    "/Date(1.5)/",
    "/Date(-62135596800000)/",
    "/Date(253402300800000)/",
    "/Date(99999999999999999999)/",
    "/Date(-99999999999999999999)/",
    "/Date(1520423876840+9999)/",
    "/Date(1520423876840-2400)/",
    "/Date(1520423876840+03)/",
    "\\/Date(1520423876840)\\/",
    "/Date(1520423876840)",
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.9999999Z",
    "9999-12-31T23:59:59-14:00",
    "2024-02-30T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2024-01-01T00:00:00+25:00",
    "2024-01-01T24:00:00Z",
    "2024-13-45T25:61:00Z",
    "2024-01-01",
    "20240101T000000Z",
    "2024-01-01T00:00:00.123456789012Z",
    "  2024-01-01T00:00:00Z  ",
    "now",
    "1520423876840",
]

windows_dates = st.builds(
    "/Date({}{})/".format,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["", "+0000", "-0530", "+1400", "+9959", "-", "Z"]),
)
iso_dates = st.builds(
    lambda moment, zone: moment.isoformat() + zone,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from(["", "Z", "+00:00", "-23:59", "+14:00", "+05:45"]),
)
texts = st.text(max_size=20) | st.sampled_from(ODD_TEXT)
numbers = (
    st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from(HUGE_NUMBERS)
    | st.floats()
    | st.sampled_from(ODD_FLOATS)
)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=16,
)
odd_values = (
    json_values | windows_dates | iso_dates | st.sampled_from(ODD_DATES) | st.sampled_from(ODD_TEXT)
)

# ---- the normalizer ----------------------------------------------------------------------


def check_normalized(raw: object) -> TaskRecord | Rejected:
    """normalize_task(raw), with every property a result must have."""
    result = normalize_task(raw)
    if isinstance(result, Rejected):
        assert isinstance(result.reason, str) and result.reason.strip()
        json.loads(result.raw)  # kept as JSON text in rejected_tasks
        if result.task_identifier is not None:
            assert 0 < len(result.task_identifier) <= IDENTIFIER_MAX
        return result
    assert isinstance(result, TaskRecord), type(result)
    assert 0 < len(result.task_identifier) <= IDENTIFIER_MAX
    assert result.task_identifier == result.task_identifier.strip()
    assert result.task_id and result.task_identifier.startswith(result.task_id)
    if result.site_identifier is not None:
        assert result.task_identifier == f"{result.task_id}.{result.site_identifier}"
    assert 0 < len(result.type) <= TYPE_MAX
    assert result.state in STATE_NAMES
    assert result.progress is None or -(2**31) <= result.progress < 2**31
    assert result.is_cancellable is None or isinstance(result.is_cancellable, bool)
    assert result.started_at.utcoffset() == timedelta(0)
    assert result.started_at.year >= 1900
    if result.completed_at is None:
        assert result.duration_seconds is None and result.completed_utc_offset_minutes is None
    else:
        assert result.completed_at.utcoffset() == timedelta(0)
        expected = (result.completed_at - result.started_at).total_seconds()
        assert result.duration_seconds == expected
    for offset in (result.started_utc_offset_minutes, result.completed_utc_offset_minutes):
        assert offset is None or abs(offset) < 24 * 60
    for entities in (result.vpgs, result.hosts, result.sites, result.flr_sessions):
        identifiers = [identifier for identifier, _ in entities]
        assert len(set(identifiers)) == len(identifiers)
        assert all(0 < len(i) <= IDENTIFIER_MAX for i in identifiers)
        assert all(href is None or isinstance(href, str) for _, href in entities)
    assert b"\\u0000" not in result.payload  # PostgreSQL cannot store it
    assert hashlib.sha256(result.payload).hexdigest() == result.payload_hash
    # The stored payload is the record: normalizing it again gives the same task.
    assert normalize_task(orjson.loads(result.payload)) == result
    return result


@FUZZ
@given(json_values)
@example({"TaskIdentifier": 2**64})
@example([math.nan])
def test_any_json_value_is_normalized_or_rejected(raw: Any) -> None:
    check_normalized(raw)


KeyPath = tuple[str | int, ...]


def node_paths(value: Any, prefix: KeyPath = ()) -> Iterator[KeyPath]:
    """The path of every value inside ``value`` (keys of objects, indexes of lists)."""
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        yield (*prefix, key)
        yield from node_paths(child, (*prefix, key))


def recased(key: str) -> list[str]:
    return [key.lower(), key.upper(), key.swapcase(), key[:1].lower() + key[1:], f" {key}"]


def perturb(data: st.DataObject, task: dict[str, Any]) -> dict[str, Any]:
    """1-5 random changes anywhere in ``task``: delete, replace, wrap, re-case a key, or
    add a second spelling of a key with another value."""
    for _ in range(data.draw(st.integers(min_value=1, max_value=5), label="changes")):
        paths = list(node_paths(task))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent: Any = task
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        change = data.draw(
            st.sampled_from(["delete", "replace", "replace", "wrap", "recase", "duplicate"]),
            label="change",
        )
        if change == "delete":
            del parent[key]
        elif change == "replace":
            parent[key] = data.draw(odd_values, label="value")
        elif change == "wrap":
            value = parent[key]
            parent[key] = data.draw(st.sampled_from([[value], {"value": value}, str(value)]))
        elif isinstance(key, str):
            spelling = data.draw(st.sampled_from(recased(key)), label="spelling")
            if change == "recase":
                parent[spelling] = parent.pop(key)
            else:
                parent[spelling] = data.draw(odd_values, label="second value")
    return task


real_task = st.deferred(lambda: st.sampled_from(real_tasks())).map(copy.deepcopy)


@FUZZ
@given(real_task, st.data())
def test_perturbed_real_records_are_normalized_or_rejected(
    task: dict[str, Any], data: st.DataObject
) -> None:
    check_normalized(perturb(data, task))


@FUZZ
@given(real_task, st.sampled_from(["Started", "Completed"]), windows_dates | iso_dates)
@example(zerto_example(), "Started", "/Date(99999999999999999999)/")
@example(zerto_example(), "Completed", "0001-01-01T00:00:00Z")
def test_any_date_is_read_or_rejected(task: dict[str, Any], name: str, date: str) -> None:
    key = next((k for k in task if k.lower() == name.lower()), name)
    task[key] = date
    result = check_normalized(task)
    if isinstance(result, TaskRecord) and name == "Started":
        assert datetime(1900, 1, 1, tzinfo=UTC) <= result.started_at


# ---- the /v1/tasks decoder ---------------------------------------------------------------

ZVM = ZvmConfig(
    name="fuzz",
    url="http://zvm.test",
    username="svc",
    password=PASSWORD,  # type: ignore[arg-type]  # pydantic makes it a SecretStr
    retry_for="0s",  # type: ignore[arg-type]  # pydantic reads the duration
)


class Chunks(httpx.SyncByteStream):
    """A body sent in the given pieces, the way a network delivers it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def split(body: bytes, sizes: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes:
        chunks.append(body[at : at + size])
        at += size
    return [*chunks, body[at:]]


def decode(body: bytes, sizes: list[int] | None = None, content_type: str = "") -> list[Any]:
    """What ``fetch_task_list`` makes of ``body`` (sent in pieces of ``sizes``), iterated."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/session/add":
            return httpx.Response(200, headers={"x-zerto-session": "fuzz-session"})
        if request.method == "DELETE":  # the logout
            return httpx.Response(204)
        assert request.url.path == "/v1/tasks"
        headers = {"Content-Type": content_type or "application/json; charset=utf-8"}
        return httpx.Response(200, headers=headers, stream=Chunks(split(body, sizes or [])))

    with ZvmClient(ZVM, transport=httpx.MockTransport(handler)) as client:
        return list(client.fetch_task_list())


def decode_or_error(body: bytes, sizes: list[int] | None = None) -> list[Any] | ZvmResponseError:
    """The decoded items, or the ZvmResponseError; any other exception fails the test."""
    try:
        return decode(body, sizes)
    except ZvmResponseError as error:
        assert error.zvm == "fuzz" and error.url == "http://zvm.test"
        assert str(error).startswith("ZVM fuzz at http://zvm.test answered GET /v1/tasks")
        return error


@st.composite
def damaged_bodies(draw: st.DrawFn) -> bytes:
    """A real answer truncated, or with bytes replaced, inserted or deleted."""
    body = draw(st.sampled_from(real_bodies()))
    how = draw(st.sampled_from(["truncate", "replace", "insert", "delete"]))
    at = draw(st.integers(min_value=0, max_value=len(body)))
    if how == "truncate":
        return body[:at]
    piece = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(list(b'[]{}",:\\')).map(bytes))
    if how == "replace":
        return body[:at] + piece + body[at + len(piece) :]
    if how == "insert":
        return body[:at] + piece + body[at:]
    return body[:at] + body[at + len(piece) :]


not_arrays = st.one_of(
    json_values.filter(lambda v: not isinstance(v, list)).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ),
    st.sampled_from(
        [
            b"",
            b"  \n",
            b"null",
            b"{}",
            b'{"tasks": []}',
            b'"[]"',
            b"<html>[]</html>",
            b"\xef\xbb\xbf",
        ]
    ),
)


@FUZZ
@given(st.binary(max_size=200) | damaged_bodies() | not_arrays)
@example(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}")  # was a RecursionError
@example(b'["\\ud800", ' + b"[" * 5000 + b"]" * 5000 + b"]")  # was a RecursionError
@example(b'[{"a": ' + b"1" * 5000 + b"}]")
@example(b"[1e400]")
@example(b"[NaN]")
@example(b'["\xff"]')
@example(b'["\\ud800", "\xff"]')
def test_any_body_decodes_or_raises_only_zvm_response_error(body: bytes) -> None:
    result = decode_or_error(body)
    if isinstance(result, list):
        for item in result:
            check_normalized(item)


arrays = st.lists(json_values, max_size=6)


@FUZZ
@given(arrays, st.booleans(), st.lists(st.integers(min_value=0, max_value=40), max_size=20))
@example([{"Progress": 2**64}, "x"], True, [])  # was an "integer overflow" of the whole answer
@example([{"Type": "\ud800"}], True, [1] * 12)  # an escape split over many small chunks
@example([2**70], True, [1] * 30)  # a long number split over many small chunks
def test_a_valid_array_decodes_to_what_it_holds_in_any_chunks(
    values: list[Any], ascii_only: bool, sizes: list[int]
) -> None:
    if any(isinstance(v, float) and not math.isfinite(v) for v in leaves(values)):
        return  # NaN and Infinity are not JSON
    text = json.dumps(values, ensure_ascii=ascii_only, allow_nan=False)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escape it
        body = json.dumps(values, allow_nan=False).encode()
    assert decode(body) == json.loads(body)
    assert decode(body, sizes) == json.loads(body)


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for child in value.values():
            yield from leaves(child)
    elif isinstance(value, list):
        for child in value:
            yield from leaves(child)
    else:
        yield value


@FUZZ
@given(st.data())
def test_a_real_answer_decodes_the_same_in_any_chunks(data: st.DataObject) -> None:
    body = data.draw(st.sampled_from(real_bodies()))
    sizes = data.draw(st.lists(st.integers(min_value=0, max_value=3000), max_size=30))
    assert decode(body, sizes) == json.loads(body)


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    """.NET may start a body with one; the answer is still the array it holds."""
    body = real_bodies()[0]
    assert decode(b"\xef\xbb\xbf" + body) == json.loads(body)


def test_a_number_beyond_64_bits_rejects_its_record_not_the_answer() -> None:
    loadable = [t for t in real_tasks() if isinstance(normalize_task(t), TaskRecord)]
    tasks = copy.deepcopy(loadable[:3])
    tasks[1]["Extra"] = 2**64 + 1
    decoded = decode(json.dumps(tasks).encode())
    assert decoded == tasks
    results = [normalize_task(task) for task in decoded]
    assert isinstance(results[0], TaskRecord) and isinstance(results[2], TaskRecord)
    assert isinstance(results[1], Rejected) and "cannot be stored as JSON" in results[1].reason


# ---- the configuration loader ------------------------------------------------------------

CONFIG_KEYS = ["warehouse", "zvms", "sync", "url", "name", "username", "password", "auth"]
CONFIG_KEYS += ["interval", "backfill_since", "retention_warning", "verify_tls", "client_secret"]
config_like = st.recursive(
    scalars | st.sampled_from(["${UNSET}", "$$", "${", "https://zvm:9669", "2024-01-31", "5m"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(CONFIG_KEYS) | texts, children, max_size=4)
    ),
    max_leaves=12,
)
yaml_text = st.one_of(
    st.text(alphabet=string.printable + "ü東\t", max_size=120),
    config_like.map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
    st.sampled_from(["? [a]\n: 1\n", "a: !!int x\n", "a: !!python/name:os.system\n", "*x\n"]),
)


def load(path: Path, text: str) -> Config | ConfigError:
    try:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        return ConfigError("unwritable")
    try:
        return load_config(path, env={"SET": "x"})
    except ConfigError as error:
        assert error.problems and all(p.startswith(f"{path}: ") for p in error.problems)
        return error


@settings(
    FUZZ, suppress_health_check=[*FUZZ.suppress_health_check, HealthCheck.function_scoped_fixture]
)
@given(yaml_text)
@example("sync:\n  backfill_since: 2024-13-45\n")  # was a ValueError
@example("? [a, b]\n: 1\n")  # was a TypeError
@example("a: " + "[" * 3000 + "]" * 3000)  # was a RecursionError
def test_any_text_loads_or_raises_only_config_error(tmp_path: Path, text: str) -> None:
    load(tmp_path / "config.yaml", text)
