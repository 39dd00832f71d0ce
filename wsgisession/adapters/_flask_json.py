"""The Flask adapter's serializer: :class:`~wsgisession.JSONSerializer` plus ``Markup``.

Kept apart from :mod:`wsgisession.adapters.flask` (which re-exports it) so the session
interface stays one screenful; it imports no Flask, only MarkupSafe.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from ..serializers import JSONSerializer

__all__ = ["FlaskJSONSerializer"]

_HTML_TAG = "$html"
#: Scalars that need no tagging (checked by exact type: ``Markup`` is a ``str`` subclass).
_PLAIN = frozenset({str, int, float, bool, type(None)})
_ALL_PLAIN = _PLAIN.issuperset
#: In the base serializer's bytes, a tag of ours (or an escaped dict) shows as one of these;
#: without them, ``loads`` has nothing to untag.
_MARKERS = (b'"$html"', b'"$"')


def _tag(obj: Any) -> Any:
    """Replace ``__html__`` objects by ``{"$html": str}``, and escape a user dict whose
    single key is ``"$html"`` or ``"$"`` as ``{"$": [[key, value]]}`` (so neither reads
    back as a tag). Returns ``obj`` itself when nothing inside needs either."""
    t = type(obj)
    if t in _PLAIN:
        return obj
    if t is dict:
        if len(obj) == 1:
            ((key, value),) = obj.items()
            if key == _HTML_TAG or key == "$":
                return {"$": [[key, _tag(value)]]}
        if _ALL_PLAIN(map(type, obj.values())):  # the common case, at C speed
            return obj
        out = None
        for key, value in obj.items():
            tagged = value if type(value) in _PLAIN else _tag(value)
            if tagged is not value and out is None:
                out = dict(obj)
            if out is not None:
                out[key] = tagged
        return obj if out is None else out
    if t is list or t is tuple:
        if _ALL_PLAIN(map(type, obj)):
            return obj
        items = [v if type(v) in _PLAIN else _tag(v) for v in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return items if t is list else tuple(items)
    if hasattr(obj, "__html__"):
        return {_HTML_TAG: str(obj.__html__())}
    if isinstance(obj, dict):
        return _tag(dict(obj))
    if isinstance(obj, list):
        return _tag(list(obj))
    return obj


def _untag(obj: Any) -> Any:
    """Inverse of :func:`_tag`, applied top-down to what the base serializer loaded."""
    if type(obj) is dict:
        if len(obj) == 1:
            ((key, value),) = obj.items()
            if key == _HTML_TAG and type(value) is str:
                # Authenticated data we wrote from a Markup object: already safe HTML.
                return Markup(value)  # noqa: S704
            if (
                key == "$"
                and type(value) is list
                and len(value) == 1
                and type(value[0]) is list
                and len(value[0]) == 2
                and type(value[0][0]) is str
            ):
                return {value[0][0]: _untag(value[0][1])}
        return {k: _untag(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_untag(v) for v in obj]
    if type(obj) is tuple:
        return tuple(_untag(v) for v in obj)
    return obj


class FlaskJSONSerializer(JSONSerializer):
    """:class:`~wsgisession.JSONSerializer` that also round-trips ``Markup``.

    Any object with ``__html__`` is stored as its HTML string and comes back as
    :class:`markupsafe.Markup`; everything else is exactly as with the base class.
    Data without either costs one walk on ``dumps`` and a substring test on ``loads``.
    """

    def dumps(self, obj: Any) -> bytes:
        return super().dumps(_tag(obj))

    def loads(self, data: bytes) -> Any:
        loaded = super().loads(data)
        if _MARKERS[0] in data or _MARKERS[1] in data:
            return _untag(loaded)
        return loaded

    def __repr__(self) -> str:
        return "FlaskJSONSerializer()"
