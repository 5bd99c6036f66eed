"""Run gcp-storage-emulator with ``ifGenerationMatch=0`` honoured, as real GCS does.

The emulator ignores that precondition, so put-if-absent could not be tested on it.
This launcher wraps its upload handlers: an upload that asks for generation 0 of an
object that exists gets 412 Precondition Failed. (The emulator serves one request at
a time, so check-then-create is atomic here.)

Usage: python gcs_emulator.py HOST PORT
"""

from __future__ import annotations

import sys
import threading
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_state = threading.local()
_resumable_conditions: dict[str, bool] = {}


class _PreconditionFailed(Exception):
    pass


def _wants_absent(request: Any) -> bool:
    return request.query.get("ifGenerationMatch") == ["0"]


def _guarded_create_file(storage: Any, bucket: str, name: str, content: bytes, obj: Any, file_id: Any = None) -> Any:
    must_be_absent = bool(getattr(_state, "absent", False)) or _resumable_conditions.pop(str(file_id), False)
    if must_be_absent:
        try:
            storage.get_file_obj(bucket, name)
        except NotFound:
            pass
        else:
            raise _PreconditionFailed(name)
    return type(storage).create_file(storage, bucket, name, content, obj, file_id)


def _precondition_response(response: Any) -> None:
    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json({"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold."}})


def _wrap(handler: Any) -> Any:
    def wrapped(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        _state.absent = _wants_absent(request)
        proxy = _StorageProxy(storage)
        try:
            result = handler(request, response, proxy, *args, **kwargs)
        except _PreconditionFailed:
            _precondition_response(response)
            return None
        finally:
            _state.absent = False
        if proxy.started_upload is not None and _wants_absent(request):
            _resumable_conditions[proxy.started_upload] = True
        return result

    return wrapped


class _StorageProxy:
    """The emulator's storage, with create_file checking the precondition."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self.started_upload: str | None = None

    def create_file(self, bucket: str, name: str, content: bytes, obj: Any, file_id: Any = None) -> Any:
        return _guarded_create_file(self._storage, bucket, name, content, obj, file_id)

    def create_resumable_upload(self, *args: Any, **kwargs: Any) -> Any:
        upload_id = self._storage.create_resumable_upload(*args, **kwargs)
        self.started_upload = str(upload_id)
        return upload_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def _patch_routes() -> None:
    """Swap the upload handlers in the route table (and the module, for its fallbacks)."""
    wrapped = {
        objects.insert: _wrap(objects.insert),
        objects.upload_partial: _wrap(objects.upload_partial),
        objects.xml_upload: _wrap(objects.xml_upload),
    }
    for _pattern, handlers in server.HANDLERS:
        for method, handler in list(handlers.items()):
            if handler in wrapped:
                handlers[method] = wrapped[handler]
    objects.insert = wrapped[objects.insert]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    _patch_routes()
    srv = server.create_server(host, port, in_memory=True, default_bucket="lifeboat-default")
    srv.run()


if __name__ == "__main__":
    main()
