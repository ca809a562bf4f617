"""Served models: their records in Redis (tenant-owned, like jobs) and their public shapes.

A served model is the ``model.ts`` of a succeeded search job, copied beside its ``model.json``
into ``<data_dir>/models/<id>/`` (so that a job's retention never takes a running model's
files away) and deployed by a :class:`service.serving.ModelRuntime`. The record says what
should be up: every stored model is redeployed when the API starts; ``DELETE`` removes both.

Example:
    >>> store = ModelStore(r, Keys("atnas"), Path(".atnas/models"))  # doctest: +SKIP
    >>> record = store.create(job, ModelInput(channels=1, height=28, width=28), ["a", "b"], 1)
    ...                                                                # doctest: +SKIP
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio
from pydantic import BaseModel, Field
from redis.client import Pipeline

from service.auth import OPEN_TENANT
from service.errors import Conflict, InvalidInput, NotFound, Unavailable, UploadTooLarge
from service.ids import is_id, new_id, shown
from service.keys import Keys


class ModelNotFound(NotFound):
    """No served model with that id (another tenant's is not found either)."""


class NotServable(Conflict):
    """The job has no model to serve yet: it is not (or not yet) a succeeded search (409)."""


class NotASearchJob(InvalidInput):
    """The job is of a kind that makes no model (a meta_train job makes a supernet) (422)."""


class InvalidImage(InvalidInput):
    """An image of a predict request is empty, not base64, or does not decode (422)."""


class TooManyImages(UploadTooLarge):
    """A predict request holds more images than ``Settings.model_max_images`` (413)."""


class ServingUnavailable(Unavailable):
    """No Ray to serve models on, or the model's deployment is not (yet) running (503)."""


class ModelStatus(str, Enum):
    """Where a served model stands."""

    deploying = "deploying"  # its Ray Serve application is being started
    ready = "ready"  # it answers predictions
    failed = "failed"  # its deployment failed; ``error`` says why (DELETE removes it)


class ModelCreate(BaseModel):
    """``POST /v1/models``: which search job's model to serve, and on how many replicas."""

    job: str = Field(description="id of a succeeded search job")
    replicas: int = Field(default=1, ge=1, le=16, description="Ray Serve replicas")


class ModelInput(BaseModel):
    """What the model takes: images are decoded to this size and channel count, in [0, 1]."""

    channels: int
    height: int
    width: int


class ModelPublic(BaseModel):
    """A served model as the API shows it."""

    id: str
    job: str = Field(description="the search job whose model.ts is served")
    status: ModelStatus
    replicas: int
    classes: list[str] = Field(description="class names in the model's output order")
    input: ModelInput
    created_at: datetime
    error: str | None = None


class ModelRecord(ModelPublic):
    """A served model as stored: the public view plus its owner."""

    tenant: str = OPEN_TENANT

    def public(self) -> ModelPublic:
        """The view the API returns."""
        return ModelPublic.model_validate(self.model_dump(include=set(ModelPublic.model_fields)))


class PredictRequest(BaseModel):
    """``POST /v1/models/{id}/predict`` as JSON: images as base64 strings (PNG or JPEG)."""

    images: list[str] = Field(min_length=1, description="base64-encoded image files")


class Prediction(BaseModel):
    """One image's prediction: the top class and the probability of every class."""

    label: str = Field(description="the most probable class")
    probability: float = Field(description="its probability")
    probabilities: dict[str, float] = Field(description="every class, in output order")


class PredictResponse(BaseModel):
    """The predictions of one request, one per image, in the order the images came."""

    model: str
    predictions: list[Prediction]


def _not_found(model_id: str) -> ModelNotFound:
    return ModelNotFound(f"no model with id {shown(model_id)}")


def _parse(model_id: str, raw: Any, tenant: str | None) -> ModelRecord:
    if raw is None:
        raise _not_found(model_id)
    record = ModelRecord.model_validate_json(raw)
    if tenant is not None and record.tenant != tenant:
        raise _not_found(model_id)  # another tenant's model does not exist for this one
    return record


class ModelStore:
    """Model records in Redis and their files under ``root`` (``<root>/<id>/model.ts``)."""

    def __init__(self, r: redis.Redis, keys: Keys, root: Path) -> None:
        self._r = r
        self._keys = keys
        self.root = root

    def folder(self, model_id: str) -> Path:
        """Where the model's ``model.ts`` and ``model.json`` live."""
        if not is_id(model_id):
            raise _not_found(model_id)
        return self.root / model_id

    def create(
        self,
        job_id: str,
        model_input: ModelInput,
        classes: builtins.list[str],
        replicas: int,
        tenant: str = OPEN_TENANT,
    ) -> ModelRecord:
        """Stores a new record in status ``deploying``; its files go in :meth:`folder`."""
        record = ModelRecord(
            id=new_id(),
            job=job_id,
            status=ModelStatus.deploying,
            replicas=replicas,
            classes=classes,
            input=model_input,
            created_at=datetime.now(timezone.utc),
            tenant=tenant,
        )
        with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.model(record.id), record.model_dump_json())
            score = record.created_at.timestamp()
            for index in (self._keys.model_index(), self._keys.model_index(tenant)):
                pipe.zadd(index, {record.id: score})
            pipe.execute()
        return record

    def get(self, model_id: str, tenant: str | None = None) -> ModelRecord:
        """The record, or :class:`ModelNotFound` (also for another tenant's model)."""
        if not is_id(model_id):
            raise _not_found(model_id)
        return _parse(model_id, self._r.get(self._keys.model(model_id)), tenant)

    async def get_async(
        self, r: redis.asyncio.Redis, model_id: str, tenant: str | None = None
    ) -> ModelRecord:
        """:meth:`get` over an asyncio client of the same Redis (for the API's event loop)."""
        if not is_id(model_id):
            raise _not_found(model_id)
        return _parse(model_id, await r.get(self._keys.model(model_id)), tenant)

    def list(self, tenant: str | None = None, limit: int = 1000) -> builtins.list[ModelRecord]:
        """Models (of ``tenant`` when given, else of every tenant), newest first."""
        ids: Any = self._r.zrevrange(self._keys.model_index(tenant), 0, limit - 1)
        if not ids:
            return []
        raws: Any = self._r.mget([self._keys.model(i) for i in ids])
        return [ModelRecord.model_validate_json(raw) for raw in raws if raw is not None]

    def set_status(
        self, model_id: str, status: ModelStatus, error: str | None = None
    ) -> ModelRecord | None:
        """Moves the model to ``status`` (None when it was deleted meanwhile: nothing to do)."""
        key = self._keys.model(model_id)

        def tx(pipe: Pipeline) -> ModelRecord | None:
            raw: Any = pipe.get(key)
            if raw is None:
                return None
            record = ModelRecord.model_validate_json(raw)
            record = record.model_copy(update={"status": status, "error": error})
            pipe.multi()
            pipe.set(key, record.model_dump_json())
            return record

        tx_any = cast(Callable[[Pipeline], None], tx)  # redis's stub types it as -> None
        updated = self._r.transaction(tx_any, key, value_from_callable=True)
        return cast("ModelRecord | None", updated)

    def delete(self, model_id: str) -> None:
        """Removes the record (the caller removes the deployment and the files)."""
        record = self.get(model_id)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.model(model_id))
            pipe.zrem(self._keys.model_index(), model_id)
            pipe.zrem(self._keys.model_index(record.tenant), model_id)
            pipe.execute()
