"""The JSON app schemas hartool knows, in detection order: a new app format is one module and one line here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hartool.wire.apps.base import AppSchema
from hartool.wire.apps.fields import NamedFields
from hartool.wire.apps.hyperimu import HyperImu
from hartool.wire.apps.sensorlogger import SensorLogger

__all__ = ["SCHEMAS", "refusal", "schema_of"]

SCHEMAS: dict[str, type[AppSchema]] = {
    SensorLogger.name: SensorLogger,
    HyperImu.name: HyperImu,
    NamedFields.name: NamedFields,  # last: any object naming a model channel
}


def schema_of(doc: Any, channel_names: Sequence[str]) -> type[AppSchema] | None:
    """The schema that claims ``doc``, None when it is not an object or no schema fits."""
    if not isinstance(doc, dict):
        return None
    return next((s for s in SCHEMAS.values() if s.claims(doc, channel_names)), None)


def refusal(doc: Any) -> str | None:
    """Why a transport should refuse the document ``doc`` outright, or None."""
    if not isinstance(doc, dict):
        return None
    return next((why for s in SCHEMAS.values() if (why := s.refusal(doc)) is not None), None)
