"""The domain's closed vocabularies, shared by the schema, the importer and the database."""

from __future__ import annotations

from enum import Enum


class Source(Enum):
    INSTORE = "INSTORE"
    FACEBOOK = "FACEBOOK"
    WEB_ENGAGE = "WEB_ENGAGE"
    WECHAT = "WECHAT"
    MARTJACK = "MARTJACK"
    TMALL = "TMALL"
    TAOBAO = "TAOBAO"
    JD = "JD"
    ECOMMERCE = "ECOMMERCE"
    WEBSITE = "WEBSITE"
    LINE = "LINE"
    MOBILE_APP = "MOBILE_APP"


class IdentifierType(Enum):
    MOBILE = "MOBILE"
    EMAIL = "EMAIL"
    EXTERNAL_ID = "EXTERNAL_ID"
    CARD_NUMBER = "CARD_NUMBER"
    CUID = "CUID"
    ID = "ID"
    PRIMARY_USER_ID = "PRIMARY_USER_ID"


class EntityType(Enum):
    CUSTOMER = "CUSTOMER"
    FLEET = "FLEET"


# Types a customer can have registered under a source (ID is the customer id itself).
REGISTERED_IDENTIFIER_TYPES = frozenset(
    {
        IdentifierType.MOBILE,
        IdentifierType.EMAIL,
        IdentifierType.EXTERNAL_ID,
        IdentifierType.CARD_NUMBER,
        IdentifierType.CUID,
    }
)
CUSTOMER_IDENTIFIER_TYPES = REGISTERED_IDENTIFIER_TYPES | {IdentifierType.ID}
FLEET_IDENTIFIER_TYPES = frozenset({IdentifierType.ID, IdentifierType.EXTERNAL_ID, IdentifierType.PRIMARY_USER_ID})
# Identifier types whose value is an entity id rather than a registered string.
ENTITY_ID_TYPES = frozenset({IdentifierType.ID, IdentifierType.PRIMARY_USER_ID})

MAX_ENTITY_ID = 2**63 - 1
