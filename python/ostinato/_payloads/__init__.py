"""Payload conversion: Python values <-> JSON bytes (orjson), typed by annotations.

Encoding turns a value into JSON bytes; decoding turns JSON bytes back into Python values shaped
by a type hint (usually a parameter or return annotation). Nothing is ever pickled.

Encoding rules
--------------
* JSON natives (``None``, ``bool``, ``int`` in the 64-bit range, finite ``float``, ``str``,
  ``list``, ``dict``) are written as they are. Dicts keep their insertion order; non-``str``
  keys (``int``, ``float``, ``bool``, ``UUID``, ``Enum``, ``date`` ...) are written as strings.
* dataclass -> object of all its fields (recursively), ``Enum`` -> its value, ``tuple`` and
  ``NamedTuple`` -> array, ``set``/``frozenset`` -> array (sorted when the items are sortable,
  otherwise ordered by their JSON text, so the output is deterministic), ``datetime``/``date``/
  ``time`` -> ISO 8601 string (offset kept to the microsecond), ``timedelta`` -> seconds as a
  float, ``UUID`` -> string, ``Decimal`` -> string, ``bytes`` -> base64 string.
* NaN and infinities are refused: JSON cannot carry them.

Decoding is driven by a compiled decoder per type hint, cached, so the hot path (decoding an
activity result of a plain type) is one ``orjson.loads`` plus a type check.

Modules: ``_encode`` (values -> JSON bytes), ``_decode`` (compiled decoders per type hint),
``_signatures`` (per-function call plans and the arity check), ``_converter`` (the facade
:class:`PayloadConverter`), ``_call`` (:func:`prepare_call`, which turns a workflow or activity
reference and its arguments into the name, the checked and encoded arguments and the result
decoder, for the client, child workflows and activities).
"""

from __future__ import annotations

from ._call import PreparedCall, prepare_call
from ._converter import DEFAULT_MAX_PAYLOAD_SIZE, PayloadConverter, default_converter
from ._signatures import check_call

__all__ = [
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "PayloadConverter",
    "PreparedCall",
    "check_call",
    "default_converter",
    "prepare_call",
]
