// Starts GraphiQL against this engine. The page and every request it makes are
// same-origin, so the login cookie set by `/?token=…` authorises `/query`.
(function () {
  "use strict";
  var defaultQuery = [
    "# gantry: write a query, then press Ctrl-Enter (or the run button).",
    "# Ctrl-Space completes; the book icon opens the schema docs.",
    "{",
    "  version",
    "}",
    "",
  ].join("\n");
  var fetcher = GraphiQL.createFetcher({ url: "/query" });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
    }),
  );
})();
