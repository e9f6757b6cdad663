"""The fast line parser against the precise one: the same record, or the same reason, for every line.

gateway.importer.fast_records vouches only for lines it can check in one go and hands everything else to
records.parse_line. Here lines of every kind, valid and not, are generated and both parsers' outcomes compared,
down to the types of the fields and the exponents of the Decimals.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.importer import fast_records, records
from gateway.importer.records import RecordError

Outcome = tuple[Any, ...]


def _shape(value: Any) -> Any:
    """A value with the type of everything in it: 1.5 and 1.500, or 1 and True, do not compare equal here."""
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple((field.name, _shape(getattr(value, field.name))) for field in fields(value)))
    if type(value) is tuple:
        return (tuple, tuple(_shape(item) for item in value))
    return (type(value), repr(value))


def _outcome(parse: Any, line: str) -> Outcome:
    try:
        record = parse(line)
    except RecordError as error:
        return ("refused", error.reason)
    except Exception as error:  # an outcome too: both parsers must fail alike
        return ("raised", type(error), str(error))
    return ("parsed", _shape(record))


def _assert_same(line: str) -> Outcome:
    precise = _outcome(records.parse_line, line)
    assert _outcome(fast_records.parse_line, line) == precise, line
    return precise


# -- Lines written out ---------------------------------------------------------------------------------------

_CUSTOMER = '{"kind":"customer","id":7,"orgId":1,"identifiers":[%s]}'
_BALANCE = (
    '{"kind":"balance","orgId":1,"entityType":"CUSTOMER","entityId":7,"programId":9,'
    '"mainPoints":%s,"delayedAccrualPoints":"0.500","externalTriggerBasedPoints":"0"}'
)
_FLEET = '{"kind":"fleet","id":5,"orgId":1,"externalId":%s,"primaryUserId":7}'
_MOBILE = '{"source":"INSTORE","type":"MOBILE","value":"+91 98000 00001"}'
_EMAIL = '{"source":"WEB_ENGAGE","type":"EMAIL","value":" Tom@Example.COM "}'
_CUID = '{"source":"WECHAT","accountId":"wx-1","type":"CUID","value":"o6_1"}'
_AS_OF = '"asOf":"2026-12-02T10:15:30.123456Z"'

# Valid lines of the shapes the fast path is for: it must parse them itself.
FAST_LINES = [
    _CUSTOMER % "",
    _CUSTOMER % _MOBILE,
    _CUSTOMER % f"{_MOBILE},{_EMAIL}",
    _CUSTOMER % f"{_MOBILE},{_EMAIL},{_CUID}",
    _CUSTOMER % '{"source":"LINE","accountId":null,"type":"CARD_NUMBER","value":" C 1 "}',
    _CUSTOMER % '{"source":"LINE","accountId":"","type":"EXTERNAL_ID","value":"X:1"}',
    _CUSTOMER % '{"source":"JD","accountId":"a:b","type":"CUID","value":"say \\"hi\\""}',
    _CUSTOMER % f'{_MOBILE},{{"source":"JD","type":"MOBILE","value":"+91 98000 00001"}}',  # same value, two sources
    _CUSTOMER.replace("[%s]}", f"[{_EMAIL}],{_AS_OF}}}"),
    '{ "kind" : "customer" , "id" : 7 , "orgId" : 1 , "identifiers" : [ ] }\n',
    '{"identifiers":[],"orgId":1,"id":9223372036854775807,"kind":"customer"}\r\n',
    _FLEET % '"F-5"',
    _FLEET % '" F:5 "',
    _FLEET.replace("}", f",{_AS_OF}}}") % '"F-5"',
    _BALANCE % '"8500.000"',
    _BALANCE % '"-12.5"',
    _BALANCE % '"-0"',
    _BALANCE % '"000000000000000000001.1"',
    _BALANCE % '"999999999999999.999"',
    _BALANCE % "0",
    _BALANCE % "-0",
    _BALANCE % "123456789012345",
    _BALANCE.replace('"CUSTOMER"', '"FLEET"').replace("}", f",{_AS_OF}}}") % '"1.5"',
    _BALANCE.replace("}", ',"asOf":"2026-01-01T00:00:00+05:30"}') % '"1.5"',
]

# Lines the fast path may hand on; both parsers must agree on them all the same.
OTHER_LINES = [
    '{"kind":"org","id":1,"name":"Acme","dualEligibility":false}',
    '{"kind":"org","id":2,"name":"Beta","dualEligibility":true,"primaryIdentifier":"CUID"}',
    '{"kind":"program","id":9,"orgId":1,"name":"P","default":false}',
    _BALANCE % "1e3",
    _BALANCE % "12.5",
    _BALANCE % "0.125",
    _BALANCE % "-0.0",
    _BALANCE % "1.5e-2",
    _BALANCE % "1E+2",
    _BALANCE % "1.2345",
    _BALANCE % "1.2300",
    _BALANCE % "1e-4",
    _BALANCE % "1e15",
    _BALANCE % "1e400",
    _BALANCE % "-1e-400",
    _BALANCE % "-1000000000000000",
    _BALANCE % "18446744073709551616",
    _BALANCE % ("9" * 5000),
    _BALANCE % '"1.2345"',
    _BALANCE % '"1e3"',
    _BALANCE % '"+1"',
    _BALANCE % '" 1"',
    _BALANCE % '"1."',
    _BALANCE % '""',
    _BALANCE % '"1000000000000000"',
    _BALANCE % "true",
    _BALANCE % "null",
    _BALANCE % "[1]",
    _BALANCE % "NaN",
    _BALANCE % "Infinity",
    _BALANCE % '"\\u0031.5"',
    _BALANCE.replace('"programId":9', '"programId":2147483648') % '"1"',
    _BALANCE.replace('"entityType":"CUSTOMER"', '"entityType":"customer"') % '"1"',
    _BALANCE.replace('"entityType":"CUSTOMER"', '"entityType":["CUSTOMER"]') % '"1"',
    _BALANCE.replace("}", ',"mainPoints":"2"}') % '"1"',
    _BALANCE.replace("}", ',"mainPoints":"1"}') % '"1"',
    _BALANCE.replace("}", ',"note":"x"}') % '"1"',
    _BALANCE.replace('"orgId":1,', "") % '"1"',
    _BALANCE.replace("}", ',"asOf":"2026-02-30T00:00:00Z"}') % '"1"',
    _BALANCE.replace("}", ',"asOf":"2026-12-02 10:15:30Z"}') % '"1"',
    _BALANCE.replace("}", ',"asOf":"2026-12-02T10:15:30.1234567Z"}') % '"1"',
    _BALANCE.replace("}", ',"asOf":null}') % '"1"',
    _BALANCE.replace("}", ',"asOf":"x:y:z","asOf":"2026-12-02T10:15:30Z"}') % '"1"',
    _BALANCE.replace("}", ',"asOf":"2026-12-02T10:15:30Z","asOf":"2026-12-02T10:15:31Z"}') % '"1"',
    _CUSTOMER.replace('"id":7', '"id":true') % "",
    _CUSTOMER.replace('"id":7', '"id":1.0') % "",
    _CUSTOMER.replace('"id":7', '"id":0') % "",
    _CUSTOMER.replace('"id":7', '"id":9223372036854775808') % "",
    _CUSTOMER.replace('"id":7', '"id":"7"') % "",
    _CUSTOMER.replace('"id":7', '"id":7,"id":8') % "",
    _CUSTOMER.replace('"id":7', '"\\u0069d":7') % "",
    _CUSTOMER.replace('"id":7', '"id":7,"\\u0069d":7') % "",
    _CUSTOMER.replace('"id":7', '"id":7,"i\\u0064":8') % "",
    _CUSTOMER.replace("[%s]", "{}"),
    _CUSTOMER.replace("[%s]", "null"),
    _CUSTOMER % '"tom@example.com"',
    _CUSTOMER % "[]",
    _CUSTOMER % f"{_MOBILE},{_MOBILE}",
    _CUSTOMER % f'{_EMAIL},{{"source":"WEB_ENGAGE","type":"EMAIL","value":"tom@example.com"}}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"1","value":"2"}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"1","value":"1"}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"a:b","type":"EMAIL"}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"1","accountId":"x","accountId":"y"}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","val\\u0075e":"1"}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"\\u0041"}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"\\u003a","value":"1"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"\\u0000"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"\\ud800"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"\ud800"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"a\x00b"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"a\x1fb"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":""}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"   "}',
    _CUSTOMER % '{"source":"INSTORE","type":"MOBILE","value":"+()"}',
    _CUSTOMER % ('{"source":"INSTORE","type":"CUID","value":"%s"}' % ("x" * 257)),
    _CUSTOMER % ('{"source":"INSTORE","type":"CUID","value":"%s"}' % ("x" * 256)),
    _CUSTOMER % ('{"source":"INSTORE","accountId":"%s","type":"CUID","value":"x"}' % ("x" * 257)),
    _CUSTOMER % '{"source":"INSTORE","accountId":0,"type":"CUID","value":"x"}',
    _CUSTOMER % '{"source":"INSTORE","accountId":false,"type":"CUID","value":"x"}',
    _CUSTOMER % '{"source":"INSTORE","accountId":[],"type":"CUID","value":"x"}',
    _CUSTOMER % '{"source":"INSTORE","type":"ID","value":"x"}',
    _CUSTOMER % '{"source":"NOWHERE","type":"CUID","value":"x"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":1}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID"}',
    _CUSTOMER % '{"source":"INSTORE","type":"CUID","value":"x","note":1}',
    _CUSTOMER.replace("}", ',"asOf":5}') % "",
    _FLEET % '"   "',
    _FLEET % '""',
    _FLEET % "5",
    _FLEET % '"a\\"b"',
    _FLEET % '"F-5","externalId":"F-6"',
    _FLEET % '"F:5","externalId":"F-6"',
    _FLEET.replace('"primaryUserId":7', '"primaryUserId":false') % '"F-5"',
    _FLEET.replace('"primaryUserId":7', '"primaryUserId":7.5') % '"F-5"',
    '{"kind":"fleet"}',
    '{"kind":"customer"}',
    '{"kind":"balance"}',
    '{"kind":"nothing"}',
    '{"kind":["customer"]}',
    '{"kind":{"a":1}}',
    '{"id":1}',
    "{}",
    "[]",
    '["customer"]',
    "1",
    '"customer"',
    "null",
    "true",
    "",
    "   ",
    "{",
    '{"kind":"customer",}',
    "\ufeff" + _CUSTOMER % "",
    _CUSTOMER % "" + " {}",
    _CUSTOMER % "" + "\x00",
    '{"kind":"org","id":' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"kind":"customer","id":7,"orgId":1,"identifiers":' + "[" * 2000 + "]" * 2000 + "}",
]


@pytest.mark.parametrize("line", FAST_LINES)
def test_the_fast_path_parses_the_common_shapes_itself(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _assert_same(line)

    def refuse(text: str) -> records.Record:
        raise AssertionError(f"handed on: {text}")

    monkeypatch.setattr(fast_records, "_precise", refuse)
    assert expected[0] == "parsed"
    assert _outcome(fast_records.parse_line, line) == expected


@pytest.mark.parametrize("line", OTHER_LINES)
def test_both_paths_agree_on_unusual_and_invalid_lines(line: str) -> None:
    _assert_same(line)


def test_both_paths_agree_however_many_distinct_amounts_and_timestamps_pass() -> None:
    # More than the fast path's caches hold, twice over: the second round meets values already cached.
    lines = [
        _BALANCE.replace("}", f',"asOf":"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}Z"}}')
        % f'"{n}.{n % 1000}"'
        for n in range(5000)
    ]
    for line in lines + lines:
        _assert_same(line)


# -- Near misses ---------------------------------------------------------------------------------------------
# A line is built as its fields, each a key and the value's JSON text (the identifiers: a list of such objects),
# then spoiled in one place: a value replaced by a near miss for that field, a key repeated, dropped, added,
# renamed or escaped.

_Field = tuple[str, Any]
_MAX_ID = 2**63 - 1
_MAX_PROGRAM = 2**31 - 1
_NON_VALUES = ("null", "true", "false", "[]", "{}", '{"a":1,"a":2}', "NaN", "-Infinity")
_ODD_IDS = ("0", "-1", str(_MAX_PROGRAM + 1), str(_MAX_ID + 1), str(2**64), "1.0", "1e2", "-0", '"1"', *_NON_VALUES)
_ODD_POINTS = (
    *('"1.2345"', '"1e3"', '"+1"', '" 1"', '"1."', '".5"', '""', '"1_000"', '"\u0661"', '"1000000000000000"'),
    *("1.2345", "1.2300", "1e-4", "1e15", "-1000000000000000", "1e400", "-1e-400", "18446744073709551616"),
    *('"\\u0031"', *_NON_VALUES),
)
# Blank, empty, too long, unstorable (raw or escaped), escaped colons and quotes, not a string.
_ODD_TEXTS = (
    *('""', '"   "', '"a\\u0000b"', '"\\ud800"', '"a\\u003ab"', '"\\u0041"', json.dumps("x" * 257), '"\\u003a"'),
    *(json.dumps("x" * 256), '"a\x00b"', '"a\x1fb"', '"a\ud800b"', '"a\\"b"', '"a\\\\b"', '"a:b"', "5", "1.5"),
    *_NON_VALUES,
)
_ODD_AS_OF = (
    *('"2026-02-30T00:00:00Z"', '"2026-12-02 10:15:30Z"', '"2026-12-02T10:15:30"', '"2026-12-02T10:15:30.1234567Z"'),
    *('"2026-12-02T10:15:30+0100"', '"2026-12-02t10:15:30z"', '"\u0662026-12-02T10:15:30Z"', '""', *_NON_VALUES),
)
_ODD_ENUMS = ('"instore"', '"NOWHERE"', '"ID"', '"PRIMARY_USER_ID"', '"fleet"', '"ORG"', '"MOBILE"', *_ODD_TEXTS)
# For each key, values that are not valid there (some are elsewhere).
NEAR_MISSES: dict[str, tuple[str, ...]] = {
    "kind": ('"Customer"', '"nothing"', '"org"', '"balance"', *_ODD_TEXTS),
    **dict.fromkeys(["id", "orgId", "entityId", "programId", "primaryUserId"], _ODD_IDS),
    **dict.fromkeys(["mainPoints", "delayedAccrualPoints", "externalTriggerBasedPoints"], _ODD_POINTS),
    **dict.fromkeys(["source", "type", "entityType", "primaryIdentifier"], _ODD_ENUMS),
    **dict.fromkeys(["value", "accountId", "externalId", "name"], _ODD_TEXTS),
    **dict.fromkeys(["dualEligibility", "default"], ("1", "0", '"true"', "null", "[]")),
    "identifiers": ('"x"', "[1]", '["x"]', "[[]]", *_NON_VALUES),
    "asOf": _ODD_AS_OF,
}
_AS_OF_TEXT = '"2026-12-02T10:15:30.123456Z"'


def _identifier_fields(source: str, type_: str, value: str, account_id: str | None = None) -> list[_Field]:
    fields_ = [("source", json.dumps(source)), ("type", json.dumps(type_)), ("value", json.dumps(value))]
    return fields_ if account_id is None else [*fields_, ("accountId", account_id)]


# One valid line of each shape; the spoiled ones are made from these.
TEMPLATES: list[list[_Field]] = [
    [
        *[("kind", '"customer"'), ("id", "7"), ("orgId", "1")],
        (
            "identifiers",
            [
                _identifier_fields("INSTORE", "MOBILE", "+91 98000 00001"),
                _identifier_fields("WEB_ENGAGE", "EMAIL", " Tom@X.com", "null"),
                _identifier_fields("WECHAT", "CUID", "o6:1", '"wx:1"'),
                _identifier_fields("LINE", "CARD_NUMBER", " C 1 ", '""'),
            ],
        ),
    ],
    [("kind", '"customer"'), ("id", "7"), ("orgId", "1"), ("identifiers", []), ("asOf", _AS_OF_TEXT)],
    [
        *[("kind", '"balance"'), ("orgId", "1"), ("entityType", '"CUSTOMER"'), ("entityId", "7"), ("programId", "9")],
        *[("mainPoints", '"12.500"'), ("delayedAccrualPoints", '"-0"'), ("externalTriggerBasedPoints", '"0"')],
    ],
    [
        *[("kind", '"balance"'), ("orgId", "1"), ("entityType", '"FLEET"'), ("entityId", "5"), ("programId", "9")],
        *[("mainPoints", "12"), ("delayedAccrualPoints", "12.5"), ("externalTriggerBasedPoints", "1e3")],
        ("asOf", _AS_OF_TEXT),
    ],
    [("kind", '"fleet"'), ("id", "5"), ("orgId", "1"), ("externalId", '"F-5"'), ("primaryUserId", "7")],
    [
        *[("kind", '"fleet"'), ("id", "5"), ("orgId", "1"), ("externalId", '" F:5 "'), ("primaryUserId", "7")],
        ("asOf", '"2026-01-01T00:00:00+05:30"'),
    ],
    [("kind", '"org"'), ("id", "1"), ("name", '"Acme"'), ("dualEligibility", "false")],
    [("kind", '"org"'), ("id", "2"), ("name", '"B"'), ("dualEligibility", "true"), ("primaryIdentifier", '"CUID"')],
    [("kind", '"program"'), ("id", "9"), ("orgId", "1"), ("name", '"P"'), ("default", "true")],
]


def _objects(fields_: list[_Field]) -> list[list[_Field]]:
    """The line's object and its identifiers' objects."""
    return [fields_, *(item for key, value in fields_ if key == "identifiers" for item in value)]


def _with_object(fields_: list[_Field], index: int, obj: list[_Field]) -> list[_Field]:
    """The line with its object `index` (as _objects counts) replaced."""
    if index == 0:
        return obj
    return [
        (key, [obj if at == index - 1 else item for at, item in enumerate(value)] if key == "identifiers" else value)
        for key, value in fields_
    ]


def _render(fields_: list[_Field], draw: st.DrawFn | None = None) -> str:
    """The object as JSON text; given `draw`, with blanks here and there and now and then a key's letter escaped.

    A key already in quotes is JSON text as it stands.
    """
    parts = []
    for key, value in fields_:
        if isinstance(value, list):  # the identifiers
            value = "[" + ",".join(_render(item, draw) for item in value) + "]"
        name = key if key.startswith('"') else json.dumps(key)
        if draw is None:
            parts.append(f"{name}:{value}")
            continue
        if key and _one_in(draw, 40):
            at = draw(st.integers(0, len(key) - 1))
            name = f'"{key[:at]}\\u{ord(key[at]):04x}{key[at + 1 :]}"'
        parts.append(f"{draw(_BLANK)}{name}{draw(_BLANK)}:{draw(_BLANK)}{value}{draw(_BLANK)}")
    return "{" + ",".join(parts) + "}"


def _spoilt(template: list[_Field]) -> list[str]:
    """Every line one change away from the template."""
    lines_ = []
    for index, obj in enumerate(_objects(template)):
        variants: list[list[_Field]] = []
        for at, (key, value) in enumerate(obj):
            before, after = obj[:at], obj[at + 1 :]
            for odd in NEAR_MISSES[key]:
                # Replaced, or repeated with the near miss last (the value a decoder keeps) or first.
                variants += [[*before, (key, odd), *after], [*obj, (key, odd)], [(key, odd), *obj]]
            escaped = f'"\\u{ord(key[0]):04x}{key[1:]}"'
            variants += [[*before, *after], [*obj, (key, value)], [*before, (key.upper(), value), *after]]
            variants += [[*before, (escaped, value), *after], [*obj, (escaped, value)]]
            if key == "identifiers":
                # The same identifier twice, in the same or another spelling.
                for item in value:
                    respelled = [(name, text.upper() if name == "value" else text) for name, text in item]
                    variants += [
                        [*before, (key, [*value, item]), *after],
                        [*before, (key, [*value, respelled]), *after],
                    ]
        variants += [[*obj, (extra, '"x"')] for extra in ("note", "a:b", "", "asOf", "accountId", "primaryIdentifier")]
        lines_ += [_render(_with_object(template, index, variant)) for variant in variants]
    return lines_


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda fields_: json.loads(fields_[0][1]))
def test_both_paths_agree_on_every_line_one_change_from_a_valid_one(template: list[_Field]) -> None:
    assert _assert_same(_render(template))[0] == "parsed"
    for line in _spoilt(template):
        _assert_same(line)


# -- Lines generated -----------------------------------------------------------------------------------------
# Valid lines of all shapes and contents, spoiled in one place or not at all, with blanks and escapes about.


def _one_in(draw: st.DrawFn, n: int) -> bool:
    return draw(st.sampled_from(range(n))) == 0


_BLANK = st.sampled_from(["", "", "", "", "", "", " ", "  ", "\t", "\n", "\r\n"])
# Colons, quotes, backslashes, blanks and characters that change when lowered (no NUL, no lone surrogate).
_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(' ::"\\@+-()[].Aa0_\u0130\u00df\t'), st.characters(codec="utf-8")),
    min_size=1,
    max_size=12,
)


def _string(draw: st.DrawFn, value: str) -> str:
    """A JSON string, its non-ASCII characters either as they are or as \\u escapes."""
    return json.dumps(value, ensure_ascii=_one_in(draw, 4))


@st.composite
def _id(draw: st.DrawFn, maximum: int = _MAX_ID) -> str:
    return str(draw(st.one_of(st.integers(1, 1000), st.integers(1, maximum), st.just(maximum))))


@st.composite
def _points(draw: st.DrawFn) -> str:
    """A valid amount: a string in plain decimal notation, or a JSON number; at most 15 + 3 digits."""
    if _one_in(draw, 6):
        return draw(st.sampled_from(["0", "-0", "1e3", "1E+2", "12.5e-1", "5e-3", "-0.0", "0.0e5", "-12.5"]))
    sign = draw(st.sampled_from(["", "", "", "-"]))
    whole = draw(st.one_of(st.integers(0, 10**6).map(str), st.text("0123456789", min_size=1, max_size=15)))
    fraction = draw(st.sampled_from(["", "", ".5", ".25", ".125", ".000", ".0", ".1", "."]))
    if fraction == ".":
        fraction += draw(st.text("0123456789", min_size=1, max_size=3))
    if draw(st.booleans()):
        return json.dumps(sign + draw(st.sampled_from(["", "0", "000"])) + whole + fraction)
    return sign + (whole.lstrip("0") or "0") + fraction  # a JSON number has no leading zeros


@st.composite
def _as_of(draw: st.DrawFn) -> str:
    if _one_in(draw, 3):
        return draw(st.sampled_from([_AS_OF_TEXT, '"2026-01-01T00:00:00+05:30"', '"2026-01-01T00:00:00-00:00"']))
    moment = draw(st.datetimes()).isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    return json.dumps(moment + draw(st.sampled_from(["Z", "+00:00", "-05:30", "+14:00"])))


@st.composite
def _identifier(draw: st.DrawFn) -> list[_Field]:
    source = draw(st.sampled_from(["INSTORE", "WECHAT", "JD", "LINE", "MOBILE_APP"]))
    type_ = draw(st.sampled_from(["MOBILE", "EMAIL", "CUID", "CARD_NUMBER", "EXTERNAL_ID"]))
    value = draw(st.one_of(st.sampled_from(["+91 98000 00001", " Tom@X.com", "(0) 1", "a:b", "X-1"]), _TEXT))
    item: list[_Field] = [("source", json.dumps(source)), ("type", json.dumps(type_)), ("value", _string(draw, value))]
    account = draw(st.sampled_from(["absent", "null", "empty", "text"]))
    if account != "absent":
        text = {"null": "null", "empty": '""'}.get(account) or _string(draw, draw(_TEXT))
        item.insert(draw(st.integers(0, 3)), ("accountId", text))
    return item


@st.composite
def _fields(draw: st.DrawFn) -> list[_Field]:
    kind = draw(st.sampled_from(["customer"] * 4 + ["balance"] * 4 + ["fleet"] * 2 + ["org", "program"]))
    fields_: list[_Field] = [("kind", json.dumps(kind))]
    if kind == "customer":
        fields_ += [("id", draw(_id())), ("orgId", draw(_id()))]
        identifiers = [draw(_identifier()) for _ in range(draw(st.integers(0, 3)))]
        if identifiers and _one_in(draw, 8):
            identifiers.append(draw(st.sampled_from(identifiers)))  # the same identifier twice
        fields_.append(("identifiers", identifiers))
    elif kind == "balance":
        fields_ += [
            ("orgId", draw(_id())),
            ("entityType", json.dumps(draw(st.sampled_from(["CUSTOMER", "FLEET"])))),
            ("entityId", draw(_id())),
            ("programId", draw(_id(_MAX_PROGRAM))),
            ("mainPoints", draw(_points())),
            ("delayedAccrualPoints", draw(_points())),
            ("externalTriggerBasedPoints", draw(_points())),
        ]
    elif kind == "fleet":
        external_id = _string(draw, draw(st.one_of(st.sampled_from(["F-5", " F-5 ", "F:5"]), _TEXT)))
        fields_ += [("id", draw(_id())), ("orgId", draw(_id())), ("externalId", external_id)]
        fields_.append(("primaryUserId", draw(_id())))
    elif kind == "org":
        dual = draw(st.booleans())
        fields_ += [("id", draw(_id())), ("name", _string(draw, draw(_TEXT))), ("dualEligibility", json.dumps(dual))]
        if dual or _one_in(draw, 4):
            fields_.append(("primaryIdentifier", json.dumps(draw(st.sampled_from(["MOBILE", "CUID"])))))
    else:
        fields_ += [("id", draw(_id(_MAX_PROGRAM))), ("orgId", draw(_id())), ("name", _string(draw, draw(_TEXT)))]
        fields_.append(("default", json.dumps(draw(st.booleans()))))
    if kind in ("customer", "balance", "fleet") and draw(st.booleans()):
        fields_.append(("asOf", draw(_as_of())))
    if _one_in(draw, 2):
        fields_ = list(draw(st.permutations(fields_)))
    return fields_


def _spoil(draw: st.DrawFn, fields_: list[_Field]) -> None:
    """One thing wrong: a value replaced by a near miss, or a key repeated, dropped, added or renamed."""
    obj = draw(st.sampled_from(_objects(fields_)))
    if not obj:
        return
    at = draw(st.integers(0, len(obj) - 1))
    key, value = obj[at]
    change = draw(st.sampled_from(["odd", "odd", "odd", "repeat", "repeat same", "drop", "add", "rename"]))
    if change == "odd":
        obj[at] = (key, draw(st.sampled_from(NEAR_MISSES[key])))
    elif change == "repeat":
        obj.insert(draw(st.integers(0, len(obj))), (key, draw(st.sampled_from(NEAR_MISSES[key]))))
    elif change == "repeat same":
        obj.insert(draw(st.integers(0, len(obj))), (key, value))
    elif change == "drop":
        del obj[at]
    elif change == "add":
        obj.insert(draw(st.integers(0, len(obj))), (draw(st.sampled_from(["note", "a:b", ""])), '"x"'))
    else:
        obj[at] = (key.upper(), value)


@st.composite
def lines(draw: st.DrawFn) -> str:
    fields_ = draw(_fields())
    if _one_in(draw, 2):
        _spoil(draw, fields_)
    line = _render(fields_, draw)
    if _one_in(draw, 40):
        line = draw(st.sampled_from(["[{}]", "[{}, {}]", "{} []", "{}\x00", '"{}"', "{}}"])).replace("{}", line, 1)
    return draw(_BLANK) + line + draw(_BLANK)


@settings(max_examples=1000, deadline=None, database=None)
@given(lines())
def test_both_paths_agree_on_generated_lines(line: str) -> None:
    _assert_same(line)
