// A base map under the grids, when the deployment names a tile server (MOBILIZE_BASE_MAP_URL;
// the pages learn it from /ui/config.json). Chinese tile services draw their streets in their
// own systems: Amap and Tencent in GCJ-02, Baidu in BD-09 on its own Mercator and tile numbers.
// Grids are stored in WGS-84, so every point drawn is shifted into the tiles' system; unshifted,
// a grid sits hundreds of metres off its streets. The formulas are the public ones, as the
// server's (geo/crs.py) and the phone's navigation links use them.

/* global L */

const A = 6378245.0; // Krasovsky 1940 semi-major axis, GCJ-02's
const EE = 0.00669342162296594323; // its first eccentricity squared
const X_PI = (Math.PI * 3000.0) / 180.0;

function inChina(lon, lat) {
  return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
}

/** WGS-84 to GCJ-02 ([lon, lat]); outside China the point is left as it is. */
export function wgs84ToGcj02(lon, lat) {
  if (!inChina(lon, lat)) return [lon, lat];
  const x = lon - 105.0;
  const y = lat - 35.0;
  const root = Math.sqrt(Math.abs(x));
  const waves = ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * root + waves;
  dLat += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
  dLat += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
  let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * root + waves;
  dLon += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
  dLon += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
  const radLat = (lat / 180) * Math.PI;
  const magic = 1 - EE * Math.sin(radLat) ** 2;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180) / (((A * (1 - EE)) / (magic * sqrtMagic)) * Math.PI);
  dLon = (dLon * 180) / ((A / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return [lon + dLon, lat + dLat];
}

/** GCJ-02 to BD-09 ([lon, lat]): Baidu's rotation on top of GCJ-02. */
export function gcj02ToBd09(lon, lat) {
  const z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
  const theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
  return [z * Math.cos(theta) + 0.0065, z * Math.sin(theta) + 0.006];
}

const SHIFTS = {
  wgs84: (lon, lat) => [lon, lat],
  gcj02: wgs84ToGcj02,
  bd09: (lon, lat) => gcj02ToBd09(...wgs84ToGcj02(lon, lat)),
};

// Baidu's tiles: BD-09 degrees on a Mercator of the Clarke 1866 ellipsoid (within metres of
// Baidu's own), one metre per pixel at zoom 18, tiles numbered from the equator upward.
function baiduCrs() {
  const mercator = L.extend({}, L.Projection.Mercator, {
    R: 6378206,
    R_MINOR: 6356584.314245179,
  });
  return L.extend({}, L.CRS.Earth, {
    code: "BD09MC",
    projection: mercator,
    transformation: L.transformation(1, 0, -1, 0),
    scale: (zoom) => Math.pow(2, zoom - 18),
    zoom: (scale) => 18 + Math.log(scale) / Math.LN2,
    infinite: true,
  });
}

const BaiduTiles = () =>
  L.TileLayer.extend({
    getTileUrl(coords) {
      // Leaflet counts tile rows down from y = 0; Baidu counts them up: row -1 is Baidu's 0.
      const flipped = L.extend({}, coords, { y: -coords.y - 1 });
      return L.TileLayer.prototype.getTileUrl.call(this, flipped);
    },
  });

/** Attribution as text: Leaflet writes it as HTML. */
function asText(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The base map of `config` (/ui/config.json's `baseMap`, or null): the map's CRS, its tile
 * layer, and `shift(lon, lat)` from WGS-84 into the tiles' system. Null config: no tiles, no
 * shift, nothing fetched from outside.
 */
export function baseMapOf(config) {
  if (!config) return { crs: L.CRS.EPSG3857, tiles: null, shift: SHIFTS.wgs84, maxZoom: 19 };
  const baidu = config.crs === "bd09";
  const Layer = baidu ? BaiduTiles() : L.TileLayer;
  const tiles = new Layer(config.url, {
    subdomains: config.subdomains || "abc",
    maxZoom: config.maxZoom,
    attribution: asText(config.attribution || ""),
  });
  return { crs: baidu ? baiduCrs() : L.CRS.EPSG3857, tiles, shift: SHIFTS[config.crs], maxZoom: config.maxZoom };
}

/** `geometry` (GeoJSON, WGS-84) as a Leaflet layer drawn in the base map's system. */
export function shape(base, geometry, options = {}) {
  const coordsToLatLng = ([lon, lat]) => {
    const [x, y] = base.shift(lon, lat);
    return L.latLng(y, x);
  };
  return L.geoJSON(geometry, { ...options, coordsToLatLng });
}

/** A Leaflet map on `container` over the base map `base` (tiles and attribution if any). */
export function leafletMap(container, base, options = {}) {
  const map = L.map(container, {
    ...options,
    crs: base.crs,
    maxZoom: base.maxZoom,
    attributionControl: Boolean(base.tiles),
  });
  if (base.tiles) {
    map.attributionControl.setPrefix(false);
    base.tiles.addTo(map);
  }
  return map;
}

/** The deployment's base map (`baseMapOf` its settings; none when offline). */
export async function loadBaseMap() {
  let config = null;
  try {
    const response = await fetch("/ui/config.json", { cache: "no-cache" });
    if (response.ok) config = (await response.json()).baseMap;
  } catch {
    // offline: the grids alone
  }
  return baseMapOf(config);
}
