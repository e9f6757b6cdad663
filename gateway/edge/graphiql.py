"""GraphiQL served by the gateway itself: the page and its assets, no CDN.

The assets under static/graphiql/ are copied from npm by scripts/vendor-graphiql
and committed, so the page works with no internet access. Asset URLs carry a
hash of the vendored files, which lets browsers cache them for good.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from string import Template

from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ASSETS_PATH = "/graphiql-assets"
ASSETS_DIRECTORY = Path(__file__).parent / "static" / "graphiql"

STYLESHEETS = ("graphiql.min.css", "plugin-explorer.css")
# In load order: GraphiQL expects React as globals, the explorer expects GraphiQL.
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "graphql-ws.min.js",
)

HELP_QUERY = """\
# Welcome to the loyalty gateway.
#
# Every request needs an API key: put yours in the Headers tab below as
#
#     {"Authorization": "Bearer <key>"}
#
# then write a query here and press the run button (or Ctrl-Enter).
# The Docs and Explorer panels on the left list what the API offers.
"""


class _CachedStaticFiles(StaticFiles):
    """Static files that browsers keep: the page links them with a content hash."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def graphiql_assets() -> Mount:
    """The route serving GraphiQL's scripts and stylesheets at ASSETS_PATH."""
    return Mount(ASSETS_PATH, app=_CachedStaticFiles(directory=ASSETS_DIRECTORY), name="graphiql-assets")


def graphiql_page(*, endpoint: str = "/graphql", api_key: str | None = None, example_query: str | None = None) -> str:
    """The GraphiQL HTML page, talking to endpoint.

    With api_key, the Headers tab is pre-filled with its Authorization header;
    the query editor holds example_query, or a note on how to authenticate.
    The URL parameters ?q= (strawberry's name; ?query= is read too) and
    ?variables= win over both. Edits are written back as ?q=, never ?query=:
    GET /graphql?query=... is a GraphQL request, not the page.
    """
    config = {
        "endpoint": endpoint,
        "query": example_query if example_query is not None else HELP_QUERY,
        "headers": _authorization_headers(api_key),
    }
    return _PAGE.substitute(
        stylesheets="\n".join(f'    <link rel="stylesheet" href="{_asset_url(name)}" />' for name in STYLESHEETS),
        scripts="\n".join(f'    <script src="{_asset_url(name)}"></script>' for name in SCRIPTS),
        config=_json_for_script(config),
    )


def _authorization_headers(api_key: str | None) -> str | None:
    if api_key is None:
        return None
    return json.dumps({"Authorization": f"Bearer {api_key}"}, indent=2)


def _json_for_script(value: object) -> str:
    """JSON that is inert inside a <script> element: no `</script>`, `<!--` or `]]>` can appear."""
    text = json.dumps(value)  # ensure_ascii also escapes U+2028 and U+2029
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset_url(name: str) -> str:
    return f"{ASSETS_PATH}/{name}?v={_assets_version()}"


@functools.cache
def _assets_version() -> str:
    """A hash of the vendored files, read once: new files, new URLs."""
    digest = hashlib.sha256()
    for path in sorted(ASSETS_DIRECTORY.iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# The bootstrap script reads its settings from the JSON block, so nothing the
# server injects is ever parsed as code.
_PAGE = Template("""\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Loyalty gateway — GraphiQL</title>
    <link rel="icon" href="data:," />
$stylesheets
    <style>
      body { margin: 0; height: 100vh; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
$scripts
    <script id="graphiql-config" type="application/json">$config</script>
    <script>
      (function () {
        "use strict";
        var config = JSON.parse(document.getElementById("graphiql-config").textContent);
        var parameters = new URLSearchParams(window.location.search);

        function remember(name, value) {
          if (value) {
            parameters.set(name, value);
          } else {
            parameters.delete(name);
          }
          var search = parameters.toString();
          history.replaceState(null, "", search ? "?" + search : window.location.pathname);
        }

        // Queries over HTTP; subscriptions over the WebSocket on the same path (graphql-transport-ws), with the
        // Headers tab's Authorization in connection_init. One client per Authorization, opened when first used.
        var overHttp = GraphiQL.createFetcher({ url: config.endpoint });
        var socketUrl = (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host +
          config.endpoint;
        var sockets = {};

        function socketFor(authorization) {
          if (!sockets[authorization]) {
            sockets[authorization] = graphqlWs.createClient({
              url: socketUrl,
              lazy: true,
              connectionParams: { authorization: authorization },
            });
          }
          return sockets[authorization];
        }

        function isSubscription(params) {
          // Whether the operation to run (the named one, or the document's first) is a subscription.
          var text = (params.query || "").replace(/#.*/g, "");
          var pattern = /\\b(query|mutation|subscription)\\b\\s*([_A-Za-z][_0-9A-Za-z]*)?/g;
          var match;
          while ((match = pattern.exec(text)) !== null) {
            if (!params.operationName || match[2] === params.operationName) {
              return match[1] === "subscription";
            }
          }
          return false;
        }

        function fetcher(params, options) {
          if (!isSubscription(params)) {
            return overHttp(params, options);
          }
          var headers = (options && options.headers) || {};
          var authorization = headers.Authorization || headers.authorization || "";
          return socketFor(authorization).iterate({
            query: params.query, variables: params.variables, operationName: params.operationName,
          });
        }

        var props = {
          fetcher: fetcher,
          plugins: [GraphiQLPluginExplorer.explorerPlugin()],
          query: parameters.get("q") || parameters.get("query") || config.query,
          variables: parameters.get("variables") || undefined,
          headers: config.headers || undefined,
          defaultHeaders: config.headers || undefined,
          defaultEditorToolsVisibility: "headers",
          isHeadersEditorEnabled: true,
          // Keys stay out of localStorage; the server fills them in again.
          shouldPersistHeaders: false,
          inputValueDeprecation: true,
          onEditQuery: function (query) { parameters.delete("query"); remember("q", query); },
          onEditVariables: function (variables) { remember("variables", variables); },
        };
        ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GraphiQL, props));
      })();
    </script>
  </body>
</html>
""")
