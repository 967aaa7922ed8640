"""A DataFrame's index as JSON and back, so batch results align to their input after a restart.

Kept exactly: RangeIndex, plain indexes of str/int/float/bool values, DatetimeIndex (with its time
zone), TimedeltaIndex and MultiIndex of those. Anything else is recorded as ``unstored`` and the
results say so (``attrs["aligned"] = False``) instead of silently taking a new index.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .mediatypes import pandas_module

log = logging.getLogger(__name__)

_SCALARS = (str, int, float, bool)


def _name(name: Any) -> Any:
    return name if name is None or isinstance(name, (str, int)) else str(name)


def _encode(index: Any) -> dict[str, Any] | None:
    pd = pandas_module()
    if isinstance(index, pd.MultiIndex):
        levels = [_encode(index.get_level_values(i)) for i in range(index.nlevels)]
        if any(level is None for level in levels):
            return None
        return {"kind": "multi", "levels": levels, "names": [_name(n) for n in index.names]}
    if isinstance(index, pd.RangeIndex):
        return {"kind": "range", "start": index.start, "stop": index.stop, "step": index.step,
                "name": _name(index.name)}
    if isinstance(index, pd.DatetimeIndex):
        ns = index.as_unit("ns").asi8.tolist()
        return {"kind": "datetime", "ns": [None if index[i] is pd.NaT else v for i, v in enumerate(ns)],
                "tz": str(index.tz) if index.tz is not None else None, "unit": index.unit, "name": _name(index.name)}
    if isinstance(index, pd.TimedeltaIndex):
        return {"kind": "timedelta", "ns": index.as_unit("ns").asi8.tolist(), "unit": index.unit,
                "name": _name(index.name)}
    values = index.tolist()
    if index.dtype.kind not in "biufOUT" or not all(isinstance(v, _SCALARS) for v in values):
        return None
    return {"kind": "values", "dtype": str(index.dtype), "values": values, "name": _name(index.name)}


def encode_index(index: Any) -> str | None:
    """JSON for ``index``; None for the default RangeIndex (nothing to keep)."""
    pd = pandas_module()
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None:
        return None
    encoded = _encode(index)
    if encoded is None:
        return json.dumps({"kind": "unstored", "type": type(index).__name__, "dtype": str(index.dtype)})
    return json.dumps(encoded)


def _decode(data: dict[str, Any]) -> Any:
    pd = pandas_module()
    kind = data["kind"]
    if kind == "multi":
        return pd.MultiIndex.from_arrays([_decode(level) for level in data["levels"]], names=data["names"])
    if kind == "range":
        return pd.RangeIndex(data["start"], data["stop"], data["step"], name=data["name"])
    if kind == "datetime":
        values = pd.to_datetime([pd.NaT if v is None else v for v in data["ns"]], unit="ns", utc=bool(data["tz"]))
        if data["tz"]:
            values = values.tz_convert(data["tz"])
        return pd.DatetimeIndex(values, name=data["name"]).as_unit(data.get("unit", "ns"))
    if kind == "timedelta":
        return pd.TimedeltaIndex(pd.to_timedelta(data["ns"], unit="ns"), name=data["name"]).as_unit(
            data.get("unit", "ns"))
    if kind == "values":
        return pd.Index(data["values"], dtype=data["dtype"] if data["dtype"] != "object" else object,
                        name=data["name"])
    # The first map stored plain indexes as {"name", "values"}.
    return pd.Index(data["values"], name=data.get("name"))


def decode_index(text: str | None, length: int) -> tuple[Any, str | None]:
    """(index, note): the stored index, or a RangeIndex of ``length`` and why it is not the input's."""
    pd = pandas_module()
    if not text:
        return pd.RangeIndex(length), None
    data = json.loads(text)
    if data.get("kind") == "unstored":
        return pd.RangeIndex(length), (f"the input's {data['type']} ({data['dtype']}) could not be kept in the "
                                       "journal, so results carry a new RangeIndex")
    try:
        index = _decode(data) if "kind" in data else _decode({"kind": "legacy", **data})
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("could not rebuild a stored input index: %s", exc)
        return pd.RangeIndex(length), "the stored input index could not be rebuilt"
    return index, None
