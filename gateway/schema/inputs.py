from __future__ import annotations

import strawberry

from gateway.schema.enums import IdentifierType


@strawberry.input(description="One identifier of the entity looked up.")
class IdentifierInput:
    type: IdentifierType
    value: str
