"""Which media type an answer is written in, from the request's Accept header (GraphQL over HTTP).

`application/graphql-response+json` when the client names it at least as gladly as `application/json`:
a request that fails before execution (parse, validation, variables, limits) is then a 4xx with no
`data`, as that media type says. Otherwise `application/json` (also for no Accept, `*/*`, or nothing
we can write), where those failures are 200 with the errors, which is what clients written for it
(Apollo Client 3 sends `*/*`) read as GraphQL errors rather than as a failed fetch.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class MediaType:
    content_type: str
    # Whether request errors keep their 4xx; with application/json they are 200.
    request_errors_are_4xx: bool

    @property
    def header(self) -> tuple[bytes, bytes]:
        """The Content-Type header as an ASGI response carries it."""
        return _HEADERS[self.content_type]

    def status(self, status: int, request_error: bool) -> int:
        return 200 if request_error and not self.request_errors_are_4xx else status


_HEADERS = {name: (b"content-type", name.encode("ascii")) for name in (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON)}
JSON = MediaType(APPLICATION_JSON, request_errors_are_4xx=False)
GRAPHQL_RESPONSE = MediaType(GRAPHQL_RESPONSE_JSON, request_errors_are_4xx=True)

# Clients send the same few Accept headers again and again: each is parsed once.
_CHOSEN: dict[bytes, MediaType] = {}
_CHOSEN_LIMIT = 256


def negotiate(accept: bytes | None) -> MediaType:
    if accept is None:
        return JSON
    chosen = _CHOSEN.get(accept)
    if chosen is None:
        chosen = _choose(accept.decode("latin-1"))
        if len(_CHOSEN) >= _CHOSEN_LIMIT:
            _CHOSEN.clear()
        _CHOSEN[accept] = chosen
    return chosen


def _choose(accept: str) -> MediaType:
    # Per media type: (quality, named exactly) of the most specific range that matches it.
    best = {GRAPHQL_RESPONSE_JSON: (0.0, False), APPLICATION_JSON: (0.0, False)}
    specificity = {GRAPHQL_RESPONSE_JSON: -1, APPLICATION_JSON: -1}
    for part in accept.split(","):
        media_range, *parameters = (piece.strip() for piece in part.split(";"))
        media_range = media_range.lower()
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(1.0, max(0.0, float(value)))
                except ValueError:
                    quality = 0.0
        for media_type in best:
            level = _specificity(media_range, media_type)
            if level > specificity[media_type]:
                specificity[media_type] = level
                best[media_type] = (quality, level == 2)
    graphql_response, json = best[GRAPHQL_RESPONSE_JSON], best[APPLICATION_JSON]
    # A client that names the GraphQL media type explicitly, and likes it no less, gets it;
    # wildcards alone leave the answer in application/json.
    if graphql_response[1] and graphql_response[0] > 0 and graphql_response[0] >= json[0]:
        return GRAPHQL_RESPONSE
    return JSON


def _specificity(media_range: str, media_type: str) -> int:
    """2 for the type itself, 1 for `application/*`, 0 for `*/*`, -1 when the range does not match."""
    if media_range == media_type:
        return 2
    if media_range == "application/*":
        return 1
    if media_range == "*/*":
        return 0
    return -1
