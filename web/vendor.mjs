// Copy the front-end libraries from node_modules (installed from the npm registry by
// `npm ci`, pinned by package-lock.json) into the Python package, which serves them itself:
// the pages and GraphiQL load nothing from a CDN. CI runs this and fails if the shipped copy
// differs.
import { cpSync, mkdirSync, rmSync } from "node:fs";

const root = "../mobilize/web/static/vendor";

function vendor(name, files) {
  const target = `${root}/${name}`;
  rmSync(target, { recursive: true, force: true });
  for (const [from, to] of files) {
    mkdirSync(`${target}/${to}`.replace(/\/[^/]*$/, ""), { recursive: true });
    cpSync(`node_modules/${from}`, `${target}/${to}`);
  }
  console.log(`vendored ${name} into ${target}`);
}

vendor("leaflet", [
  ["leaflet/dist/leaflet.js", "leaflet.js"],
  ["leaflet/dist/leaflet.css", "leaflet.css"],
  ...["layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png", "marker-shadow.png"].map(
    (image) => [`leaflet/dist/images/${image}`, `images/${image}`],
  ),
  ["leaflet/LICENSE", "LICENSE"],
]);

// GraphiQL 3 is the last with a browser build that needs no bundler; React 18 the last with one.
vendor("graphiql", [
  ["react/umd/react.production.min.js", "react.production.min.js"],
  ["react/LICENSE", "LICENSE.react"],
  ["react-dom/umd/react-dom.production.min.js", "react-dom.production.min.js"],
  ["react-dom/LICENSE", "LICENSE.react-dom"],
  ["graphiql/graphiql.min.js", "graphiql.min.js"],
  ["graphiql/graphiql.min.css", "graphiql.min.css"],
  ["graphiql/LICENSE", "LICENSE"],
]);
