"""Routes: every form HarperDB's config accepts, dialled with this node's own settings."""

from __future__ import annotations

import pytest

from agent.core.routes import Dialing, Route, RouteError, parse_route, split_host_port

REPLICATION = Dialing(port=9932, secure_port=9933, ops_port=9925)


@pytest.mark.parametrize(
    ("dialing", "expected"),
    [
        (Dialing(port=9932, secure_port=9933), ("ws", 9932)),
        (Dialing(secure_port=9933), ("wss", 9933)),
        (Dialing(ops_port=9925), ("ws", 9925)),
        (Dialing(ops_port=0, ops_secure_port=9926), ("wss", 9926)),
    ],
)
def test_a_bare_host_is_dialled_with_this_nodes_settings(dialing, expected):
    route = parse_route("server-two", dialing)
    assert (route.host, (route.scheme, route.port)) == ("server-two", expected)


@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [
        ("server-two:9930", "server-two", 9930),
        ("10.0.0.2:9930", "10.0.0.2", 9930),
        (" server-two:9930 ", "server-two", 9930),
        ("[::1]:9930", "::1", 9930),
        ("[fe80::1]", "fe80::1", 9932),
        ("::1", "::1", 9932),  # a bare IPv6 address has no port to split off
        ("2001:db8::7", "2001:db8::7", 9932),
    ],
)
def test_host_and_port_strings(entry, host, port):
    route = parse_route(entry, REPLICATION)
    assert (route.host, route.port, route.scheme) == (host, port, "ws")


def test_host_port_splits_on_the_last_colon():
    assert split_host_port("server-two:9930") == ("server-two", 9930)
    assert split_host_port("[::ffff:10.0.0.1]:9930") == ("::ffff:10.0.0.1", 9930)
    assert split_host_port("server-two") == ("server-two", None)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("ws://server-two:9930", Route("server-two", 9930, "ws")),
        ("wss://server-two:9933", Route("server-two", 9933, "wss")),
        ("http://server-two:9925", Route("server-two", 9925, "ws")),
        ("https://server-two", Route("server-two", 9933, "wss")),
        ("ws://server-two", Route("server-two", 9925, "ws")),
        ("WSS://[::1]:9933/path", Route("::1", 9933, "wss")),
    ],
)
def test_urls_keep_their_own_scheme_and_port(entry, expected):
    assert parse_route(entry, REPLICATION) == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"hostname": "server-two", "port": 9930}, Route("server-two", 9930, "ws")),
        ({"host": "server-two"}, Route("server-two", 9932, "ws")),
        ({"hostname": "server-two:9999"}, Route("server-two", 9999, "ws")),
        ({"hostname": "server-two:9999", "port": "9000"}, Route("server-two", 9000, "ws")),
        ({"hostname": "[::1]", "port": 7}, Route("::1", 7, "ws")),
        ({"url": "wss://x:3", "startTime": 5}, Route("x", 3, "wss", 5)),
        ({"hostname": "x", "start_time": "2024-01-01"}, Route("x", 9932, "ws", "2024-01-01")),
        ({"hostname": "wss://x:3"}, Route("x", 3, "wss")),
    ],
)
def test_mappings(entry, expected):
    assert parse_route(entry, REPLICATION) == expected


@pytest.mark.parametrize(
    "entry",
    [
        "host:",
        "host:abc",
        "host:0",
        "host:65536",
        "host:-1",
        "[::1]:",
        "[::1]junk",
        "[::1",
        "[]:9930",
        "ws://host:0",
        "ws://host:99999",
        "ws://host:abc",
        "ftp://host",
        "ws://",
        "",
        "   ",
        42,
        None,
        ["host"],
        {"port": 9930},
        {"hostname": ""},
        {"hostname": "host", "port": "x"},
        {"hostname": "host", "port": 0},
        {"hostname": "host", "port": True},
        {"url": "gopher://host"},
    ],
)
def test_malformed_entries_raise_route_error(entry):
    with pytest.raises(RouteError):
        parse_route(entry, REPLICATION)


def test_route_errors_are_value_errors_naming_the_entry():
    with pytest.raises(ValueError, match="host:abc"):
        parse_route("host:abc", REPLICATION)


def test_the_url_brackets_ipv6_hosts():
    assert Route("::1", 9930, "ws").url == "ws://[::1]:9930"
    assert Route("server-two", 9933, "wss").url == "wss://server-two:9933"
