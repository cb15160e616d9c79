// Copy the front-end libraries from node_modules (installed from the npm registry by
// `npm ci`, pinned by package-lock.json) into the Python package, which serves them itself:
// the pages load nothing from a CDN. CI runs this and fails if the shipped copy differs.
import { cpSync, mkdirSync, rmSync } from "node:fs";

const target = "../mobilize/web/static/vendor/leaflet";
rmSync(target, { recursive: true, force: true });
mkdirSync(`${target}/images`, { recursive: true });
for (const name of ["leaflet.js", "leaflet.css"]) {
  cpSync(`node_modules/leaflet/dist/${name}`, `${target}/${name}`);
}
for (const name of ["layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png", "marker-shadow.png"]) {
  cpSync(`node_modules/leaflet/dist/images/${name}`, `${target}/images/${name}`);
}
cpSync("node_modules/leaflet/LICENSE", `${target}/LICENSE`);
console.log(`vendored leaflet into ${target}`);
