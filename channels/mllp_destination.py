"""
The ``mllp`` destination: send each message to an MLLP peer and judge its acknowledgment.

:class:`mllp.client.MLLPClient` owns the connection (lazy connect, one frame in flight,
timeouts, backoff); this connector turns what comes back into the engine's vocabulary. The
judgement matters more than the sending: the engine retries a retryable failure and parks a
non-retryable one at once, so an AR must not burn the retry budget, an AE must be retried, and
an ACK that answers some other message must never be taken for this one's.

One instance serves one delivery lane, so each lane has its own connection and the engine's
one-send-at-a-time per lane matches the client's one frame in flight.

test-case-name: tests.channels.test_mllp_destination
"""
from __future__ import annotations

from typing import Any, Mapping

from OpenSSL import SSL, crypto
from twisted.internet import defer

from channels.options import label, require_positive, resolve
from engine.interfaces import (
    ConnectorSpec, DeliveryContext, DeliveryFailed, DeliveryOutcome, OptionSpec)
from mllp.ack import AckResult, parse_ack
from mllp.client import MLLPClient, MLLPClientError
from mllp.codes import (
    ACCEPTING_CODES, APPLICATION_ERROR, APPLICATION_REJECT, COMMIT_ERROR, COMMIT_REJECT)
from mllp.framing import DEFAULT_MAX_FRAME_SIZE
from mllp.header import HeaderError
from mllp.tls import client_tls_options

RETRYABLE_CODES = frozenset({APPLICATION_ERROR, COMMIT_ERROR})
REJECTING_CODES = frozenset({APPLICATION_REJECT, COMMIT_REJECT})

SPEC = ConnectorSpec(
    role="destination", type_name="mllp",
    help="Send each message to an MLLP peer (optionally over TLS) and read its ACK.",
    options=(
        OptionSpec("host", "str", required=True, help="peer host name or address"),
        OptionSpec("port", "port", required=True),
        OptionSpec("connect_timeout", "duration", default=10),
        OptionSpec("ack_timeout", "duration", default=30,
                   help="wait this long for the ACK, then drop the connection and retry"),
        OptionSpec("max_frame_size", "size", default=DEFAULT_MAX_FRAME_SIZE,
                   help="largest ACK accepted (default 16 MiB)"),
        OptionSpec("tls", "bool", default=False, help="MLLP over TLS"),
        OptionSpec("tls_ca", "path", help="PEM CA bundle the server is checked against "
                                          "(default: the platform's trust store)"),
        OptionSpec("tls_cert", "path", help="PEM client certificate, for mutual TLS"),
        OptionSpec("tls_key", "path", help="PEM private key of tls_cert"),
        OptionSpec("tls_hostname", "str", help="name the server certificate must carry "
                                               "(default: host)"),
    ))


class MLLPDestination:
    """Deliver to ``host:port`` over one :class:`MLLPClient`, connected on the first send."""

    def __init__(self, name: str, channel: str, lane: int, options: Mapping[str, Any],
                 reactor: Any):
        values = resolve(SPEC, name, options)
        require_positive(SPEC, name, values, "connect_timeout", "ack_timeout", "max_frame_size")
        self.name = name
        self.channel = channel
        self.lane = lane
        self.host = values["host"]
        self.port = values["port"]
        self.address = f"{self.host}:{self.port}"
        self._client = MLLPClient.for_address(
            reactor, self.host, self.port, _tls_options(name, values),
            connect_timeout=values["connect_timeout"], ack_timeout=values["ack_timeout"],
            max_frame_size=values["max_frame_size"],
            # The lane's retry policy already waits between attempts; a backoff of the
            # client's own on top would delay the first send after an outage by up to 30 s.
            reconnect_initial=0.0, reconnect_max=0.0)

    def start(self) -> None:
        """Nothing to do: the connection is opened by the first send."""

    def stop(self) -> defer.Deferred:
        """Close the connection; the Deferred fires once it is gone."""
        return self._client.close()

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        """Send ``payload``; Deferred[DeliveryOutcome], or failing with DeliveryFailed."""
        sent = self._client.send(payload)
        sent.addCallbacks(self._judge, self._transport_failed, callbackArgs=(context,))
        return sent

    def _judge(self, ack: bytes, context: DeliveryContext) -> DeliveryOutcome:
        """An outcome for the ACK, or raise DeliveryFailed saying why it is not one."""
        try:
            result = parse_ack(ack)
        except HeaderError as error:
            raise DeliveryFailed(f"{self.address} answered with an unreadable ACK: {error.text}",
                                 retryable=True, response=ack) from None
        mismatch = _control_id_mismatch(result, context.control_id)
        if mismatch:
            raise DeliveryFailed(f"{self.address}: {mismatch}", retryable=True, response=ack)
        if result.code in ACCEPTING_CODES:
            return DeliveryOutcome(response=ack, detail=result.code)
        if result.code in RETRYABLE_CODES or result.code in REJECTING_CODES:
            raise DeliveryFailed(f"{self.address} answered {describe_ack(result)}",
                                 retryable=result.code in RETRYABLE_CODES, response=ack)
        raise DeliveryFailed(f"{self.address} answered with unknown acknowledgment code "
                             f"{result.code!r}", retryable=True, response=ack)

    def _transport_failed(self, failure: Any) -> Any:
        """Name the peer in connection errors; refuse for good a payload MLLP cannot carry."""
        if failure.check(MLLPClientError):
            raise DeliveryFailed(f"{self.address}: {failure.getErrorMessage()}",
                                 retryable=True) from None
        if failure.check(ValueError):
            raise DeliveryFailed(f"cannot send to {self.address}: {failure.getErrorMessage()}",
                                 retryable=False) from None
        return failure


def _control_id_mismatch(result: AckResult, expected: str | None) -> str | None:
    """Why this ACK cannot be for the message sent, or None if it can.

    An empty MSA-2 on a negative ACK is the peer saying it could not read our MSH at all;
    with one frame in flight that ACK can only be about our message, so it is judged by its
    code. An empty MSA-2 on an AA confirms nothing and is not taken as a delivery.
    """
    if expected is None or result.control_id_echoed == expected:
        return None
    if not result.control_id_echoed and result.code not in ACCEPTING_CODES:
        return None
    return f"ACK answers control id {result.control_id_echoed!r}, expected {expected!r}"


def describe_ack(result: AckResult) -> str:
    """``AE: unknown patient (ERR 204)``: the code, MSA-3 text and ERR codes of an ACK."""
    text = f"{result.code}: {result.text}" if result.text else result.code
    if result.error_codes:
        text += f" (ERR {', '.join(str(code) for code in result.error_codes)})"
    return text


def _tls_options(name: str, values: Mapping[str, Any]) -> Any:
    """Client TLS options when ``tls`` is on; TLS settings without it are a mistake, refused."""
    tls_settings = [option for option in ("tls_ca", "tls_cert", "tls_key", "tls_hostname")
                 if values[option] is not None]
    if not values["tls"]:
        if tls_settings:
            raise ValueError(f"{label(SPEC, name)}: {', '.join(tls_settings)} set but tls is "
                             "false; set tls: true to use them")
        return None
    if (values["tls_cert"] is None) != (values["tls_key"] is None):
        raise ValueError(f"{label(SPEC, name)}: tls_cert and tls_key go together")
    hostname = values["tls_hostname"] or values["host"]
    try:
        return client_tls_options(hostname, values["tls_ca"], values["tls_cert"],
                                  values["tls_key"])
    except (OSError, ValueError, SSL.Error, crypto.Error) as error:
        raise ValueError(f"{label(SPEC, name)}: cannot load TLS files: {error}") from error
