"""The client: request shape, credentials, and the mapping of failures to errors."""

from __future__ import annotations

import base64
import io
import ssl
from typing import Any

import pytest
import requests

from harperctl import errors
from harperctl.client import Client, RequestsTransport, translate_requests_error

URL = "http://127.0.0.1:9925"


def make(fake: Any, **kwargs: Any) -> Client:
    return Client(URL, transport=fake, **kwargs)


def test_call_posts_json_to_root_and_returns_the_answer(fake: Any) -> None:
    fake.reply({"message": "inserted 1 of 1 records"})
    client = Client(URL + "/", timeout=7.5, verify="/ca.pem", transport=fake)
    answer = client.call({"operation": "insert", "records": [{"id": 1}]})
    assert answer == {"message": "inserted 1 of 1 records"}
    sent = fake.sent[0]
    assert (sent.method, sent.url, sent.timeout, sent.verify) == ("POST", URL + "/", 7.5, "/ca.pem")
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {"operation": "insert", "records": [{"id": 1}]}
    assert "Authorization" not in sent.headers


def test_basic_auth_header(fake: Any) -> None:
    fake.reply([])
    make(fake, auth=("admin", "pa:ss")).call({"operation": "list_users"})
    expected = "Basic " + base64.b64encode(b"admin:pa:ss").decode()
    assert fake.sent[0].headers["Authorization"] == expected


def test_token_wins_over_basic(fake: Any) -> None:
    fake.reply([])
    make(fake, auth=("admin", "x"), token="jwt").call({"operation": "list_users"})
    assert fake.sent[0].headers["Authorization"] == "Bearer jwt"


def test_with_auth_shares_the_transport_and_replaces_credentials(fake: Any) -> None:
    fake.reply({})
    client = make(fake, auth=("admin", "x"), timeout=3)
    other = client.with_auth(token="refresh")
    other.call({"operation": "refresh_operation_token"})
    assert other.transport is fake and other.timeout == 3
    assert fake.sent[0].headers["Authorization"] == "Bearer refresh"
    assert "Authorization" not in client.with_auth()._headers()


def test_health_gets_health(fake: Any) -> None:
    fake.reply({"status": "ok"})
    assert make(fake).health() == {"status": "ok"}
    assert (fake.sent[0].method, fake.sent[0].url) == ("GET", URL + "/health")


def test_health_wraps_a_non_object_answer(fake: Any) -> None:
    fake.reply("ok")
    assert make(fake).health() == {"status": "ok"}


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, errors.OperationRefused, 1),
        (403, errors.OperationRefused, 1),
        (404, errors.OperationRefused, 1),
        (401, errors.AuthenticationFailed, 4),
        (500, errors.AgentFailed, 5),
        (502, errors.AgentFailed, 5),
    ],
)
def test_error_status_maps_to_error_with_the_error_field(
    fake: Any, status: int, kind: type, code: int
) -> None:
    fake.reply({"error": "Table 'dev.nosuch' does not exist"}, status=status)
    with pytest.raises(kind) as caught:
        make(fake).call({"operation": "describe_table"})
    assert caught.value.message == "Table 'dev.nosuch' does not exist"
    assert caught.value.exit_code == code
    assert caught.value.status == status
    assert caught.value.body == {"error": "Table 'dev.nosuch' does not exist"}


def test_error_without_json_uses_the_http_reason(fake: Any) -> None:
    fake.reply(status=503, raw=b"<html>down</html>")
    with pytest.raises(errors.AgentFailed) as caught:
        make(fake).call({"operation": "describe_all"})
    assert caught.value.message == "Service Unavailable"
    assert caught.value.body is None


def test_error_with_empty_body_uses_the_http_reason(fake: Any) -> None:
    fake.reply(status=401, raw=b"")
    with pytest.raises(errors.AuthenticationFailed, match="^Unauthorized$"):
        make(fake).call({"operation": "describe_all"})


def test_error_field_that_is_not_text_is_shown_as_json(fake: Any) -> None:
    fake.reply({"error": {"field": "ids"}}, status=400)
    with pytest.raises(errors.OperationRefused, match='"field": "ids"'):
        make(fake).call({"operation": "search_by_id"})


def test_success_that_is_not_json_is_an_agent_failure(fake: Any) -> None:
    fake.reply(status=200, raw=b"<html>studio</html>")
    with pytest.raises(errors.AgentFailed, match="not JSON") as caught:
        make(fake).call({"operation": "describe_all"})
    assert caught.value.exit_code == 5


@pytest.mark.parametrize(
    ("exc", "pattern"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            "cannot connect to .*Connection refused",
        ),
        (TimeoutError("timed out"), "no answer from .* within 30 s"),
        (ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] verify failed"), "TLS failure"),
        (OSError("Network is unreachable"), "cannot connect .*unreachable"),
    ],
)
def test_transport_oserrors_become_connection_failed(fake: Any, exc: OSError, pattern: str) -> None:
    fake.fail(exc)
    with pytest.raises(errors.ConnectionFailed, match=pattern) as caught:
        make(fake).call({"operation": "describe_all"})
    assert caught.value.exit_code == 3


def test_connection_failed_from_the_transport_passes_through(fake: Any) -> None:
    fake.fail(errors.ConnectionFailed("cannot connect to x: refused"))
    with pytest.raises(errors.ConnectionFailed, match="^cannot connect to x: refused$"):
        make(fake).call({"operation": "describe_all"})


REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=9925): Max retries exceeded with url: / "
    "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object>: Failed to "
    "establish a new connection: [Errno 111] Connection refused'))"
)


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (
            requests.ConnectionError(REFUSED),
            errors.ConnectionFailed,
            f"cannot connect to {URL}: Connection refused",
        ),
        (
            requests.exceptions.ConnectTimeout("x"),
            errors.ConnectionFailed,
            f"no answer from {URL} within 2.5 s",
        ),
        (
            requests.exceptions.ReadTimeout("x"),
            errors.ConnectionFailed,
            f"no answer from {URL} within 2.5 s",
        ),
        (
            requests.exceptions.SSLError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
            ),
            errors.ConnectionFailed,
            f"TLS failure talking to {URL}: certificate verify failed; give --ca-file with the "
            "CA that signed the agent's certificate (or --insecure to skip the check)",
        ),
        (
            requests.exceptions.SSLError(
                "(Caused by SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version "
                "number (_ssl.c:1006)')))"
            ),
            errors.ConnectionFailed,
            f"TLS failure talking to {URL}: wrong version number",
        ),
        (requests.exceptions.InvalidURL("bad"), errors.UsageError, f"invalid URL '{URL}': bad"),
    ],
)
def test_translate_requests_error(exc: Exception, kind: type, message: str) -> None:
    error = translate_requests_error(exc, URL, 2.5)
    assert type(error) is kind
    assert error.message == message


class CannedAdapter(requests.adapters.BaseAdapter):
    """A requests adapter answering from memory (requests' own seam, no sockets)."""

    def __init__(self, status: int = 200, body: bytes = b"{}", exc: Exception | None = None):
        super().__init__()
        self.status, self.body, self.exc = status, body, exc
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        if self.exc is not None:
            raise self.exc
        response = requests.Response()
        response.status_code, response._content = self.status, self.body
        response.headers["Content-Type"] = "application/json"
        response.request, response.url = request, request.url
        return response

    def close(self) -> None:
        pass


def test_requests_transport_returns_status_headers_body() -> None:
    transport = RequestsTransport()
    adapter = CannedAdapter(201, b'{"ok": true}')
    transport._session.mount("http://", adapter)
    status, headers, body = transport.request(
        "POST", URL + "/", {"X-Test": "1"}, b"{}", timeout=1.0, verify=True
    )
    assert (status, body, headers["Content-Type"]) == (201, b'{"ok": true}', "application/json")
    assert adapter.seen[0].headers["X-Test"] == "1" and adapter.seen[0].body == b"{}"
    transport.close()


def test_requests_transport_maps_its_exceptions() -> None:
    transport = RequestsTransport()
    transport._session.mount("http://", CannedAdapter(exc=requests.ConnectionError(REFUSED)))
    with pytest.raises(errors.ConnectionFailed, match="Connection refused"):
        transport.request("POST", URL + "/", {}, b"{}", timeout=1.0, verify=True)


# --- streaming: Client.stream over Transport.open --------------------------------------------

DOGS = [{"id": n, "name": f"dog {n}"} for n in range(50)]


def test_stream_yields_the_items_of_an_array_piece_by_piece(fake: Any) -> None:
    fake.reply(DOGS)
    fake.piece_size = 7
    batches: list[list[Any]] = []
    yielded_before_piece: list[int] = []
    fake.between = lambda number: yielded_before_piece.append(len(batches))
    with make(fake).stream({"operation": "sql", "sql": "SELECT * FROM dev.dog"}) as answer:
        assert answer.is_array
        for batch in answer.batches():
            batches.append(batch)
    assert [item for batch in batches for item in batch] == DOGS
    # items came out while later pieces were still unread
    assert yielded_before_piece[-1] >= len(batches) - 1 and len(batches) > 10
    assert fake.sent[0].json == {"operation": "sql", "sql": "SELECT * FROM dev.dog"}
    assert fake.replies[0].closed


def test_stream_raw_passes_the_bytes_unchanged(fake: Any) -> None:
    raw = b'[ {"id":1,"name":"P\\u00e9nny"} ,{"id":2}]'
    fake.reply(raw=raw)
    fake.piece_size = 5
    with make(fake).stream({"operation": "sql"}) as answer:
        assert b"".join(answer.raw()) == raw


def test_stream_of_an_object_is_read_whole(fake: Any) -> None:
    fake.reply({"message": "updated 1 of 1 records"})
    fake.piece_size = 3
    with make(fake).stream({"operation": "sql"}) as answer:
        assert not answer.is_array
        assert answer.value() == {"message": "updated 1 of 1 records"}


def test_stream_error_status_raises_before_yielding(fake: Any) -> None:
    fake.reply({"error": "Table 'dev.nosuch' does not exist"}, status=404)
    with pytest.raises(errors.OperationRefused, match="does not exist"):
        with make(fake).stream({"operation": "sql"}):
            raise AssertionError("an error answer must not be yielded")
    assert fake.replies[0].closed


def test_stream_that_breaks_off_is_connection_failed(fake: Any) -> None:
    fake.reply(DOGS)
    fake.piece_size = 100
    fake.break_with = ConnectionResetError(104, "Connection reset by peer")
    with pytest.raises(errors.ConnectionFailed) as caught:
        with make(fake).stream({"operation": "sql"}) as answer:
            for _ in answer.batches():
                pass
    assert caught.value.message == (
        f"the answer from {URL} broke off: cannot connect to {URL}: Connection reset by peer"
    )
    assert fake.replies[0].closed


def test_stream_that_is_not_an_array_after_all_is_agent_failed(fake: Any) -> None:
    fake.reply(raw=b'[{"id": 1}, oops]')
    with pytest.raises(errors.AgentFailed, match="not a JSON array"):
        with make(fake).stream({"operation": "sql"}) as answer:
            list(answer.batches())


def test_a_transport_without_open_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plain:
        def request(self, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
            return 200, {}, b'[{"id": 1}, {"id": 2}]'

    with Client(URL, transport=Plain()).stream({"operation": "sql"}) as answer:
        assert list(answer.batches()) == [[{"id": 1}, {"id": 2}]]


class BreakingBody(io.BytesIO):
    """A response body that breaks off after its bytes, as a chunked answer cut short."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if not data:
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
        return data


class StreamingAdapter(CannedAdapter):
    """Answer with a body that is read as it goes (`response.raw`)."""

    def __init__(self, body: io.BytesIO) -> None:
        super().__init__()
        self.raw = body

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response.raw = 200, self.raw
        response.request, response.url = request, request.url
        return response


def test_requests_transport_open_streams_the_body() -> None:
    transport = RequestsTransport()
    transport._session.mount("http://", StreamingAdapter(io.BytesIO(b'[{"id": 1}]')))
    reply = transport.open("POST", URL + "/", {}, b"{}", timeout=1.0, verify=True)
    assert (reply.status, b"".join(reply.chunks())) == (200, b'[{"id": 1}]')
    reply.close()


def test_requests_transport_open_says_when_the_answer_broke_off() -> None:
    transport = RequestsTransport()
    transport._session.mount("http://", StreamingAdapter(BreakingBody(b'[{"id": 1},')))
    reply = transport.open("POST", URL + "/", {}, b"{}", timeout=1.0, verify=True)
    with pytest.raises(errors.ConnectionFailed) as caught:
        b"".join(reply.chunks())
    assert caught.value.message == (
        f"the answer from {URL}/ broke off: Connection broken: IncompleteRead"
    )
