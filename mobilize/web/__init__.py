"""The pages people use, served by the API process itself: the command centre's wall map, the
cadre's phone (an installable PWA that works offline) and the reviewer's replay.

They are static files that talk to `/graphql` with the user's token, like any other client;
what each user may see is decided there, not here. The map library comes from the npm
registry (`web/package.json`) and ships inside the package: nothing loads from a CDN. The
one exception is a base map's tiles, from the server a deployment names (`base_map_url`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from mobilize.settings import Settings

STATIC = Path(__file__).parent / "static"
PAGES = {"command": "command.html", "phone": "phone.html", "review": "review.html"}

# Pages run only our own scripts; the GraphQL endpoint and its WebSocket are same-origin.
CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# GraphiQL's stylesheet carries its fonts as data: URLs.
GRAPHIQL_CSP = CSP.replace("default-src 'self';", "default-src 'self'; font-src 'self' data:;")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new release reaches phones at once
}


def graphiql_page() -> HTMLResponse:
    """GraphiQL from the files the package ships (`web/package.json`: pinned, from the npm
    registry), so it loads on an intranet that reaches no CDN."""
    return HTMLResponse(
        (STATIC / "graphiql.html").read_text(encoding="utf-8"),
        headers={**HEADERS, "Content-Security-Policy": GRAPHIQL_CSP},
    )


def tile_origins(settings: Settings) -> list[str]:
    """Where a base map's tiles come from (each `{s}` subdomain its own origin), for the
    pages' CSP: images from there, and from nowhere else outside."""
    url = settings.base_map_url
    if url is None:
        return []
    subdomains = settings.base_map_subdomains if "{s}" in url else "-"
    origins = []
    for sub in subdomains:
        parts = urlsplit(url.replace("{s}", sub))
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


def add_pages(app: FastAPI, settings: Settings) -> None:
    """`/ui/` (an index), `/ui/command`, `/ui/phone`, `/ui/review`, their files under
    `/ui/static/`, the phone's service worker at `/ui/sw.js` (its scope is `/ui/`), and
    `/ui/config.json`, what the pages need of the deployment's settings (the base map)."""
    router = APIRouter()
    origins = tile_origins(settings)
    csp = CSP.replace("img-src 'self'", " ".join(["img-src 'self'", *origins]))
    headers = {**HEADERS, "Content-Security-Policy": csp}

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html", headers=headers)

    @router.get("/ui/config.json", include_in_schema=False)
    def config() -> JSONResponse:
        return JSONResponse({"baseMap": settings.base_map()}, headers=HEADERS)

    @router.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @router.get("/ui", include_in_schema=False)
    @router.get("/ui/", include_in_schema=False)
    def index() -> FileResponse:
        return page("index.html")

    for path, file in PAGES.items():
        router.add_api_route(f"/ui/{path}", lambda file=file: page(file), include_in_schema=False)

    @router.get("/ui/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        return FileResponse(
            STATIC / "sw.js",
            media_type="text/javascript",
            headers={**HEADERS, "Service-Worker-Allowed": "/ui/"},
        )

    @router.get("/ui/manifest.webmanifest", include_in_schema=False)
    def manifest() -> FileResponse:
        return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
