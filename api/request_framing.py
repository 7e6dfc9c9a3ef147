"""What a request's header asks of the gunicorn worker's main loop, from its raw bytes.

The worker (:class:`api.gunicorn_worker.ThreadWorker`) reads each request completely
before a thread serves it; :func:`read_plan` tells it, from the header alone, how many
bytes of body to wait for, whether the client expects ``100 Continue`` first and whether
the body is chunked (refused with 411); :func:`without_expect` drops the ``Expect`` lines
the main loop answered itself. Headers gunicorn will refuse read no body: gunicorn answers
them. The gunicorn master imports this module: it imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadPlan:
    """What a request's header asks of the main loop.

    Attributes:
        body: bytes of body to read before a thread takes the request.
        expect_continue: the client waits for ``100 Continue`` before sending the body.
        chunked: a chunked body (refused with 411).
    """

    body: int = 0
    expect_continue: bool = False
    chunked: bool = False


def read_plan(head: bytes, max_body: int) -> ReadPlan:
    """How to read the request whose header (without the final blank line) is ``head``.

    A header gunicorn will refuse (duplicate or malformed ``Content-Length``, a
    ``Transfer-Encoding`` or ``Expect`` it does not support) and a body over ``max_body``
    (which the app refuses with 413) read no body here: the thread answers them from the
    header alone.
    """
    lines = head.split(b"\r\n")
    length = None
    expect = chunked = malformed = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"transfer-encoding":
            if value.split(b",")[-1].strip().lower() == b"chunked":
                chunked = True
            else:
                malformed = True
        elif name == b"expect":
            if value.lower() == b"100-continue":
                expect = lines[0].rstrip().endswith(b"HTTP/1.1")  # 1.0 ignores it
            else:
                malformed = True
        elif name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 15:
                malformed = True
            else:
                length = int(value)
    if malformed:
        return ReadPlan()
    if chunked:
        return ReadPlan(chunked=True)
    if length is None or length > max_body:
        return ReadPlan()
    return ReadPlan(body=length, expect_continue=expect and length > 0)


def without_expect(head: bytes) -> bytes:
    """``head`` without its ``Expect`` lines (the main loop already answered them)."""
    return b"\r\n".join(
        line for line in head.split(b"\r\n") if line.partition(b":")[0].strip().lower() != b"expect"
    )
