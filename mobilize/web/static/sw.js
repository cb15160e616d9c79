// The phone page's service worker: it keeps the page's own files so the page opens without
// network (the actions then wait in the page's queue). Pages and files are fetched from the
// network first, so a new release reaches phones at once; the cache answers only when the
// network does not. GraphQL is never cached.

const CACHE = "mobilize-phone-v2";
const SHELL = [
  "/ui/phone",
  "/ui/manifest.webmanifest",
  "/ui/static/app.js",
  "/ui/static/basemap.js",
  "/ui/static/phone.js",
  "/ui/static/style.css",
  "/ui/static/icon.svg",
  "/ui/static/icon-192.png",
  "/ui/static/vendor/leaflet/leaflet.js",
  "/ui/static/vendor/leaflet/leaflet.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (!url.pathname.startsWith("/ui/")) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true }))
  );
});
