"""JSON in and out for every OpenRTB document, with decoding errors as ``InvalidRequestError``.

Each decoder is built once, on first use, and reused for every message.

>>> request = decode_request(b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}}]}')
>>> request.imp[0].banner.w
300
>>> encode_request(request)
b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}}]}'
>>> decode_request(b'{"id":"r1","tmax":"120"}')
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: tmax: Expected `int | null`, got `str` [type]
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

import msgspec

from .native import NativeRequest, NativeResponse
from .rejection import rejection_from_msgspec
from .request import BidRequest
from .response import BidResponse

__all__ = [
    "decode_native_request",
    "decode_native_response",
    "decode_request",
    "decode_response",
    "encode_native_request",
    "encode_native_response",
    "encode_request",
    "encode_response",
]

T = TypeVar("T")


class _NativeRequestEnvelope(msgspec.Struct, forbid_unknown_fields=False):
    # Native 1.0 wrapped the document in {"native": {...}}; many exchanges still do.
    native: NativeRequest | None = None


class _NativeResponseEnvelope(msgspec.Struct, forbid_unknown_fields=False):
    native: NativeResponse | None = None


_encoder: Final = msgspec.json.Encoder()


class _LazyDecoder(Generic[T]):
    """A msgspec JSON decoder for ``kind``, built on first use and kept.

    Building one walks the whole model (tens of milliseconds), which ``import bidcore`` should
    not pay when only the native core is used. Two threads racing to build it build two equal
    decoders; one is kept, no harm done.
    """

    __slots__ = ("_decoder", "_kind")

    def __init__(self, kind: type[T]) -> None:
        self._kind = kind
        self._decoder: msgspec.json.Decoder[T] | None = None

    def decode(self, body: bytes | str) -> T:
        if self._decoder is None:
            self._decoder = msgspec.json.Decoder(self._kind)
        return self._decoder.decode(body)


_request_decoder: Final = _LazyDecoder(BidRequest)
_response_decoder: Final = _LazyDecoder(BidResponse)
_native_request_decoder: Final = _LazyDecoder(NativeRequest)
_native_request_envelope_decoder: Final = _LazyDecoder(_NativeRequestEnvelope)
_native_response_decoder: Final = _LazyDecoder(NativeResponse)
_native_response_envelope_decoder: Final = _LazyDecoder(_NativeResponseEnvelope)


def decode_request(body: bytes | str) -> BidRequest:
    """Decodes a bid request, type-checking every field of OpenRTB 2.6.

    Raises :class:`~bidcore.errors.InvalidRequestError` with rule ``json`` (not JSON) or ``type``
    (a field of the wrong type or out of range). Semantic rules are not checked here: see
    :func:`~bidcore.openrtb.validate.validate_request`.
    """
    try:
        return _request_decoder.decode(body)
    except msgspec.DecodeError as err:
        raise rejection_from_msgspec(err) from err


def encode_request(request: BidRequest) -> bytes:
    """Encodes a bid request as compact JSON, leaving absent fields out."""
    return _encoder.encode(request)


def decode_response(body: bytes | str) -> BidResponse:
    """Decodes a bid response; errors as for :func:`decode_request`."""
    try:
        return _response_decoder.decode(body)
    except msgspec.DecodeError as err:
        raise rejection_from_msgspec(err) from err


def encode_response(response: BidResponse) -> bytes:
    """Encodes a bid response as compact JSON, leaving absent fields out."""
    return _encoder.encode(response)


def decode_native_request(body: bytes | str) -> NativeRequest:
    """Decodes a Native Ads request document (``imp.native.request``).

    The Native 1.0 form wrapped in ``{"native": {...}}`` is unwrapped.
    """
    try:
        envelope = _native_request_envelope_decoder.decode(body)
        if envelope.native is not None:
            return envelope.native
        return _native_request_decoder.decode(body)
    except msgspec.DecodeError as err:
        raise rejection_from_msgspec(err) from err


def encode_native_request(request: NativeRequest) -> bytes:
    """Encodes a Native Ads request document (unwrapped, the 1.1+ form)."""
    return _encoder.encode(request)


def decode_native_response(body: bytes | str) -> NativeResponse:
    """Decodes a Native Ads response document (a native bid's ``adm``), unwrapping 1.0's
    ``{"native": {...}}``."""
    try:
        envelope = _native_response_envelope_decoder.decode(body)
        if envelope.native is not None:
            return envelope.native
        return _native_response_decoder.decode(body)
    except msgspec.DecodeError as err:
        raise rejection_from_msgspec(err) from err


def encode_native_response(response: NativeResponse) -> bytes:
    """Encodes a Native Ads response document (unwrapped, the 1.1+ form)."""
    return _encoder.encode(response)
