"""The editor's web app: a JSON/PNG API over an :class:`EditorSession` and the static page that uses it.

Edited maps travel as 8-bit greyscale PNGs at the size of the image the network sees (the size
``GET /api/samples/{i}`` reports), in the body of ``POST /api/samples/{i}/predict`` and ``.../save``.

The server holds patient images and an expert's work, and any page open in the same browser can send it
requests, so every request must pass three checks, else it gets a 403:

- its ``Host`` is a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``) or the address it reached, with
  the server's port: a foreign site whose DNS name was rebound to this machine is refused;
- its ``Origin``, when it has one, is ``http://`` and such a host: no page of another origin gets in;
- it carries the token created at start-up, as the ``X-Editor-Token`` header or a ``token`` query parameter
  (for ``<img src>``); only the page's script and style sheet, which hold no data, are served without it.

Uploads must be declared ``image/png``, which a page of another origin cannot send without a CORS
preflight, and the editor answers no preflight.
"""

import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from monai_xai.editor.session import MAX_UPLOAD_BYTES, ORDERS, EditorSession, RequestError, encode_png

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["MISSING_DEPENDENCIES", "STATIC_DIR", "TOKEN_HEADER", "create_app"]

#: The page, its script and its style sheet; served as they are (no build step, nothing from a CDN).
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: What to do when the optional web dependencies are missing.
MISSING_DEPENDENCIES = "the attention editor needs FastAPI and uvicorn: pip install 'monai-xai[editor]'"
#: Request header carrying the start-up token.
TOKEN_HEADER = "X-Editor-Token"
#: Names of this machine a browser may use to reach the editor.
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: The files under ``/static/``, looked up by name: no file path is built from a request.
_STATIC_FILES = {name: STATIC_DIR / name for name in ("editor.js", "editor.css")}
#: What is served without the token: the script and style sheet, which hold no data.
_PUBLIC_PATHS = {f"/static/{name}" for name in _STATIC_FILES}
#: Sent with every response: the token in the page's URL must not leak to another site as a referrer.
_RESPONSE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _allowed_hosts(server: tuple[str, int] | None) -> set[str]:
    """``Host`` values of a request received on ``server`` (the socket's local address and port)."""
    if server is None:
        return set()
    address, port = server
    names = {*_LOOPBACK_NAMES, f"[{address}]" if ":" in address else address}
    return {f"{name}:{port}" for name in names} | (names if port == 80 else set())  # 80 goes unsaid


def _refusal(request: "Request", token: str) -> str | None:
    """Why ``request`` is refused (a foreign host or origin, no or a wrong token), or None."""
    allowed = _allowed_hosts(request.scope.get("server"))
    host = request.headers.get("host", "").lower()
    if host not in allowed:
        return f"host {host!r} is not this editor: open it at 127.0.0.1, localhost or [::1]"
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() not in {f"http://{name}" for name in allowed}:
        return f"requests from {origin!r} are refused: only the editor's own page may call it"
    if request.url.path in _PUBLIC_PATHS:
        return None
    given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token")
    if not given:
        return "no token: open the URL with ?token=... that the editor printed at start-up"
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "wrong token: open the URL with ?token=... that the editor printed at start-up"
    return None


def create_app(session: EditorSession, token: str | None = None):
    """A FastAPI app serving the editor page and the API over ``session`` to holders of ``token``.

    A random token is made when none is given; it is ``app.state.token``, for the start-up URL.
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import FileResponse, JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
    except ImportError as err:
        raise ImportError(MISSING_DEPENDENCIES) from err

    token = token or secrets.token_urlsafe(32)
    app = FastAPI(title="monai-xai attention editor", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.token = token

    @app.middleware("http")
    async def guard(request: Request, call_next) -> Response:
        problem = _refusal(request, token)
        if problem is not None:
            response = JSONResponse(status_code=403, content={"detail": problem})
        else:
            response = await call_next(request)
        response.headers.update(_RESPONSE_HEADERS)
        return response

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse(status_code=err.status, content={"detail": str(err)})

    def png(data: bytes) -> Response:
        return Response(content=data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def uploaded_map(request: Request, index: int):
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "image/png":
            raise RequestError(f"send the map as Content-Type: image/png, not {media_type or 'none'}", 415)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise RequestError(f"upload of {declared} bytes exceeds the limit of {MAX_UPLOAD_BYTES}", 413)
        return session.decode_map(index, await request.body())

    @app.get("/", include_in_schema=False)
    def index_page() -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in _STATIC_FILES:
            raise RequestError(f"no static file {name!r}", 404)
        return FileResponse(_STATIC_FILES[name], headers={"Cache-Control": "no-store"})

    @app.get("/api/info")
    def info() -> dict:
        return {
            "n_samples": len(session),
            "class_names": session.class_names,
            "orders": [o for o in ORDERS if o != "largest_map_error" or session.has_masks],
            "output_dir": str(session.table.output_dir),
            "datalist": str(session.table.csv_path),
        }

    @app.get("/api/samples")
    def samples(order: str = "datalist") -> list[dict]:
        return [session.summary(i) for i in session.order(order)]

    @app.get("/api/samples/{index}")
    def sample(index: int) -> dict:
        return session.summary(index)

    @app.get("/api/samples/{index}/image.png")
    def image(index: int) -> Response:
        return png(encode_png(session.image(index)))

    @app.get("/api/samples/{index}/map.png")
    def own_map(index: int) -> Response:
        return png(encode_png(session.own_map(index)))

    @app.get("/api/samples/{index}/corrected.png")
    def corrected_map(index: int) -> Response:
        corrected = session.corrected_map(index)
        if corrected is None:
            raise RequestError(f"sample {index} has no saved map yet", 404)
        return png(encode_png(corrected))

    @app.post("/api/samples/{index}/predict")
    async def predict(index: int, request: Request) -> dict:
        edited = await uploaded_map(request, index)
        return await run_in_threadpool(session.predict, index, edited)

    @app.post("/api/samples/{index}/save")
    async def save(index: int, request: Request) -> dict:
        edited = await uploaded_map(request, index)
        saved = await run_in_threadpool(session.save, index, edited)
        prediction = await run_in_threadpool(session.predict, index, edited)
        return {**saved, "prediction": prediction, "sample": session.summary(index)}

    return app
