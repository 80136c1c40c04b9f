"""Response content negotiation: which media type and which object form a client wants.

Clients list what they accept, in order: ``kubectl get`` asks for a ``Table``
(``application/json;as=Table;v=v1;g=meta.k8s.io, ..., application/json``), metadata
clients for ``PartialObjectMetadata[List]`` in protobuf or JSON, discovery clients for
``APIGroupDiscoveryList``. The first entry the stand-in can produce wins, as in
kube-apiserver; an ``Accept`` naming nothing it can produce is a 406.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from secretkit.sandbox.apiserver.status import ApiError

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
#: the object forms (``as=``) a resource endpoint can answer with besides the object itself
TRANSFORMS = frozenset({"Table", "PartialObjectMetadata", "PartialObjectMetadataList"})


@dataclass(frozen=True)
class Target:
    """What to answer with: the media type and the object form (``as``), if any."""

    media: str = JSON
    form: str | None = None
    version: str = "v1"

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header of the answer."""
        if self.form is None:
            return self.media
        return f"{self.media};as={self.form};g=meta.k8s.io;v={self.version}"


def _entries(accept: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for part in accept.split(","):
        fields = [p.strip() for p in part.split(";")]
        if not fields[0]:
            continue
        params: dict[str, str] = {}
        for item in fields[1:]:
            key, _, value = item.partition("=")
            params[key.strip().lower()] = value.strip()
        out.append((fields[0].lower(), params))
    return out


def negotiate(accept: str, *, is_list: bool, tables: bool = True, protobuf: bool = True
              ) -> Target:
    """Pick the answer for a resource request (``is_list``: a collection endpoint).

    ``protobuf`` False: the kind has no protobuf form (kube-apiserver's custom
    resources), so only its metadata forms may be protobuf.
    """
    return _negotiate(accept, is_list, tables, protobuf)


@functools.lru_cache(maxsize=256)
def _negotiate(accept: str, is_list: bool, tables: bool, protobuf: bool) -> Target:
    # clients send the same few Accept headers over and over; a 406 is never cached
    if not accept.strip():
        return Target()
    for media, params in _entries(accept):
        if media in ("*/*", "application/*"):
            return Target()
        if media not in (JSON, PROTOBUF):
            continue
        form = params.get("as")
        if form is None:
            if media == PROTOBUF and not protobuf:
                continue
            return Target(media)
        if form not in TRANSFORMS or params.get("g") != "meta.k8s.io":
            continue
        version = params.get("v", "v1")
        if version not in ("v1", "v1beta1"):
            continue
        if form == "Table" and (media != JSON or not tables):
            continue
        if form == "PartialObjectMetadata" and is_list:
            raise _not_acceptable("you requested PartialObjectMetadata, but the requested "
                                  "object is a list")
        if form == "PartialObjectMetadataList" and not is_list:
            raise _not_acceptable("you requested PartialObjectMetadataList, but the requested "
                                  "object is not a list")
        return Target(media, form, version)
    raise _not_acceptable(f"only the following media types are accepted: {JSON}, {PROTOBUF}")


def _not_acceptable(message: str) -> ApiError:
    return ApiError(406, "NotAcceptable", message)


def wants_aggregated_discovery(accept: str) -> str | None:
    """The ``apidiscovery.k8s.io`` version asked for first (``v2``/``v2beta1``), if any."""
    for media, params in _entries(accept):
        if media != JSON:
            continue
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == (
            "APIGroupDiscoveryList"
        ) and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
        if "as" not in params:
            return None
    return None
