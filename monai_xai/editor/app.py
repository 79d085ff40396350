"""The editor's web app: a JSON/PNG API over an :class:`EditorSession` and the static page that uses it.

Edited maps travel as 8-bit greyscale PNGs at the size of the image the network sees (the size
``GET /api/samples/{i}`` reports), in the body of ``POST /api/samples/{i}/predict`` and ``.../save``.
"""

from pathlib import Path

from monai_xai.editor.session import MAX_UPLOAD_BYTES, ORDERS, EditorSession, RequestError, encode_png

__all__ = ["MISSING_DEPENDENCIES", "STATIC_DIR", "create_app"]

#: The page, its script and its style sheet; served as they are (no build step, nothing from a CDN).
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: What to do when the optional web dependencies are missing.
MISSING_DEPENDENCIES = "the attention editor needs FastAPI and uvicorn: pip install 'monai-xai[editor]'"


def create_app(session: EditorSession):
    """A FastAPI app serving the editor page and the API over ``session``."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import FileResponse, JSONResponse, Response
        from fastapi.staticfiles import StaticFiles
        from starlette.concurrency import run_in_threadpool
    except ImportError as err:
        raise ImportError(MISSING_DEPENDENCIES) from err

    app = FastAPI(title="monai-xai attention editor", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse(status_code=err.status, content={"detail": str(err)})

    def png(data: bytes) -> Response:
        return Response(content=data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def uploaded_map(request: Request, index: int):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise RequestError(f"upload of {declared} bytes exceeds the limit of {MAX_UPLOAD_BYTES}", 413)
        return session.decode_map(index, await request.body())

    @app.get("/", include_in_schema=False)
    def index_page() -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

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
