"""A small typed synchronous client of the atnas REST API (the CLI wraps it).

Example:
    >>> with AtnasClient("http://127.0.0.1:8000") as client:           # doctest: +SKIP
    ...     ds = client.upload_dataset(Path("omniglot.zip"))
    ...     job = client.submit("meta_train", {"datasets": [ds.id], "budget_seconds": 60})
    ...     final = client.wait(job.id, timeout=600)
    ...     task = client.upload_dataset(Path("my_task.zip"))
    ...     found = client.search(job.id, task.id, max_macs=1_000_000)   # a net of <= 1M MACs
    ...     model = client.deploy_model(client.wait(found.id).id)         # served, ready
    ...     answer = client.predict(model.id, [Path("a.png"), Path("b.png")])
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import httpx
from pydantic import BaseModel

from api.sse import parse_events
from service.models import ModelPublic, ModelStatus, PredictResponse
from service.schemas import (
    ArtifactInfo,
    DatasetPublic,
    JobKind,
    JobPage,
    JobPublic,
    JobStatus,
    SearchConstraints,
    SupernetPublic,
)

T = TypeVar("T")


def _poll(
    fetch: Callable[[], T], done: Callable[[T], bool], timeout: float, poll: float
) -> tuple[T, bool]:
    """Calls ``fetch`` every ``poll`` seconds until ``done`` of its value, at most ``timeout``
    seconds; returns the last value and whether it was done."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value, True
        if time.monotonic() >= deadline:
            return value, False
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


class ApiError(Exception):
    """The service answered with an error status; ``detail`` is its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class WaitTimeout(TimeoutError):
    """A job did not finish within the time given to :meth:`AtnasClient.wait`."""

    def __init__(self, job: JobPublic, timeout: float) -> None:
        super().__init__(f"job {job.id} is still {job.status.value} after {timeout:g} s")
        self.job = job


class ModelWaitTimeout(TimeoutError):
    """A served model was still deploying after the time given to :meth:`AtnasClient.wait_model`."""

    def __init__(self, model: ModelPublic, timeout: float) -> None:
        super().__init__(f"model {model.id} is still {model.status.value} after {timeout:g} s")
        self.model = model


class JobEvent(NamedTuple):
    """One event of :meth:`AtnasClient.events`: ``status`` or ``progress``, and the job."""

    event: str
    job: JobPublic


class AtnasClient:
    """Calls the REST API of an atnas service at ``base_url``.

    ``api_key`` (default: the ``ATNAS_API_KEY`` environment variable) is sent as a bearer
    token; a service without keys ignores it.
    """

    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        key = api_key if api_key is not None else os.environ.get("ATNAS_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def __enter__(self) -> AtnasClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- datasets -----------------------------------------------------------------------
    def upload_dataset(self, path: Path | str) -> DatasetPublic:
        """Uploads a zip of class folders (or a support/query task); the file is streamed."""
        path = Path(path)
        with path.open("rb") as fh:
            files = {"file": (path.name, fh, "application/zip")}
            resp = self._http.post("/v1/datasets", files=files, timeout=None)
        return DatasetPublic.model_validate(self._json(resp))

    def datasets(self) -> list[DatasetPublic]:
        """Every dataset, newest first."""
        return [DatasetPublic.model_validate(d) for d in self._json(self._http.get("/v1/datasets"))]

    def dataset(self, dataset_id: str) -> DatasetPublic:
        """One dataset."""
        return DatasetPublic.model_validate(
            self._json(self._http.get(f"/v1/datasets/{dataset_id}"))
        )

    def delete_dataset(self, dataset_id: str) -> None:
        """Removes a dataset."""
        self._json(self._http.delete(f"/v1/datasets/{dataset_id}"))

    # --- jobs ---------------------------------------------------------------------------
    def submit(
        self,
        kind: JobKind | str,
        spec: dict[str, Any] | BaseModel,
        idempotency_key: str | None = None,
        constraints: dict[str, Any] | SearchConstraints | None = None,
    ) -> JobPublic:
        """Queues a job; with ``idempotency_key``, a retry returns the same job.

        ``constraints`` (search jobs: ``max_macs``, ``max_params``, ``max_latency_ms``) replace
        the spec's own; the service answers an impossible bound with a 422 naming the smallest
        cost (:class:`ApiError`).
        """
        fields = spec.model_dump(mode="json") if isinstance(spec, BaseModel) else dict(spec)
        if isinstance(constraints, BaseModel):
            fields["constraints"] = constraints.model_dump(mode="json", exclude_none=True)
        elif constraints is not None:
            fields["constraints"] = constraints
        body = {"kind": JobKind(kind).value, "spec": fields}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        resp = self._http.post("/v1/jobs", json=body, headers=headers)
        return JobPublic.model_validate(self._json(resp))

    def search(
        self,
        supernet: str,
        dataset: str,
        *,
        constraints: dict[str, Any] | SearchConstraints | None = None,
        max_macs: int | None = None,
        max_params: int | None = None,
        max_latency_ms: float | None = None,
        idempotency_key: str | None = None,
        **spec: Any,
    ) -> JobPublic:
        """Queues a search job of ``supernet`` (a meta_train job id) on the task ``dataset``.

        Bounds come as ``constraints`` or as the fields themselves (these win); the rest of
        ``spec`` is :class:`SearchSpec`'s fields (``budget_seconds``, ``seed``, ...).
        """
        given = constraints.model_dump() if isinstance(constraints, BaseModel) else constraints
        bounds = {k: v for k, v in (given or {}).items() if v is not None}
        fields = {"max_macs": max_macs, "max_params": max_params, "max_latency_ms": max_latency_ms}
        bounds |= {k: v for k, v in fields.items() if v is not None}
        body = {"supernet": supernet, "dataset": dataset, **spec}
        return self.submit(
            JobKind.search,
            body,
            idempotency_key=idempotency_key,
            constraints=bounds if bounds or constraints is not None else None,
        )

    def job(self, job_id: str) -> JobPublic:
        """One job: status, progress, result, error."""
        return JobPublic.model_validate(self._json(self._http.get(f"/v1/jobs/{job_id}")))

    def jobs(
        self,
        status: JobStatus | str | None = None,
        kind: JobKind | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first; pass ``page.next_cursor`` as ``cursor`` for more."""
        params: dict[str, str | int] = {"limit": limit}
        if status is not None:
            params["status"] = JobStatus(status).value
        if kind is not None:
            params["kind"] = JobKind(kind).value
        if cursor is not None:
            params["cursor"] = cursor
        return JobPage.model_validate(self._json(self._http.get("/v1/jobs", params=params)))

    def wait(self, job_id: str, timeout: float = 3600.0, poll: float = 1.0) -> JobPublic:
        """Polls until the job is succeeded, failed or cancelled; returns it.

        Raises :class:`WaitTimeout` (holding the last state) after ``timeout`` seconds.
        """
        job, done = _poll(lambda: self.job(job_id), lambda j: j.status.terminal, timeout, poll)
        if not done:
            raise WaitTimeout(job, timeout)
        return job

    def events(self, job_id: str, idle_timeout: float = 60.0) -> Iterator[JobEvent]:
        """The job's server-sent events (``GET /v1/jobs/{id}/events``) as they come: the
        current state first, then each status or progress change; ends after the terminal
        one. ``idle_timeout``: seconds without a byte (keep-alives count) before giving up
        with :class:`httpx.ReadTimeout`. :class:`ApiError` for an unknown job."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=idle_timeout)
        with self._http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as resp:
            if resp.status_code >= 400:
                resp.read()
                self._json(resp)
            for ev in parse_events(resp.iter_lines()):
                if ev.event in ("status", "progress"):
                    yield JobEvent(ev.event, JobPublic.model_validate_json(ev.data))
                else:  # "gone", "error": the server ends the stream with a reason
                    raise ApiError(
                        410 if ev.event == "gone" else 503, json.loads(ev.data)["detail"]
                    )

    def cancel(self, job_id: str) -> JobPublic:
        """Cancels a queued job, or asks a running one to stop."""
        return JobPublic.model_validate(self._json(self._http.post(f"/v1/jobs/{job_id}/cancel")))

    # --- artifacts and supernets --------------------------------------------------------
    def artifacts(self, job_id: str) -> list[ArtifactInfo]:
        """The job's artifacts: name, size, sha256."""
        resp = self._http.get(f"/v1/jobs/{job_id}/artifacts")
        return [ArtifactInfo.model_validate(a) for a in self._json(resp)]

    def download(self, job_id: str, name: str, dest: Path | str) -> Path:
        """Downloads an artifact to ``dest`` (a file, or a folder to put ``name`` in).

        Written atomically (temp file + rename) after its sha256 was checked; returns the path.
        """
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._http.stream("GET", f"/v1/jobs/{job_id}/artifacts/{name}") as resp:
            if resp.status_code >= 400:
                resp.read()
                self._json(resp)
            fd, tmp_name = tempfile.mkstemp(
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
            )
            tmp = Path(tmp_name)
            try:
                sha = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
                        sha.update(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                expected = resp.headers.get("x-content-sha256")
                if expected and expected != sha.hexdigest():
                    raise ApiError(502, f"artifact {name!r} arrived corrupted (sha256 mismatch)")
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        return dest

    def supernets(self) -> list[SupernetPublic]:
        """Meta-supernets that search jobs can use."""
        return [
            SupernetPublic.model_validate(s) for s in self._json(self._http.get("/v1/supernets"))
        ]

    # --- served models ------------------------------------------------------------------
    def deploy_model(
        self, job_id: str, replicas: int = 1, wait: bool = True, timeout: float = 300.0
    ) -> ModelPublic:
        """Serves the model of a succeeded search job on ``replicas`` Ray Serve replicas.

        With ``wait`` (default) returns once it is ``ready`` or ``failed`` (see
        :meth:`wait_model`); else at once, ``deploying``.
        """
        resp = self._http.post("/v1/models", json={"job": job_id, "replicas": replicas})
        model = ModelPublic.model_validate(self._json(resp))
        return self.wait_model(model.id, timeout) if wait else model

    def models(self) -> list[ModelPublic]:
        """The served models, newest first."""
        return [ModelPublic.model_validate(m) for m in self._json(self._http.get("/v1/models"))]

    def model(self, model_id: str) -> ModelPublic:
        """One served model: its job, status, classes and input size."""
        return ModelPublic.model_validate(self._json(self._http.get(f"/v1/models/{model_id}")))

    def wait_model(self, model_id: str, timeout: float = 300.0, poll: float = 0.5) -> ModelPublic:
        """Polls until the model is no longer ``deploying``; returns it (``ready``, or
        ``failed`` with its ``error``). :class:`ModelWaitTimeout` after ``timeout`` seconds."""
        model, done = _poll(
            lambda: self.model(model_id),
            lambda m: m.status is not ModelStatus.deploying,
            timeout,
            poll,
        )
        if not done:
            raise ModelWaitTimeout(model, timeout)
        return model

    def predict(
        self, model_id: str, images: Sequence[Path | str | tuple[str, bytes]]
    ) -> PredictResponse:
        """Classifies image files (paths, or ``(name, bytes)``) with a ready served model; one
        prediction per image, in order."""
        files = []
        for image in images:
            if isinstance(image, tuple):
                name, data = image
            else:
                name, data = Path(image).name, Path(image).read_bytes()
            files.append(("files", (name, data, "application/octet-stream")))
        resp = self._http.post(f"/v1/models/{model_id}/predict", files=files)
        return PredictResponse.model_validate(self._json(resp))

    def delete_model(self, model_id: str) -> None:
        """Undeploys a served model and removes it."""
        self._json(self._http.delete(f"/v1/models/{model_id}"))

    # --- health -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``/healthz``: the API process answers."""
        result: dict[str, Any] = self._json(self._http.get("/healthz"))
        return result

    def ready(self) -> dict[str, Any]:
        """``/readyz``: Redis and a worker are up (:class:`ApiError` 503 otherwise)."""
        result: dict[str, Any] = self._json(self._http.get("/readyz"))
        return result

    @staticmethod
    def _json(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = None
            detail = body.get("detail") if isinstance(body, dict) else None
            detail = str(detail) if detail is not None else (resp.text or resp.reason_phrase)
            raise ApiError(resp.status_code, detail)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()
