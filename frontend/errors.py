"""One JSON error shape for every failure: `{"error": {"code", "message", "details"}}`.

Handlers turn FastAPI's and Starlette's own errors (404, 405, 422, parse errors, 500) into that
shape too, so a client never has to guess whether it got HTML, plain text or JSON.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontend.schemas import ErrorBody, ErrorResponse

log = logging.getLogger(__name__)

# Default codes and sentences for errors raised without our own wording (routing, parsing).
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthorized", "This server needs an API key in the X-API-Key header."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that HTTP method."),
    413: ("request_too_large", "The request is larger than this server accepts."),
    415: ("unsupported_media_type", "This kind of file is not accepted."),
}


class ApiError(StarletteHTTPException):
    """An error with our own code and wording; raise it anywhere in a request."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details or []


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or []))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)
    code, message = _STATUS_ERRORS.get(exc.status_code, ("http_error", "The request failed."))
    # Starlette's default detail is only the reason phrase ("Not Found"); ours says more.
    if isinstance(exc.detail, str) and exc.detail and exc.detail != _reason(exc.status_code):
        message = exc.detail
    return error_response(exc.status_code, code, message, headers=headers)


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "location": _location(err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    first = details[0] if details else {"location": "request", "message": "invalid"}
    if first["location"] == "path.image_id":
        message = "That is not an image id: ids are 32 hexadecimal characters."
    elif first["location"] == "body.file" and first["type"] == "missing":
        message = "No file was sent: use a multipart form with one or more `file` fields."
    else:
        message = f"Invalid request: {first['location']}: {first['message']}."
    return error_response(422, "invalid_request", message, details)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
    return error_response(
        500, "internal_error", "Something went wrong on the server; the error was logged."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


# OpenAPI descriptions of the errors every `/api/images/{id}` route may answer with.
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No image with this id."},
    422: {"model": ErrorResponse, "description": "Malformed id or parameters."},
}


def image_not_found(image_id: str) -> ApiError:
    return ApiError(404, "not_found", f"No image with id {image_id}.")
