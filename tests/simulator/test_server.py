"""The ZVM simulator as a server: auth (sessions, Keycloak), request log, start/stop, TLS,
serve_forever. Everything over real loopback HTTP with httpx; clocks frozen (speed 0)."""

from __future__ import annotations

import base64
import os
import re
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.clocks import ManualTime
from zvm_simulator import Faults, RequestRecord, Simulator, SimulatorSettings, serve_forever

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOKEN_PATH = "/auth/realms/zerto/protocol/openid-connect/token"
LOGOUT_PATH = "/auth/realms/zerto/protocol/openid-connect/logout"
DENIED = {"Message": "Authorization has been denied for this request."}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def make(**overrides: Any) -> Simulator:
    settings: dict[str, Any] = {"seed": 5, "speed": 0, "start": START, "days": 0.5}
    settings.update(overrides)
    return Simulator(**settings)


@pytest.fixture
def session_sim() -> Iterator[Simulator]:
    with make() as sim:
        yield sim


@pytest.fixture
def keycloak_sim() -> Iterator[Simulator]:
    with make(auth="keycloak", client_secret="s3cret", token_lifetime=300) as sim:
        yield sim


def login(client: httpx.Client) -> dict[str, str]:
    response = client.post("/v1/session/add", auth=("admin", "zerto"))
    assert response.status_code == 200
    return {"x-zerto-session": response.headers["x-zerto-session"]}


def token(client: httpx.Client, **form: str) -> httpx.Response:
    return client.post(TOKEN_PATH, data=form)


def password_grant(client: httpx.Client) -> dict[str, Any]:
    response = token(
        client, grant_type="password", client_id="zerto-client", username="admin", password="zerto"
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


# ---- session mode ------------------------------------------------------------------------


def test_session_login_returns_header_and_empty_body(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        response = client.post(
            "/v1/session/add", auth=("admin", "zerto"), json={"AuthenticationMethod": 1}
        )
        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["content-length"] == "0"
        assert UUID.match(response.headers["x-zerto-session"])
        tasks = client.get(
            "/v1/tasks", headers={"x-zerto-session": response.headers["x-zerto-session"]}
        )
        assert tasks.status_code == 200


@pytest.mark.parametrize("path", ["/v1/session/Add", "/V1/SESSION/ADD", "/v1/session/add/"])
def test_session_login_path_is_case_insensitive(session_sim: Simulator, path: str) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        response = client.post(path, auth=("admin", "zerto"))
        assert response.status_code == 200
        assert "x-zerto-session" in response.headers


@pytest.mark.parametrize(
    "auth", [("admin", "wrong"), ("someone", "zerto"), None], ids=["password", "user", "none"]
)
def test_session_login_refuses_bad_credentials(
    session_sim: Simulator, auth: tuple[str, str] | None
) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        response = client.post("/v1/session/add", auth=auth or httpx.USE_CLIENT_DEFAULT)
        assert response.status_code == 401
        assert response.json() == DENIED
        assert "x-zerto-session" not in response.headers


def test_session_login_with_garbage_authorization_header(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        for header in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x"):
            response = client.post("/v1/session/add", headers={"Authorization": header})
            assert response.status_code == 401


@pytest.mark.parametrize("path", ["/v1/tasks", "/v1/tasks/types", "/v1/tasks/abc.def"])
def test_api_without_session_is_refused(session_sim: Simulator, path: str) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        for headers in ({}, {"x-zerto-session": "not-a-session"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json() == DENIED
            assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_session_delete_ends_the_session(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        headers = login(client)
        assert client.delete("/v1/session", headers=headers).status_code == 200
        assert client.get("/v1/tasks/types", headers=headers).status_code == 401
        assert client.delete("/v1/session", headers=headers).status_code == 401
        assert client.delete("/v1/session").status_code == 401


def test_sessions_are_independent(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        first, second = login(client), login(client)
        assert first != second
        client.delete("/v1/session", headers=first)
        assert client.get("/v1/tasks/types", headers=second).status_code == 200


def test_session_expires_after_idle_time_and_use_keeps_it_alive() -> None:
    clock = ManualTime()
    with (
        make(session_idle_timeout=0.4, monotonic=clock) as sim,
        httpx.Client(base_url=sim.url) as client,
    ):
        headers = login(client)
        for _ in range(3):  # 0.6 s in all, but never 0.4 s idle
            clock.advance(0.2)
            assert client.get("/v1/tasks/types", headers=headers).status_code == 200
        clock.advance(0.5)
        assert client.get("/v1/tasks/types", headers=headers).status_code == 401
        assert client.get("/v1/tasks/types", headers=login(client)).status_code == 200


@pytest.mark.parametrize("mode", ["session", "keycloak"])
def test_session_max_requests(mode: str) -> None:
    with make(auth=mode) as sim, httpx.Client(base_url=sim.url) as client:
        sim.faults.session_max_requests = 3

        def credentials() -> dict[str, str]:
            if mode == "session":
                return login(client)
            return bearer(password_grant(client)["access_token"])

        headers = credentials()
        statuses = [client.get("/v1/tasks/types", headers=headers).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 401, 401]
        fresh = credentials()  # a new credential has its own count
        assert client.get("/v1/tasks/types", headers=fresh).status_code == 200
        sim.faults.session_max_requests = None
        assert client.get("/v1/tasks/types", headers=fresh).status_code == 200


@pytest.mark.parametrize("mode", ["session", "keycloak"])
def test_session_ttl_counts_real_seconds(mode: str) -> None:
    clock = ManualTime()
    with (
        make(auth=mode, faults=Faults(session_ttl=0.3), monotonic=clock) as sim,
        httpx.Client(base_url=sim.url) as client,
    ):
        if mode == "session":
            headers = login(client)
        else:
            headers = bearer(password_grant(client)["access_token"])
        assert client.get("/v1/tasks/types", headers=headers).status_code == 200
        sim.advance(timedelta(days=1))  # the simulated clock does not matter
        assert client.get("/v1/tasks/types", headers=headers).status_code == 200
        clock.advance(0.35)
        assert client.get("/v1/tasks/types", headers=headers).status_code == 401


def test_expire_sessions(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        headers = login(client)
        session_sim.expire_sessions()
        assert client.get("/v1/tasks/types", headers=headers).status_code == 401


def test_wrong_method_and_unknown_path(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        headers = login(client)
        response = client.get("/v1/session/add")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert "GET" in response.json()["Message"]
        assert client.post("/v1/tasks", headers=headers).status_code == 405
        missing = client.get("/v1/alerts", headers=headers)
        assert missing.status_code == 404
        assert "No HTTP resource" in missing.json()["Message"]
        assert client.post(TOKEN_PATH, data={"grant_type": "password"}).status_code == 404


# ---- keycloak mode -----------------------------------------------------------------------


def test_keycloak_password_grant(keycloak_sim: Simulator) -> None:
    with httpx.Client(base_url=keycloak_sim.url) as client:
        response = token(
            client,
            grant_type="password",
            client_id="zerto-client",
            username="admin",
            password="zerto",
            scope="openid",
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {
            "access_token",
            "expires_in",
            "refresh_expires_in",
            "refresh_token",
            "token_type",
            "not-before-policy",
            "session_state",
            "scope",
        }
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert body["not-before-policy"] == 0
        assert "openid" in body["scope"].split()
        _, payload, _ = body["access_token"].split(".")
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["azp"] == "zerto-client"
        assert claims["preferred_username"] == "admin"
        api = client.get("/v1/tasks", headers=bearer(body["access_token"]))
        assert api.status_code == 200
        assert isinstance(api.json(), list)


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (
            {"client_id": "zerto-client", "username": "admin", "password": "bad"},
            401,
            "invalid_grant",
        ),
        (
            {"client_id": "zerto-client", "username": "nobody", "password": "zerto"},
            401,
            "invalid_grant",
        ),
        ({"client_id": "zerto-client"}, 401, "invalid_grant"),
        ({"client_id": "other", "username": "admin", "password": "zerto"}, 401, "invalid_client"),
    ],
)
def test_keycloak_password_grant_refusals(
    keycloak_sim: Simulator, form: dict[str, str], status: int, error: str
) -> None:
    with httpx.Client(base_url=keycloak_sim.url) as client:
        response = token(client, grant_type="password", **form)
        assert response.status_code == status
        assert response.json()["error"] == error
        assert response.json()["error_description"]
    if error == "invalid_grant":
        assert response.json()["error_description"] == "Invalid user credentials"


def test_keycloak_client_credentials(keycloak_sim: Simulator) -> None:
    with httpx.Client(base_url=keycloak_sim.url) as client:
        ok = token(
            client,
            grant_type="client_credentials",
            client_id="zerto-client",
            client_secret="s3cret",
        )
        assert ok.status_code == 200
        assert (
            client.get("/v1/tasks/types", headers=bearer(ok.json()["access_token"])).status_code
            == 200
        )
        basic = client.post(
            TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("zerto-client", "s3cret")
        )
        assert basic.status_code == 200
        bad = token(
            client, grant_type="client_credentials", client_id="zerto-client", client_secret="x"
        )
        assert bad.status_code == 401
        assert bad.json()["error"] == "invalid_client"
        other = token(
            client, grant_type="client_credentials", client_id="nope", client_secret="s3cret"
        )
        assert other.status_code == 401


def test_keycloak_client_credentials_needs_a_configured_secret() -> None:
    with make(auth="keycloak") as sim, httpx.Client(base_url=sim.url) as client:
        response = token(
            client, grant_type="client_credentials", client_id="zerto-client", client_secret=""
        )
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized_client"


def test_keycloak_bad_requests(keycloak_sim: Simulator) -> None:
    with httpx.Client(base_url=keycloak_sim.url) as client:
        unsupported = token(client, grant_type="authorization_code", client_id="zerto-client")
        assert unsupported.status_code == 400
        assert unsupported.json()["error"] == "unsupported_grant_type"
        missing = token(client, client_id="zerto-client")
        assert missing.status_code == 400
        assert missing.json()["error"] == "invalid_request"
        as_json = client.post(TOKEN_PATH, json={"grant_type": "password"})
        assert as_json.status_code == 400


def test_keycloak_api_refuses_missing_or_wrong_tokens(keycloak_sim: Simulator) -> None:
    with httpx.Client(base_url=keycloak_sim.url) as client:
        body = password_grant(client)
        for headers in (
            {},
            bearer("garbage"),
            bearer(body["refresh_token"]),  # a refresh token is not an access token
            {"Authorization": f"Basic {body['access_token']}"},
            {"x-zerto-session": body["access_token"]},
        ):
            response = client.get("/v1/tasks/types", headers=headers)
            assert response.status_code == 401
            assert response.json() == DENIED
        assert client.post("/v1/session/add", auth=("admin", "zerto")).status_code == 404


def test_keycloak_token_expires_after_its_lifetime() -> None:
    clock = ManualTime()
    with (
        make(auth="keycloak", token_lifetime=0.3, monotonic=clock) as sim,
        httpx.Client(base_url=sim.url) as client,
    ):
        body = password_grant(client)
        assert body["expires_in"] == 0.3
        headers = bearer(body["access_token"])
        assert client.get("/v1/tasks/types", headers=headers).status_code == 200
        clock.advance(0.35)
        assert client.get("/v1/tasks/types", headers=headers).status_code == 401
        renewed = token(
            client,
            grant_type="refresh_token",
            client_id="zerto-client",
            refresh_token=body["refresh_token"],
        )
        assert renewed.status_code == 200
        assert renewed.json()["session_state"] == body["session_state"]
        fresh = bearer(renewed.json()["access_token"])
        assert client.get("/v1/tasks/types", headers=fresh).status_code == 200


def test_keycloak_refresh_and_logout(keycloak_sim: Simulator) -> None:
    with httpx.Client(base_url=keycloak_sim.url) as client:
        body = password_grant(client)
        bad = token(client, grant_type="refresh_token", client_id="zerto-client", refresh_token="x")
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_grant"
        logout = client.post(
            LOGOUT_PATH, data={"client_id": "zerto-client", "refresh_token": body["refresh_token"]}
        )
        assert logout.status_code == 204
        assert (
            client.get("/v1/tasks/types", headers=bearer(body["access_token"])).status_code == 401
        )
        again = token(
            client,
            grant_type="refresh_token",
            client_id="zerto-client",
            refresh_token=body["refresh_token"],
        )
        assert again.status_code == 400
        assert client.post(LOGOUT_PATH, data={"client_id": "zerto-client"}).status_code == 400


# ---- request log -------------------------------------------------------------------------


def test_request_log(session_sim: Simulator) -> None:
    with httpx.Client(base_url=session_sim.url) as client:
        headers = login(client)
        client.get(
            "/v1/tasks", params={"StartedAfterDate": "2025-03-01", "Foo": "x"}, headers=headers
        )
        client.get("/v1/tasks/types")
    records = session_sim.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("POST", "/v1/session/add", 200),
        ("GET", "/v1/tasks", 200),
        ("GET", "/v1/tasks/types", 401),
    ]
    assert records[1].params == {"startedafterdate": "2025-03-01", "foo": "x"}
    assert all(isinstance(r, RequestRecord) and r.at.tzinfo is not None for r in records)
    assert abs(records[0].at - datetime.now(UTC)) < timedelta(minutes=1)
    session_sim.clear_requests()
    assert session_sim.requests == []


def test_request_log_is_thread_safe(session_sim: Simulator) -> None:
    def hammer() -> None:
        with httpx.Client(base_url=session_sim.url) as client:
            for _ in range(20):
                client.get("/v1/tasks/types")

    threads = [threading.Thread(target=hammer) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(session_sim.requests) == 100


# ---- construction, start, stop -----------------------------------------------------------


def test_settings_and_overrides() -> None:
    base = SimulatorSettings(seed=9, speed=0, start=START)
    sim = Simulator(base, days=1.5)
    assert sim.settings.seed == 9
    assert sim.settings.days == 1.5
    assert sim.faults is sim.settings.faults
    assert Simulator(base).settings is base
    with pytest.raises(TypeError, match="nope"):
        Simulator(nope=1)
    with pytest.raises(ValueError, match="speed"):
        Simulator(speed=-1)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        Simulator(start=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="utc_offset_minutes"):
        Simulator(utc_offset_minutes=15 * 60)
    with pytest.raises(RuntimeError, match="not started"):
        _ = sim.url
    with pytest.raises(RuntimeError, match="not started"):
        sim.ground_truth()


def test_faults_reset() -> None:
    faults = Faults(error_rate=1, latency=2, session_ttl=3, malformed_rate=0.5)
    faults.reset()
    assert faults == Faults()


def test_clock_follows_speed_and_skew() -> None:
    frozen = make()
    assert frozen.now() == START
    frozen.advance(timedelta(minutes=5))
    assert frozen.now() == START + timedelta(minutes=5)
    frozen.set_time(START + timedelta(days=1))
    assert frozen.now() == START + timedelta(days=1)

    fast = Simulator(speed=3600, start=START)  # one simulated hour per real second
    time.sleep(0.05)
    assert fast.now() - START >= timedelta(seconds=150)

    skewed = Simulator(clock_skew=timedelta(minutes=-15), speed=1)
    expected = datetime.now(UTC) - timedelta(minutes=15)
    assert abs(skewed.now() - expected) < timedelta(seconds=5)


def test_start_twice_stop_twice_and_stop_closes_connections() -> None:
    sim = make().start()
    with pytest.raises(RuntimeError, match="already started"):
        sim.start()
    url = sim.url
    assert re.match(r"^http://127\.0\.0\.1:\d+$", url)
    client = httpx.Client(base_url=url)
    try:
        assert client.post("/v1/session/add", auth=("admin", "zerto")).status_code == 200
        sim.stop()
        sim.stop()
        with pytest.raises(httpx.TransportError):
            client.post("/v1/session/add", auth=("admin", "zerto"))
    finally:
        client.close()


def test_fixed_port() -> None:
    with make() as first:
        port = int(first.url.rsplit(":", 1)[1])
    with make(port=port) as second:
        assert second.url.endswith(f":{port}")


# ---- TLS ---------------------------------------------------------------------------------


def test_tls_with_the_generated_ca() -> None:
    with make(tls=True) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        assert sim.ca_path is not None and sim.ca_path.is_file()
        assert b"BEGIN CERTIFICATE" in sim.ca_path.read_bytes()
        context = ssl.create_default_context(cafile=str(sim.ca_path))
        with httpx.Client(base_url=sim.url, verify=context) as client:
            headers = login(client)
            assert client.get("/v1/tasks/types", headers=headers).status_code == 200
        localhost = sim.url.replace("127.0.0.1", "localhost")
        with httpx.Client(base_url=localhost, verify=context) as client:
            assert client.post("/v1/session/add", auth=("admin", "zerto")).status_code == 200
        with httpx.Client(base_url=sim.url) as client, pytest.raises(httpx.ConnectError) as error:
            client.post("/v1/session/add", auth=("admin", "zerto"))
        assert "CERTIFICATE_VERIFY_FAILED" in str(error.value)
        ca_path = sim.ca_path
    assert not ca_path.exists()


def test_no_tls_no_ca() -> None:
    with make() as sim:
        assert sim.ca_path is None


# ---- serve_forever -----------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_until_signal(signum: int) -> None:
    seen: dict[str, Any] = {}
    before = signal.getsignal(signum)

    def on_ready(sim: Simulator) -> None:
        seen["url"] = sim.url

        def use_then_signal() -> None:
            with httpx.Client(base_url=sim.url) as client:
                seen["status"] = client.post("/v1/session/add", auth=("admin", "zerto")).status_code
            os.kill(os.getpid(), signum)

        threading.Thread(target=use_then_signal).start()

    started = time.monotonic()
    serve_forever(SimulatorSettings(speed=0, start=START, days=0.1), on_ready=on_ready)
    assert time.monotonic() - started < 10
    assert seen["status"] == 200
    assert signal.getsignal(signum) == before
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(seen["url"] + "/v1/tasks/types")


@pytest.mark.parametrize("mode", ["session", "keycloak"])
def test_custom_credentials_and_client_id(mode: str) -> None:
    with (
        make(auth=mode, username="ops", password="p@ss:word", client_id="my-client") as sim,
        httpx.Client(base_url=sim.url) as client,
    ):
        if mode == "session":
            assert client.post("/v1/session/add", auth=("admin", "zerto")).status_code == 401
            ok = client.post("/v1/session/add", auth=("ops", "p@ss:word"))
            assert ok.status_code == 200
            headers = {"x-zerto-session": ok.headers["x-zerto-session"]}
        else:
            form = {"grant_type": "password", "username": "ops", "password": "p@ss:word"}
            assert token(client, client_id="zerto-client", **form).status_code == 401
            ok = token(client, client_id="my-client", **form)
            assert ok.status_code == 200
            headers = bearer(ok.json()["access_token"])
        assert client.get("/v1/tasks/types", headers=headers).status_code == 200


def test_host_setting() -> None:
    with make(host="localhost") as sim:
        assert sim.url.startswith("http://localhost:")
        with httpx.Client(base_url=sim.url) as client:
            assert client.post("/v1/session/add", auth=("admin", "zerto")).status_code == 200
    try:
        ipv6 = make(host="::1", tls=True).start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert ipv6.url.startswith("https://[::1]:")
        assert ipv6.ca_path is not None
        context = ssl.create_default_context(cafile=str(ipv6.ca_path))
        with httpx.Client(base_url=ipv6.url, verify=context) as client:
            assert client.post("/v1/session/add", auth=("admin", "zerto")).status_code == 200
    finally:
        ipv6.stop()


def test_chunked_request_bodies_are_read(keycloak_sim: Simulator) -> None:
    form = [b"grant_type=password&client_id=zerto-client", b"&username=admin&password=zerto"]
    with httpx.Client(base_url=keycloak_sim.url) as client:
        response = client.post(
            TOKEN_PATH,
            content=iter(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        assert "transfer-encoding" not in response.headers
        headers = bearer(response.json()["access_token"])
        assert client.get("/v1/tasks/types", headers=headers).status_code == 200  # same connection
        assert keycloak_sim.requests[0].method == "POST"


def test_sim_clock_with_a_fake_monotonic_clock() -> None:
    from zvm_simulator.clock import SimClock

    real = [100.0]
    clock = SimClock(START, speed=2.0, monotonic=lambda: real[0])
    real[0] += 10
    assert clock.now() == START + timedelta(seconds=20)
    clock.speed = 0.5  # re-anchors: the 20 s already run are kept
    real[0] += 10
    assert clock.now() == START + timedelta(seconds=25)
    clock.advance(timedelta(hours=1))
    assert clock.now() == START + timedelta(hours=1, seconds=25)
    clock.set_time(START)
    real[0] += 4
    assert clock.now() == START + timedelta(seconds=2)
    assert (
        clock.now_ms()
        == int((START - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1000 + 2000
    )
    with pytest.raises(ValueError, match="aware"):
        clock.set_time(datetime(2025, 1, 1))
