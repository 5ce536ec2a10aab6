"""Nested mappings (metrics records, reports) flattened to one level of joined keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flatten_nested"]


def flatten_nested(record: Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """The leaves of a nested mapping keyed by their joined path: ``{"a": {"b": 1}}`` ->
    ``{"a.b": 1}``. Leaves keep their value and type; callers pick the ones they can show.

    Args:
        record: the nested mapping.
        sep: joins the keys of each level.
    """
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}{sep}{name}": v for name, v in flatten_nested(value, sep).items()})
        else:
            flat[str(key)] = value
    return flat
