import threading

import pytest
import redis

from migrate.endpoint import Endpoint, mask_url
from migrate.errors import ConnectError, ExitCode, UsageError
from migrate.lab.fleet import Fleet
from migrate.lab.server import free_port


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://localhost", Endpoint("localhost", 6379)),
    ("redis://h:7000/3", Endpoint("h", 7000, db=3)),
    ("redis://:s3cret@h:1", Endpoint("h", 1, password="s3cret")),
    ("redis://alice:pw@h:1/2", Endpoint("h", 1, db=2, username="alice", password="pw")),
    ("rediss://h:6380", Endpoint("h", 6380, tls=True)),
    ("redis://:p%40ss@h:1", Endpoint("h", 1, password="p@ss")),
])
def test_parse(url: str, expected: Endpoint) -> None:
    assert Endpoint.parse(url) == expected


@pytest.mark.parametrize("url", ["http://h:1", "redis://", "redis://h:notaport",
                                 "redis://h:1/db", "localhost:6379", "redis://:pw@h:99999"])
def test_malformed_urls_are_usage_errors_without_the_password(url: str) -> None:
    with pytest.raises(UsageError) as info:
        Endpoint.parse(url)
    assert info.value.exit_code == ExitCode.USAGE
    assert "pw" not in str(info.value) or ":pw@" not in url


def test_display_masks_password() -> None:
    ep = Endpoint.parse("redis://alice:topsecret@h:1")
    for text in (str(ep), repr(ep), ep.display()):
        assert "topsecret" not in text
    assert ep.display() == "redis://alice:***@h:1"
    assert mask_url("redis://:topsecret@h:1") == "redis://:***@h:1"


def test_wrong_password_and_missing_password_on_a_real_server(lab: Fleet) -> None:
    server = lab.start("redis-7.0", password="right-one")
    good = Endpoint.parse(f"redis://:right-one@127.0.0.1:{server.port}")
    assert good.client().ping()
    for url in (f"redis://:wrong-one@127.0.0.1:{server.port}", f"redis://127.0.0.1:{server.port}"):
        with pytest.raises(ConnectError) as info:
            Endpoint.parse(url).client()
        assert info.value.exit_code == ExitCode.CONNECT
        assert "wrong-one" not in info.value.one_line()
        assert "authenticate" in info.value.one_line()


def test_unreachable_host_is_a_connect_error() -> None:
    with pytest.raises(ConnectError) as info:
        Endpoint.parse(f"redis://127.0.0.1:{free_port()}").client(timeout=2)
    assert "cannot connect" in info.value.one_line()


def test_a_server_loading_its_dataset_is_waited_for(lab: Fleet) -> None:
    """LOADING is a server that is there but not ready: the client waits for it (was: 'cannot
    connect ... Redis is loading the dataset in memory', which failed a rollback whose
    verification reached the old primary while it loaded)."""
    server = lab.start("redis-7.0")
    admin = server.client()
    pipe = admin.pipeline(transaction=False)
    for i in range(20_000):
        pipe.set(f"k:{i}", i)
    pipe.execute()
    admin.config_set("key-load-delay", 200)  # µs per key: a reload of about 4 s
    admin.config_set("loading-process-events-interval-bytes", 1024)  # answering meanwhile
    reload = threading.Thread(target=lambda: server.endpoint.client(timeout=60).execute_command(
        "DEBUG", "RELOAD"), daemon=True)
    reload.start()
    probe = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
    while True:  # until another client is answered LOADING
        try:
            probe.ping()
        except redis.BusyLoadingError:
            break
        assert reload.is_alive(), "the reload ended before LOADING was seen"
    client = server.endpoint.client()
    assert client.dbsize() == 20_000
    reload.join(60)
