"""The operations API client: the only harperctl module that imports `requests`.

`Client.call` POSTs one operation as JSON to `/` and returns the parsed answer, or raises
the `harperctl.errors` error for what went wrong. `Client.stream` does the same but reads
the answer as it arrives: a long JSON array item by item (`jsonstream`), or its bytes
unchanged. The network sits behind a `Transport` seam (as httpx's transports): tests hand
`Client` a fake, or replace `new_transport`. A transport without `open` (no streaming) is
read whole and handed out as one piece.
"""

from __future__ import annotations

import base64
import contextlib
import http
import json
import re
import ssl
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import requests
from urllib3.exceptions import InsecureRequestWarning

from harperctl import __version__
from harperctl.errors import (
    AgentFailed,
    ConnectionFailed,
    HarperctlError,
    UsageError,
    error_for_status,
)
from harperctl.jsonstream import ArrayItems, NotAnArray


class Transport(Protocol):
    """Send one HTTP request; raise `ConnectionFailed` or `OSError` when there is no answer."""

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
        verify: bool | str,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send the request and return (status, headers, body)."""
        ...


class Reply(Protocol):
    """An answer whose body is read piece by piece (what `open` returns)."""

    status: int

    def chunks(self) -> Iterator[bytes]:
        """Yield the body's bytes as they arrive."""
        ...

    def close(self) -> None:
        """Release the connection, read to the end or not."""
        ...


class WholeReply:
    """A reply whose body was read at once: one piece."""

    def __init__(self, status: int, content: bytes) -> None:
        self.status = status
        self._content = content

    def chunks(self) -> Iterator[bytes]:
        """Yield the whole body."""
        yield self._content

    def close(self) -> None:
        """Nothing to release."""


CHUNK_BYTES = 1 << 16


class RequestsReply:
    """A streamed `requests` response."""

    def __init__(self, response: requests.Response, url: str, timeout: float) -> None:
        self.status = response.status_code
        self._response = response
        self._url = url
        self._timeout = timeout

    def chunks(self) -> Iterator[bytes]:
        """Yield the body as it arrives; a connection that breaks off is ConnectionFailed."""
        try:
            yield from self._response.iter_content(CHUNK_BYTES)
        except requests.exceptions.ChunkedEncodingError as exc:
            reason = _short_reason(exc)
            raise ConnectionFailed(f"the answer from {self._url} broke off: {reason}") from exc
        except requests.RequestException as exc:
            error = translate_requests_error(exc, self._url, self._timeout)
            raise error.annotate(f"the answer from {self._url} broke off") from exc

    def close(self) -> None:
        """Close the response (its connection goes back to the pool only if read to the end)."""
        self._response.close()


class RequestsTransport:
    """Send requests over one keep-alive `requests.Session`."""

    def __init__(self) -> None:
        self._session = requests.Session()

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
        verify: bool | str,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send the request and return (status, headers, body)."""
        try:
            with warnings.catch_warnings():
                # harperctl warns once about --insecure; urllib3 would add a warning per request
                warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self._session.request(
                    method, url, headers=headers, data=body, timeout=timeout, verify=verify
                )
        except requests.RequestException as exc:
            raise translate_requests_error(exc, url, timeout) from exc
        return response.status_code, dict(response.headers), response.content

    def open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
        verify: bool | str,
    ) -> Reply:
        """Send the request and return the reply once its headers arrived."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self._session.request(
                    method,
                    url,
                    headers=headers,
                    data=body,
                    timeout=timeout,
                    verify=verify,
                    stream=True,
                )
        except requests.RequestException as exc:
            raise translate_requests_error(exc, url, timeout) from exc
        return RequestsReply(response, url, timeout)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()


def translate_requests_error(
    exc: requests.RequestException, url: str, timeout: float
) -> HarperctlError:
    """Return the harperctl error for a failed `requests` call."""
    if isinstance(exc, requests.exceptions.SSLError):
        return tls_failure(url, _short_reason(exc))
    if isinstance(exc, requests.Timeout):
        return ConnectionFailed(f"no answer from {url} within {timeout:g} s")
    if isinstance(exc, requests.ConnectionError):
        return ConnectionFailed(f"cannot connect to {url}: {_short_reason(exc)}")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return UsageError(f"invalid URL {url!r}: {exc}")
    return ConnectionFailed(f"request to {url} failed: {exc}")


def _short_reason(exc: BaseException) -> str:
    """Return the errno text buried in urllib3's nested messages, else the whole text."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip()
    found = re.search(r"\[SSL: [A-Z_]+\] (.+?) \(_ssl\.c:\d+\)", text) or re.search(
        r"\[SSL: [A-Z_]+\] ([^'\")]+)", text
    )
    return found.group(1).strip() if found else text


TLS_VERIFY_HINT = (
    "give --ca-file with the CA that signed the agent's certificate "
    "(or --insecure to skip the check)"
)


def tls_failure(url: str, reason: str) -> ConnectionFailed:
    """Return the error for a failed TLS handshake; a failed verification names the fix."""
    message = f"TLS failure talking to {url}: {reason}"
    if "verify failed" in reason or "CERTIFICATE_VERIFY_FAILED" in reason:
        message += f"; {TLS_VERIFY_HINT}"
    return ConnectionFailed(message)


def new_transport() -> Transport:
    """Return the default transport; tests replace this factory to inject a fake."""
    return RequestsTransport()


class Client:
    """Call operations on one agent with one set of credentials."""

    def __init__(
        self,
        url: str,
        auth: tuple[str, str] | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
        transport: Transport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.auth = auth
        self.token = token
        self.timeout = timeout
        self.verify = verify
        self.transport = transport if transport is not None else new_transport()

    def with_auth(self, auth: tuple[str, str] | None = None, token: str | None = None) -> Client:
        """Return a client for the same agent and transport with other credentials."""
        return Client(self.url, auth, token, self.timeout, self.verify, self.transport)

    def call(self, operation: dict[str, Any]) -> Any:
        """POST `operation` to the agent and return its parsed JSON answer."""
        body = json.dumps(operation).encode()
        headers = {**self._headers(), "Content-Type": "application/json"}
        status, _, content = self._send("POST", self.url + "/", headers, body)
        return _parse_answer(status, content)

    @contextlib.contextmanager
    def stream(self, operation: dict[str, Any]) -> Iterator[Streamed]:
        """POST `operation` and yield its 2xx answer to read as it arrives (errors raise)."""
        body = json.dumps(operation).encode()
        headers = {**self._headers(), "Content-Type": "application/json"}
        reply = self._open("POST", self.url + "/", headers, body)
        try:
            if not 200 <= reply.status < 300:
                _parse_answer(reply.status, b"".join(self._guarded(reply.chunks())))
            yield Streamed(reply.status, self._guarded(reply.chunks()))
        finally:
            reply.close()

    def health(self) -> dict[str, Any]:
        """GET /health (no credentials needed) and return its answer as a dict."""
        status, _, content = self._send("GET", self.url + "/health", self._headers(), b"")
        answer = _parse_answer(status, content)
        return answer if isinstance(answer, dict) else {"status": answer}

    def close(self) -> None:
        """Close the transport's connections, if it holds any."""
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"harperctl/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.auth is not None:
            pair = f"{self.auth[0]}:{self.auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return headers

    def _open(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Reply:
        """Start a request on the transport's `open`, else read it whole with `request`."""
        open_reply = getattr(self.transport, "open", None)
        if open_reply is None:
            status, _, content = self._send(method, url, headers, body)
            return WholeReply(status, content)
        return self._through(open_reply, method, url, headers, body)

    def _guarded(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Yield `chunks`, turning an OSError while reading into ConnectionFailed."""
        try:
            yield from chunks
        except OSError as exc:
            error = _connection_error(exc, self.url, self.timeout)
            raise error.annotate(f"the answer from {self.url} broke off") from exc

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        return self._through(self.transport.request, method, url, headers, body)

    def _through(self, send: Any, method: str, url: str, headers: dict, body: bytes) -> Any:
        """Call the transport's `send` (request or open); no answer is ConnectionFailed."""
        try:
            return send(
                method=method,
                url=url,
                headers=headers,
                body=body,
                timeout=self.timeout,
                verify=self.verify,
            )
        except OSError as exc:
            raise _connection_error(exc, self.url, self.timeout) from exc


class Streamed:
    """A 2xx answer being read: `batches()` for a JSON array, `raw()` or `value()` for any."""

    def __init__(self, status: int, chunks: Iterator[bytes]) -> None:
        self.status = status
        self.content = b""
        self._chunks = chunks
        self._head = b""
        for chunk in chunks:  # peek at the first byte that is not white space
            self._head += chunk
            if self._head.strip():
                break

    @property
    def is_array(self) -> bool:
        """Return True when the answer is a JSON array (it starts with "[")."""
        return self._head.lstrip()[:1] == b"["

    def raw(self) -> Iterator[bytes]:
        """Yield the answer's bytes unchanged, as they arrive."""
        if self._head:
            yield self._head
        yield from self._chunks

    def batches(self) -> Iterator[list[Any]]:
        """Yield the items of a JSON array answer, a list per piece that completes some."""
        decoder = ArrayItems()
        try:
            for chunk in self.raw():
                items = decoder.feed(chunk)
                if items:
                    yield items
            items = decoder.close()
        except NotAnArray as exc:
            message = f"the agent's answer is not a JSON array: {exc}"
            raise AgentFailed(message, status=self.status) from None
        if items:
            yield items

    def value(self) -> Any:
        """Read the rest and return the whole answer parsed (its bytes stay in `content`)."""
        self.content = b"".join(self.raw())
        return _parse_answer(self.status, self.content)


def _connection_error(exc: OSError, url: str, timeout: float) -> ConnectionFailed:
    """Return the `ConnectionFailed` for an OSError a transport raised."""
    if isinstance(exc, TimeoutError):
        return ConnectionFailed(f"no answer from {url} within {timeout:g} s")
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLError):
        return tls_failure(url, reason)
    return ConnectionFailed(f"cannot connect to {url}: {reason}")


def _parse_answer(status: int, content: bytes) -> Any:
    """Return the JSON answer of a 2xx response, or raise the error for its status."""
    try:
        answer = json.loads(content) if content.strip() else None
    except ValueError:
        answer = _NOT_JSON
    if 200 <= status < 300:
        if answer is _NOT_JSON:
            message = f"the agent answered HTTP {status} with a body that is not JSON"
            raise AgentFailed(message, status=status)
        return answer
    body = None if answer is _NOT_JSON else answer
    raise error_for_status(status, _error_message(status, body), body)


_NOT_JSON = object()


def _error_message(status: int, body: Any) -> str:
    """Return the `error` field of an error answer, else the HTTP reason phrase."""
    error = body
    if isinstance(body, dict):
        error = body.get("error") or body.get("message")
    if isinstance(error, str) and error:
        return error
    if error:
        return json.dumps(error)
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
