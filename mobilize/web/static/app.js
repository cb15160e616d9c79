// What every page shares: the language switch, the GraphQL client (HTTP and the
// graphql-transport-ws WebSocket), the token, the map of grids and small drawing helpers.
// Plain ES modules, no build step: the server ships these files as they are.

/* global L */

import { baseMapOf, leafletMap, shape } from "./basemap.js";

export { leafletMap, loadBaseMap, shape } from "./basemap.js";

// -- language: Simplified Chinese first, English on request ---------------------------------

const LANG_KEY = "mobilize.lang";

export function lang() {
  return localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh";
}

/** The text for the current language; `zh` and `en` are given side by side at each use. */
export function t(zh, en) {
  return lang() === "en" ? en : zh;
}

/** A server's people-facing text, "中文 English" in one string, in the current language. */
export function tPair(text) {
  const [zh, ...en] = text.split(" ");
  return t(zh, en.join(" ") || zh);
}

// One name per task kind, the server's own (mobilize/tasks/dispatch.py TITLES; a test keeps
// them equal), so the phone and the command centre call a task the same.
export const TASK_KINDS = {
  HOUSEHOLD_CHECK: ["入户核查", "Household check"],
  SUPPLY_DELIVERY: ["物资配送", "Supply delivery"],
  TESTING_SUPPORT: ["核酸检测保障", "Testing support"],
  ORDER_KEEPING: ["秩序维护", "Order keeping"],
  PUBLICITY: ["政策宣传", "Publicity"],
  CODE_CHECK: ["扫码查验", "Code check"],
  OTHER: ["其他", "Other"],
};

/** A task's title in the current language: a generated title ("入户核查 Household check") is
 *  its kind's name; a title someone wrote is shown as written. */
export function taskTitle(task) {
  const [zh, en] = TASK_KINDS[task.kind] || [task.kind, task.kind];
  return task.title === `${zh} ${en}` ? t(zh, en) : task.title;
}

/** Fill every element marked `data-zh`/`data-en` and wire the switch button (#lang). */
export function applyLanguage(onChange) {
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-zh]")) {
    el.textContent = t(el.dataset.zh, el.dataset.en);
  }
  for (const el of document.querySelectorAll("[data-zh-placeholder]")) {
    el.placeholder = t(el.dataset.zhPlaceholder, el.dataset.enPlaceholder);
  }
  const button = document.getElementById("lang");
  if (button && !button.dataset.wired) {
    button.dataset.wired = "1";
    button.addEventListener("click", () => {
      localStorage.setItem(LANG_KEY, lang() === "en" ? "zh" : "en");
      applyLanguage(onChange);
      if (onChange) onChange();
      document.dispatchEvent(new Event("mobilize:language")); // for what pages share (the header)
    });
  }
  if (button) button.textContent = lang() === "en" ? "中文" : "English";
}

export const STATUS_LABELS = {
  UNSTAFFED: ["无人", "Unstaffed"],
  ASSIGNED: ["已派", "Assigned"],
  ARRIVING: ["在途", "Arriving"],
  MOBILISED: ["已到岗", "Mobilised"],
  CHECKED: ["已排查", "Checked"],
};
export const STATUS_COLOURS = {
  UNSTAFFED: "#c62828",
  ASSIGNED: "#ef6c00",
  ARRIVING: "#f9a825",
  MOBILISED: "#2e7d32",
  CHECKED: "#1565c0",
};

export function statusLabel(status) {
  const pair = STATUS_LABELS[String(status).toUpperCase()];
  return pair ? t(pair[0], pair[1]) : String(status);
}

// -- the token ------------------------------------------------------------------------------

/** Each page keeps its own sign-in (a phone and a command screen may share a browser). */
export function tokenStore(page) {
  const key = `mobilize.token.${page}`;
  return {
    get: () => localStorage.getItem(key),
    set: (value) => localStorage.setItem(key, value),
    clear: () => localStorage.removeItem(key),
  };
}

/** "name · role (place)" in the current language, from the server's role names. */
function whoIs(me) {
  const roles = (me.roles || []).map((r) => `${tPair(r.label)}${r.scopeCode ? ` ${r.scopeCode}` : ""}`);
  return roles.length ? `${me.name} · ${roles.join("，")}` : me.name;
}

/**
 * The command and review pages' sign-in: a token pasted into #token-form, kept for this page.
 * `begin()` asks who the token belongs to (`meQuery`), shows the board and calls
 * `signedIn(me)`; `api(query, variables)` asks with the token and signs out on a 401;
 * `stop` runs when signing out.
 */
export function tokenSignIn(
  page,
  { meQuery = "{ me { name roles { label scopeCode } } }", signedIn, stop = () => {} },
) {
  const token = tokenStore(page);
  const $ = (id) => document.getElementById(id);
  let signedInAs = null;
  document.addEventListener("mobilize:language", () => {
    if (signedInAs) $("who").textContent = whoIs(signedInAs);
  });
  function signOut() {
    signedInAs = null;
    token.clear();
    stop();
    show($("board"), false);
    show($("sign-out"), false);
    show($("sign-in"), true);
    $("who").textContent = "";
  }
  async function api(query, variables) {
    try {
      return await gql(token.get(), query, variables);
    } catch (error) {
      if (error.status === 401) signOut();
      throw error;
    }
  }
  async function begin() {
    if (!token.get()) {
      show($("sign-in"), true);
      return;
    }
    let me;
    try {
      me = (await api(meQuery)).me;
    } catch (error) {
      notice(error.message, "error");
      return;
    }
    signedInAs = me;
    $("who").textContent = whoIs(me);
    show($("sign-in"), false);
    show($("sign-out"), true);
    show($("board"), true);
    await signedIn(me);
  }
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    token.set($("token").value.trim());
    $("token").value = "";
    await begin();
  });
  $("sign-out").addEventListener("click", signOut);
  return { token, api, begin };
}

// -- GraphQL over HTTP ------------------------------------------------------------------------

export class NetworkError extends Error {}
export class GraphQLRequestError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * One GraphQL request. A busy server (503/429) is retried after its Retry-After; no network
 * throws NetworkError (the phone's queue keeps the action); GraphQL errors throw with their
 * message, which the server writes in Chinese, then English.
 */
export async function gql(token, query, variables = {}, { retries = 3 } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new NetworkError(String(error));
    }
    if ((response.status === 503 || response.status === 429) && attempt < retries) {
      const wait = Number(response.headers.get("Retry-After") || "1");
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 10) * 1000));
      continue;
    }
    let body;
    try {
      body = await response.json();
    } catch (error) {
      throw new GraphQLRequestError(`HTTP ${response.status}`, response.status);
    }
    if (response.status === 401) {
      throw new GraphQLRequestError(body.detail || "401", 401);
    }
    if (body.errors && body.errors.length) {
      throw new GraphQLRequestError(body.errors.map((e) => e.message).join("; "), response.status);
    }
    return body.data;
  }
}

/** A mutation's union result: the object, or an Error (its `message`) thrown. */
export function expectOk(result) {
  if (result && typeof result.message === "string" && result.__typename?.endsWith("Error")) {
    throw new GraphQLRequestError(result.message, 200);
  }
  return result;
}

// -- subscriptions (graphql-transport-ws) ----------------------------------------------------

/**
 * Subscribe and keep subscribed: on a dropped socket it reconnects (1, 2, 4 ... 30 s) and
 * calls `onReconnect` so the page can catch up on what it missed. Returns a stop function.
 */
export function subscribe(token, query, variables, onNext, { onReconnect, onError } = {}) {
  let socket = null;
  let stopped = false;
  let delay = 1000;
  let opened = false;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;

  function connect() {
    socket = new WebSocket(url, "graphql-transport-ws");
    socket.addEventListener("open", () => {
      socket.send(
        JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } })
      );
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        delay = 1000;
        if (opened && onReconnect) onReconnect();
        opened = true;
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
      } else if (message.type === "next") {
        if (message.payload.errors && onError) onError(message.payload.errors);
        if (message.payload.data) onNext(message.payload.data);
      } else if (message.type === "error" && onError) {
        onError(message.payload);
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      }
    });
    socket.addEventListener("close", () => {
      if (stopped) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  connect();
  return () => {
    stopped = true;
    if (socket) socket.close();
  };
}

// -- small helpers ----------------------------------------------------------------------------

/** An element with text (never HTML: names and notes come from users). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(node, visible) {
  node.hidden = !visible;
}

/** A client mutation id: the same action retried carries the same one. */
export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

export function formatClock(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString(lang() === "en" ? "en-GB" : "zh-CN", {
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** "02:41:07" until `deadline` (negative: "-00:03:10", past it). */
export function countdown(deadline, now = Date.now()) {
  let s = Math.round((new Date(deadline).getTime() - now) / 1000);
  const sign = s < 0 ? "-" : "";
  s = Math.abs(s);
  const pad = (n) => String(n).padStart(2, "0");
  return `${sign}${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/**
 * How far the server's clock is ahead of this device's, from a deadline and the minutes the
 * server says are left: countdowns follow the server, not a phone set to the wrong time.
 */
export function serverSkew(deadline, minutesLeft) {
  return new Date(deadline).getTime() - minutesLeft * 60000 - Date.now();
}

/** Ask with a modal dialog (the page's <dialog id="confirm">); resolves true or false. */
export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector(".text").textContent = text;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

/** Say something at the top of the page (errors stay until the next message). */
export function notice(text, kind = "info") {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = text;
  box.className = `notice ${kind}`;
  box.hidden = !text;
}

// -- the map --------------------------------------------------------------------------------

/**
 * A Leaflet map of grid polygons, stored in WGS-84 and drawn in the base map's system (see
 * basemap.js; without a base map, as stored). `onClick(gridId)` when a grid is clicked.
 */
// From this zoom on, grids are outlined in grey; further out, each is drawn in its colour only.
const OUTLINES_FROM_ZOOM = 14;

export function gridMap(container, { onClick, base = baseMapOf(null) } = {}) {
  const map = leafletMap(container, base, { preferCanvas: true, zoomControl: true });
  map.setView([30.82, 104.16], 12);
  container.leafletMap = map; // for the browser tests, which click on the canvas
  const layers = new Map(); // grid id -> polygon layer
  const group = L.featureGroup().addTo(map);
  const areas = L.featureGroup().addTo(map); // peacetime: streets and communities
  const micro = L.featureGroup().addTo(map); // peacetime, zoomed in: micro-grids
  const communityBounds = new Map(); // community id -> bounds, to know which are in view
  const microShown = new Set(); // communities whose micro-grids are drawn
  let painted = null; // the last paint's arguments, to repaint when the zoom crosses the line
  let wasFar = null;
  map.on("zoomend", () => {
    const far = map.getZoom() < OUTLINES_FROM_ZOOM;
    if (painted && far !== wasFar) api.paint(...painted);
    wasFar = far;
  });
  const api = {
    map,
    /** Communities (ids) in view whose micro-grids are not drawn yet, claimed for drawing
     *  (a second move while they load does not ask again). */
    communitiesToFill() {
      const view = map.getBounds();
      const wanted = [...communityBounds].filter(([id, b]) => !microShown.has(id) && view.intersects(b));
      for (const [id] of wanted) microShown.add(id);
      return wanted.map(([id]) => id);
    },
    /** Draw one community's micro-grids ({code, name, geometry}) over the outlines. */
    addMicroGrids(grids) {
      for (const grid of grids) {
        const layer = shape(base, grid.geometry, { style: { color: "#78909c", weight: 1, fill: false } });
        layer.bindTooltip(() => el("span", {}, `${grid.code} ${grid.name}`), { sticky: true });
        layer.addTo(micro);
      }
      container.dataset.microGrids = String(micro.getLayers().length);
    },
    /**
     * The district as it stands in peacetime: street outlines (thick) and community outlines
     * with their names, so an operator can look before switching. `streets` as the district
     * query gives them ({name, geometry, communities: [{name, geometry}]}); [] clears them.
     */
    setAreas(streets) {
      areas.clearLayers();
      micro.clearLayers();
      communityBounds.clear();
      microShown.clear();
      container.dataset.microGrids = "0";
      let count = 0;
      for (const street of streets) {
        shape(base, street.geometry, { style: { color: "#b71c1c", weight: 3, fill: false } }).addTo(areas);
        count += 1;
        for (const community of street.communities) {
          const outline = shape(base, community.geometry, {
            style: { color: "#455a64", weight: 1, fillColor: "#eceff1", fillOpacity: 0.35 },
          });
          // A node, not HTML: names come from an imported bundle.
          outline.bindTooltip(el("span", {}, community.name), {
            permanent: true,
            direction: "center",
            className: "area-label",
          });
          outline.addTo(areas);
          if (community.id) communityBounds.set(community.id, outline.getBounds());
          count += 1;
        }
      }
      if (count) map.fitBounds(areas.getBounds(), { padding: [10, 10], animate: false });
      container.dataset.areas = String(count);
    },
    /** Draw these grids ({id, code, name, geometry}); fit the view to them the first time. */
    setGrids(grids) {
      group.clearLayers();
      layers.clear();
      for (const grid of grids) {
        const layer = shape(base, grid.geometry, {
          style: { color: "#555", weight: 1, fillOpacity: 0.55, fillColor: "#9e9e9e" },
        });
        layer.gridId = grid.id;
        // A node, not a string: Leaflet writes a string tooltip as HTML, and grid names come
        // from an imported bundle. Made when first shown, not for all 10,000 grids at once.
        layer.bindTooltip(() => el("span", {}, `${grid.code} ${grid.name}`), { sticky: true });
        if (onClick) layer.on("click", () => onClick(grid.id));
        layer.addTo(group);
        layers.set(grid.id, layer);
      }
      if (grids.length) map.fitBounds(group.getBounds(), { padding: [10, 10], animate: false });
      container.dataset.grids = String(grids.length);
    },
    /**
     * Colour each grid by its status (`statusOf(id)`; unknown: grey); `outlined` ids get a
     * thick outline. The container's `data-statuses` says what is shown ("MOBILISED:3 ..."),
     * for screen readers' summaries and the browser tests (the map itself is a canvas).
     */
    paint(statusOf, outlined = new Set()) {
      painted = [statusOf, outlined];
      // Zoomed out to a district, a micro-grid is a few pixels wide: a grey outline would
      // hide its colour, so each is drawn in its own colour and the on-site ones stand out.
      const far = map.getZoom() < OUTLINES_FROM_ZOOM;
      const counts = {};
      for (const [id, layer] of layers) {
        const selected = outlined.has(id);
        const status = statusOf(id);
        counts[status || "NONE"] = (counts[status || "NONE"] || 0) + 1;
        const fill = STATUS_COLOURS[status] || "#9e9e9e";
        layer.setStyle({
          fillColor: fill,
          fillOpacity: far ? 0.85 : 0.55,
          color: selected ? "#000" : far ? fill : "#555",
          weight: selected ? 3 : 1,
        });
      }
      container.dataset.statuses = Object.keys(counts)
        .sort()
        .map((k) => `${k}:${counts[k]}`)
        .join(" ");
      container.dataset.outlined = String(outlined.size);
    },
    ids() {
      return [...layers.keys()];
    },
  };
  return api;
}

/** A small SVG line chart of a coverage curve: points [{minute, pct}], a target line. */
/**
 * The coverage curve (% of micro-grids mobilised against minutes since T0) as an SVG; the
 * x-axis runs from T0 to `end` minutes when given (the replay slider's window, so the two line
 * up: the plot spans the middle 85% of the width, 24 of 320 units each side), else a little
 * past the target.
 */
export function curveSvg(points, targetMinutes, { marker = null, end = null, width = 320, height = 140 } = {}) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "curve");
  const pad = 24;
  const maxMinute = end ?? Math.max(targetMinutes * 1.1, ...points.map((p) => p.minute), 1);
  const x = (m) => pad + ((width - 2 * pad) * m) / maxMinute;
  const y = (pct) => height - pad - ((height - 2 * pad) * pct) / 100;
  const line = (x1, y1, x2, y2, cls) => {
    const l = document.createElementNS(ns, "line");
    Object.entries({ x1, y1, x2, y2 }).forEach(([k, v]) => l.setAttribute(k, v));
    l.setAttribute("class", cls);
    svg.append(l);
  };
  line(pad, y(0), width - pad, y(0), "axis");
  line(pad, y(0), pad, y(100), "axis");
  const target = Math.min(targetMinutes, maxMinute); // a deadline still ahead: at the edge
  line(x(target), y(0), x(target), y(100), "target");
  const path = document.createElementNS(ns, "polyline");
  let last = 0;
  const coords = [`${x(0)},${y(0)}`];
  for (const p of points.filter((p) => p.minute <= maxMinute)) {
    coords.push(`${x(p.minute)},${y(last)}`, `${x(p.minute)},${y(p.pct)}`);
    last = p.pct;
  }
  coords.push(`${x(marker ?? maxMinute)},${y(last)}`);
  path.setAttribute("points", coords.join(" "));
  path.setAttribute("class", "line");
  svg.append(path);
  if (marker !== null) line(x(marker), y(0), x(marker), y(100), "marker");
  const label = document.createElementNS(ns, "text");
  const ahead = target < targetMinutes;
  label.setAttribute("x", ahead ? width - 2 : x(target) + 3);
  if (ahead) label.setAttribute("text-anchor", "end");
  label.setAttribute("y", y(100) + 10);
  label.textContent = ahead ? `→ ${targetMinutes} min` : `${targetMinutes} min`;
  svg.append(label);
  return svg;
}
