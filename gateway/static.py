"""Serving the built web client at ``/``, one origin with the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

_CHECKOUT_WEB = Path(__file__).resolve().parent.parent / "web" / "dist"


def mount_web(app: FastAPI, web_dir: Path | None) -> None:
    """Serve ``web_dir`` (default: ``web/dist`` of the checkout) if it is built.

    Unknown paths outside ``/api`` get ``index.html``: the client routes them.
    """
    root = (web_dir or _CHECKOUT_WEB).resolve()
    index = root / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    async def web(path: str) -> FileResponse:
        if path.startswith(("api/", "ws")) or path == "api":
            raise HTTPException(404, "no such route")
        if not index.is_file():
            raise HTTPException(
                404, "the web client is not built: run `npm ci && npm run build` in web/"
            )
        candidate = (root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(root):
            cache = (
                "public, max-age=31536000, immutable" if path.startswith("assets/") else "no-cache"
            )
            return FileResponse(candidate, headers={"Cache-Control": cache})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
