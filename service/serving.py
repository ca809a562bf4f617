"""Serving the model of a search job: the checks, the records and the runtime that runs them.

:class:`ModelManager` is what the routes call. It checks that a job has a model to serve, copies
the model's files out of the job's artifacts, keeps the record's status in step with the
deployment, and hands images to a :class:`ModelRuntime`: Ray Serve in ``workers.serving``
(``service`` imports no Ray: the process that has Ray builds the runtime and passes it in).
Without a runtime every model route answers 503 with the reason.

Example:
    >>> manager = ModelManager(store, jobs, artifacts, runtime, max_images=64)  # doctest: +SKIP
    >>> record = manager.create(ModelCreate(job=search_job_id), wait=True)       # doctest: +SKIP
    >>> await manager.predict(record, [("a.png", png_bytes)])                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis.asyncio

from service.artifacts import ArtifactStore
from service.auth import OPEN_TENANT
from service.errors import ArtifactNotFound, ServiceError
from service.jobs import JobStore
from service.models import (
    InvalidImage,
    ModelCreate,
    ModelInput,
    ModelRecord,
    ModelStatus,
    ModelStore,
    NotASearchJob,
    NotServable,
    Prediction,
    PredictResponse,
    ServingUnavailable,
    TooManyImages,
)
from service.schemas import JobKind, JobStatus

log = logging.getLogger(__name__)
MODEL_FILES = ("model.ts", "model.json")
NO_RUNTIME = (
    "models are not served by this API: it runs without Ray (start it with `atnas serve`, "
    "or set ATNAS_RAY_ADDRESS to a Ray cluster)"
)


@dataclass(frozen=True)
class Deployment:
    """What a runtime needs to serve one model."""

    model_id: str
    model_file: Path  # the TorchScript model: (B, C, H, W) floats in [0, 1] -> (B, N) logits
    input: ModelInput
    classes: list[str]
    replicas: int


class ModelRuntime(Protocol):
    """Runs model deployments (``workers.serving.RayServeRuntime`` on Ray Serve)."""

    def deploy(self, deployment: Deployment) -> None:
        """Starts (or replaces) the model's deployment; returns once it answers.

        Raises :class:`ServingUnavailable` with the reason when it cannot be started.
        """

    def running(self, model_id: str) -> bool:
        """Whether the model's deployment exists and answers."""

    def undeploy(self, model_id: str) -> None:
        """Stops the model's deployment (nothing when there is none)."""

    async def predict(
        self, model_id: str, images: list[tuple[str, bytes]], replicas: int = 1
    ) -> list[list[float]]:
        """Class probabilities of each ``(name, file bytes)`` image, in the model's class order
        (``replicas``: the model's, so that a runtime can size what it sends at once).

        Raises :class:`InvalidImage` naming an image that does not decode, and
        :class:`ServingUnavailable` when the deployment is not running.
        """


class ModelManager:
    """Creates, lists, removes and queries served models; see the module docstring."""

    def __init__(
        self,
        store: ModelStore,
        jobs: JobStore,
        artifacts: ArtifactStore,
        runtime: ModelRuntime | None,
        max_images: int,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.artifacts = artifacts
        self.runtime = runtime
        self.max_images = max_images
        self._deploying = threading.Lock()

    def _runtime(self) -> ModelRuntime:
        if self.runtime is None:
            raise ServingUnavailable(NO_RUNTIME)
        return self.runtime

    def create(
        self, body: ModelCreate, tenant: str | None = None, wait: bool = False
    ) -> ModelRecord:
        """Deploys the model of search job ``body.job``.

        Returns its record at once, status ``deploying``, and deploys in a background thread
        (the record turns ``ready``, or ``failed`` with the reason); with ``wait``, returns once
        the model answers. 404 for an unknown job (or another tenant's), 422 for a job that is
        not a search, 409 for a search that has not succeeded, 503 without Ray, or (``wait``)
        when the deployment fails (the record then stays, status ``failed``, until deleted).
        """
        job = self.jobs.get(body.job, tenant)  # the request is checked before the runtime
        if job.kind != JobKind.search:
            raise NotASearchJob(
                f"job {job.id} is a {job.kind.value} job, which makes a supernet, not a model: "
                "serve a search job"
            )
        if job.status != JobStatus.succeeded:
            raise NotServable(
                f"job {job.id} is {job.status.value}: only a succeeded search job has a model"
            )
        runtime = self._runtime()
        try:
            sources = {name: self.artifacts.path(job.id, name) for name in MODEL_FILES}
        except ArtifactNotFound as exc:
            raise NotServable(f"{exc.reason}: its artifacts were removed") from None
        meta = json.loads(sources["model.json"].read_text(encoding="utf-8"))
        shape = meta["input"]
        model_input = ModelInput(
            channels=shape["channels"], height=shape["height"], width=shape["width"]
        )
        record = self.store.create(
            job.id, model_input, list(meta["classes"]), body.replicas, tenant or OPEN_TENANT
        )
        folder = self.store.folder(record.id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, src in sources.items():
                shutil.copyfile(src, folder / name)
        except OSError as exc:
            reason = f"could not copy the model's files: {exc.strerror or exc}"
            self.store.set_status(record.id, ModelStatus.failed, reason)
            raise ServingUnavailable(reason) from exc
        if wait:
            return self._deploy(record, runtime)
        threading.Thread(
            target=self._deploy_quietly,
            args=(record, runtime),
            name=f"atnas-deploy-{record.id[:8]}",
            daemon=True,
        ).start()
        return record

    def _deploy_quietly(self, record: ModelRecord, runtime: ModelRuntime) -> None:
        """:meth:`_deploy` in a background thread: a failure is in the record, and logged."""
        try:
            self._deploy(record, runtime)
        except ServiceError as exc:
            log.warning("model %s was not deployed: %s", record.id, exc.reason)

    def _deploy(self, record: ModelRecord, runtime: ModelRuntime) -> ModelRecord:
        """Deploys ``record``; its status becomes ``ready``, or ``failed`` with the reason."""
        deployment = Deployment(
            model_id=record.id,
            model_file=self.store.folder(record.id) / "model.ts",
            input=record.input,
            classes=record.classes,
            replicas=record.replicas,
        )
        try:
            with self._deploying:  # one deployment at a time: requests, restore and threads
                runtime.deploy(deployment)
        except ServiceError as exc:
            self.store.set_status(record.id, ModelStatus.failed, exc.reason)
            raise
        except Exception as exc:  # a deployment that dies: the record says why, the API 503s
            reason = f"model {record.id} could not be deployed: {type(exc).__name__}: {exc}"
            log.exception("deploying model %s failed", record.id)
            self.store.set_status(record.id, ModelStatus.failed, reason)
            raise ServingUnavailable(reason) from exc
        updated = self.store.set_status(record.id, ModelStatus.ready)
        if updated is None:  # deleted while it was deploying: take the deployment down again
            runtime.undeploy(record.id)
            raise ServingUnavailable(f"model {record.id} was deleted while it was deploying")
        return updated

    def delete(self, model_id: str, tenant: str | None = None) -> None:
        """Undeploys the model and removes its record and files (404 when unknown; 503
        without a runtime, which could not take the deployment down)."""
        self.store.get(model_id, tenant)
        runtime = self._runtime()
        self.store.delete(model_id)
        runtime.undeploy(model_id)
        shutil.rmtree(self.store.folder(model_id), ignore_errors=True)

    async def ready(
        self, r: redis.asyncio.Redis, model_id: str, tenant: str | None = None
    ) -> ModelRecord:
        """The model's record if it answers predictions: 404 when unknown, 503 when it is
        deploying or failed (with the reason) or when this API has no runtime."""
        record = await self.store.get_async(r, model_id, tenant)
        self._runtime()
        if record.status != ModelStatus.ready:
            detail = f": {record.error}" if record.error else "; retry in a few seconds"
            raise ServingUnavailable(f"model {record.id} is {record.status.value}{detail}")
        return record

    async def predict(
        self, record: ModelRecord, images: list[tuple[str, bytes]]
    ) -> PredictResponse:
        """Predictions of the (:meth:`ready`) model for ``images`` (``(name, file bytes)``)."""
        check_count(len(images), self.max_images)
        probabilities = await self._runtime().predict(record.id, images, record.replicas)
        return PredictResponse(
            model=record.id, predictions=[_prediction(record.classes, p) for p in probabilities]
        )

    def restore(self) -> list[str]:
        """Redeploys every stored model whose deployment is not running (the API's start-up).

        Returns the ids deployed now. A model that cannot be deployed is marked ``failed``
        with the reason; the others go on.
        """
        runtime = self._runtime()
        restored = []
        for record in self.store.list():
            if runtime.running(record.id):
                if record.status != ModelStatus.ready:
                    self.store.set_status(record.id, ModelStatus.ready)
                continue
            self.store.set_status(record.id, ModelStatus.deploying)
            try:
                self._deploy(record, runtime)
            except ServiceError as exc:
                log.warning("model %s was not redeployed: %s", record.id, exc.reason)
                continue
            restored.append(record.id)
        if restored:
            log.info("redeployed %d model(s): %s", len(restored), ", ".join(restored))
        return restored


def restore_in_background(manager: ModelManager) -> threading.Thread:
    """Runs :meth:`ModelManager.restore` in a daemon thread (deploying takes seconds per
    model: the API answers meanwhile; a model is ``deploying`` until it is up)."""

    def run() -> None:
        try:
            manager.restore()
        except Exception:  # Redis or Ray down at start-up: the models stay as recorded
            log.exception("restoring the served models failed")

    thread = threading.Thread(target=run, name="atnas-model-restore", daemon=True)
    thread.start()
    return thread


def check_count(count: int, limit: int) -> None:
    """:class:`TooManyImages` (413) past ``limit`` images, :class:`InvalidImage` for none."""
    if count > limit:
        raise TooManyImages(
            f"{count} images in one request; at most {limit} (ATNAS_MODEL_MAX_IMAGES): "
            "send them in several requests"
        )
    if count == 0:
        raise InvalidImage("no images: send files in multipart field 'files' or JSON 'images'")


def _prediction(classes: list[str], probabilities: list[float]) -> Prediction:
    best = max(range(len(classes)), key=probabilities.__getitem__)
    return Prediction(
        label=classes[best],
        probability=probabilities[best],
        probabilities=dict(zip(classes, probabilities, strict=True)),
    )
