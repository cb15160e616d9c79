// GraphiQL on this server's /graphql, from the files the package ships (no CDN): the token
// goes in the headers tab as {"Authorization": "Bearer mbz_..."}.
"use strict";
(() => {
  const fetcher = GraphiQL.createFetcher({ url: new URL("/graphql", location.href).href });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultHeaders: '{"Authorization": "Bearer "}',
    }),
  );
})();
