"""The Native request an imp carries, read and checked as the native core does (``native.rs``).

OpenRTB puts the Native Ads request document in ``imp.native.request`` as a JSON string; some
exchanges send the object itself. Either way the core reads the document with the same reader
and limits as the bid request (a string's content is read as JSON), names a problem inside it
by its path under ``imp[i].native.request``, and checks Native 1.2's requirements. Native 1.0
and 1.1 wrapped the document in ``{"native": {...}}``: then the inner document is the one
checked, at ``imp[i].native.request.native``.

>>> import json
>>> from bidcore.errors import InvalidRequestError
>>> def check(raw: bytes) -> None:
...     try:
...         check_native_request(raw, path="imp[0].native.request")
...     except InvalidRequestError as err:
...         print(err.rule, err.path)
>>> check(b'{"assets":[{"id":1,"title":{"len":90}}]}')
>>> check(json.dumps('{"assets":[]}').encode())  # the document in a string
required imp[0].native.request.assets
>>> check(b'{"native":{"assets":[{"id":1,"img":{},"data":{"type":1}}]}}')
native_asset imp[0].native.request.native.assets[0]
>>> check(b'{"assets":[{"id":1,"img":{"w":-1}}]}')
type imp[0].native.request.assets[0].img.w
"""

from __future__ import annotations

from typing import Any

import msgspec

from .document import read_document
from .limits import DEFAULT_LIMITS, Limits
from .native import NativeRequest
from .rejection import rejection
from .view_schema import NATIVE_WRAPPER

__all__ = ["check_native_request"]


def check_native_request(raw: bytes, limits: Limits = DEFAULT_LIMITS, *, path: str) -> None:
    """Reads and checks the Native request ``raw`` (the JSON text of ``native.request``: a string
    holding the document, or the document itself) found at ``path``.

    Raises :class:`~bidcore.errors.InvalidRequestError`: rule ``type`` at ``path`` if ``raw`` is
    neither a string nor an object; the reader's rules (``json``, ``type``, ``depth``,
    ``string_length``) inside the document; Native 1.2's requirements (``required``,
    ``duplicate_asset``, ``native_asset``).
    """
    text = raw.lstrip()
    if text[:1] not in (b'"', b"{"):
        raise rejection("type", path, "the native request must be a string or an object")
    document = msgspec.json.decode(text, type=str).encode() if text[:1] == b'"' else text
    view: dict[str, Any] = msgspec.to_builtins(
        read_document(document, NativeRequest, limits, path=path)
    )
    wrapped = view.get(NATIVE_WRAPPER)
    if wrapped is not None:
        _validate(msgspec.convert(wrapped, NativeRequest), f"{path}.{NATIVE_WRAPPER}")
    else:
        _validate(msgspec.convert(view, NativeRequest), path)


def _validate(request: NativeRequest, path: str) -> None:
    """Native 1.2's requirements: assets present, each with a unique id and exactly one of title,
    img, video, data, and the fields each of those requires; trackers with an event and methods."""
    assets = request.assets
    if not assets:
        raise rejection("required", f"{path}.assets", "a native request needs assets")
    for k, asset in enumerate(assets):
        at = f"{path}.assets[{k}]"
        if asset.id is None:
            raise rejection("required", f"{at}.id", "every asset needs an id")
        first = next((j for j, other in enumerate(assets[:k]) if other.id == asset.id), None)
        if first is not None:
            raise rejection(
                "duplicate_asset",
                f"{at}.id",
                f"asset id {asset.id} is already used by assets[{first}]",
            )
        kinds = (asset.title, asset.img, asset.video, asset.data)
        if sum(kind is not None for kind in kinds) != 1:
            raise rejection(
                "native_asset", at, "an asset carries exactly one of title, img, video, data"
            )
        if asset.title is not None and asset.title.len is None:
            raise rejection("required", f"{at}.title.len", "a title asset needs len")
        if asset.video is not None:
            video = asset.video
            if not video.mimes:
                raise rejection("required", f"{at}.video.mimes", "a video asset needs mimes")
            if video.minduration is None:
                raise rejection(
                    "required", f"{at}.video.minduration", "a video asset needs minduration"
                )
            if video.maxduration is None:
                raise rejection(
                    "required", f"{at}.video.maxduration", "a video asset needs maxduration"
                )
            if not video.protocols:
                raise rejection(
                    "required", f"{at}.video.protocols", "a video asset needs protocols"
                )
        if asset.data is not None and asset.data.type is None:
            raise rejection("required", f"{at}.data.type", "a data asset needs a type")
    for k, tracker in enumerate(request.eventtrackers or ()):
        at = f"{path}.eventtrackers[{k}]"
        if tracker.event is None:
            raise rejection("required", f"{at}.event", "an event tracker needs event")
        if not tracker.methods:
            raise rejection("required", f"{at}.methods", "an event tracker needs methods")
