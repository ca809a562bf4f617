"""Served models on Ray Serve: the replica that runs a ``model.ts``, and the runtime the API
calls (:class:`service.serving.ModelRuntime`).

Each model is a Serve application of its own (``atnas-model-<id>``), reached only through a
``DeploymentHandle``: Serve starts with no HTTP or gRPC proxy (``proxy_location="Disabled"``),
so it opens no port; the API is the only way in. A replica holds one TorchScript model (on
CUDA when the replica sees a GPU), runs one torch thread, and decodes images the way a search
job read its task (:func:`atnas.data.decode_image`), then batches the images of concurrent
requests into one forward pass (``@serve.batch``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
from typing import Any

import numpy as np
import torch
from ray import serve
from ray.exceptions import RayError
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle

from atnas.data import ImageConfig, decode_image
from atnas.errors import DatasetError
from service.models import InvalidImage, ServingUnavailable
from service.serving import Deployment
from service.settings import Settings
from workers.coalesce import Coalescer, Images

log = logging.getLogger(__name__)
APP_PREFIX = "atnas-model-"
# A request that a replica has not answered by then gets a 503 (a stuck or lost deployment).
PREDICT_TIMEOUT_S = 30.0


def app_name(model_id: str) -> str:
    """The Serve application of a model."""
    return f"{APP_PREFIX}{model_id}"


class _BadImage(Exception):
    """An image of a request that does not decode (its reason names it)."""


def _images_in(batches: list[np.ndarray]) -> int:
    """Images in a list of (n, C, H, W) arrays: what a batch's size counts."""
    return sum(len(b) for b in batches)


@serve.deployment(name="model")
class ModelReplica:
    """One replica of a served model: image files in, class probabilities out."""

    def __init__(
        self,
        model_ts: bytes,
        image: ImageConfig,
        max_batch: int,
        batch_wait_s: float,
        switch_interval_s: float,
    ) -> None:
        torch.set_num_threads(1)  # replicas share the node with job workers
        # The actor's process is the replica's alone (Settings.model_switch_interval_ms).
        sys.setswitchinterval(switch_interval_s)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = torch.jit.load(io.BytesIO(model_ts), map_location=self.device)  # type: ignore[no-untyped-call]
        self.model: torch.jit.ScriptModule = model.eval()
        self.image = image
        self.max_batch = max_batch
        batcher: Any = self._forward  # serve.batch's wrapper, typed as the plain method
        batcher.set_max_batch_size(max_batch)
        batcher.set_batch_wait_timeout_s(batch_wait_s)

    async def predict(self, requests: list[Images]) -> list[dict[str, Any]]:
        """One answer per request (the API sends the requests that arrived together, see
        :mod:`workers.coalesce`): ``{"probabilities": [[p, ...], ...]}`` per image, or
        ``{"error": reason}`` naming the request's first image that does not decode (an answer,
        not an exception: it is that caller's mistake, the API makes it a 422, and the other
        requests of the call are answered all the same)."""
        answers: list[dict[str, Any]] = [{} for _ in requests]
        decoded: list[tuple[int, np.ndarray]] = []
        for i, images in enumerate(requests):
            try:
                decoded.append((i, np.stack([self._decode(n, d) for n, d in images])))
            except _BadImage as exc:
                answers[i] = {"error": str(exc)}
        if decoded:
            x = np.concatenate([a for _, a in decoded])  # (n, C, H, W) uint8
            # More images than a batch go in several (the batcher refuses an oversized one).
            parts = [x[i : i + self.max_batch] for i in range(0, len(x), self.max_batch)]
            probs = np.concatenate(await asyncio.gather(*(self._forward(p) for p in parts)))
            sizes = np.cumsum([len(a) for _, a in decoded])[:-1]
            for (i, _), p in zip(decoded, np.split(probs, sizes), strict=True):
                answers[i] = {"probabilities": p.tolist()}
        return answers

    def describe(self) -> dict[str, Any]:
        """Where and how this replica runs: its device, torch threads and thread switch
        interval (operators checking a GPU node; ``handle.describe.remote()``)."""
        return {
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "switch_interval_s": sys.getswitchinterval(),
        }

    def _decode(self, name: str, data: bytes) -> np.ndarray:
        try:
            return decode_image(data, name, self.image)  # (C, H, W) uint8
        except DatasetError as exc:
            raise _BadImage(str(exc)) from None
        except Exception as exc:  # a decoder error PIL does not wrap: still the file's fault
            raise _BadImage(f"{name}: cannot decode image ({type(exc).__name__}: {exc})") from None

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002, batch_size_fn=_images_in)
    async def _forward(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Class probabilities of the images of several requests, in one forward pass."""
        sizes = [len(b) for b in batches]
        x = torch.from_numpy(np.concatenate(batches)).to(self.device)  # (B, C, H, W) uint8
        with torch.inference_mode():
            probs = torch.softmax(self.model(x.float().div_(255.0)), dim=1).cpu().numpy()
        return np.split(probs, np.cumsum(sizes)[:-1])  # (n_i, N) per request


class RayServeRuntime:
    """Deploys and calls models on Ray Serve in the Ray cluster this process is attached to.

    Example:
        >>> init_ray(settings.ray_address)                             # doctest: +SKIP
        >>> app = create_app(settings, r, RayServeRuntime(settings))   # doctest: +SKIP
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._handles: dict[str, DeploymentHandle[Any]] = {}
        # (model id, id of the event loop) -> the coalescer of that model's requests there.
        self._coalescers: dict[tuple[str, int], Coalescer] = {}
        self._lock = threading.Lock()
        self._started = False

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                # No proxy: nothing listens; a Serve already running on the cluster is joined.
                serve.start(proxy_location="Disabled")
                self._started = True

    def deploy(self, deployment: Deployment) -> None:
        """Runs the model's application (replacing one of the same id); returns once it is up."""
        self._start()
        s = self.settings
        image = ImageConfig(
            image_size=deployment.input.height,
            channels=deployment.input.channels,
            max_pixels=s.max_image_pixels,
            max_bytes=s.max_image_bytes,
        )
        app = ModelReplica.options(  # type: ignore[attr-defined]
            num_replicas=deployment.replicas,
            ray_actor_options={"num_cpus": s.model_replica_cpus},
            # Every request holds at least one image: a full batch of requests can be in.
            max_ongoing_requests=max(s.model_max_batch, 16),
            # A prediction takes milliseconds: a replica going down waits for its requests in
            # steps of 0.1 s, not Serve's 2 s (DELETE, a redeploy), and at most 5 s in all.
            graceful_shutdown_wait_loop_s=0.1,
            graceful_shutdown_timeout_s=5.0,
        ).bind(
            deployment.model_file.read_bytes(),
            image,
            s.model_max_batch,
            s.model_batch_wait_ms / 1000,
            s.model_switch_interval_ms / 1000,
        )
        handle = serve.run(app, name=app_name(deployment.model_id), route_prefix=None)
        with self._lock:
            self._handles[deployment.model_id] = handle
            for key in [k for k in self._coalescers if k[0] == deployment.model_id]:
                del self._coalescers[key]  # made for the replaced deployment's handle
        log.info("model %s deployed (%d replica(s))", deployment.model_id, deployment.replicas)

    def running(self, model_id: str) -> bool:
        """Whether the model's application is up on the cluster (deployed by any process)."""
        status = serve.status().applications.get(app_name(model_id))
        return status is not None and status.status == "RUNNING"

    def undeploy(self, model_id: str) -> None:
        """Deletes the model's application (nothing when there is none)."""
        with self._lock:
            self._handles.pop(model_id, None)
            for key in [k for k in self._coalescers if k[0] == model_id]:
                del self._coalescers[key]
        if serve.status().applications.get(app_name(model_id)) is not None:
            serve.delete(app_name(model_id))

    async def predict(
        self, model_id: str, images: list[tuple[str, bytes]], replicas: int = 1
    ) -> list[list[float]]:
        """Class probabilities per image (see :class:`service.serving.ModelRuntime`)."""
        coalescer = await self._coalescer(model_id, replicas)
        try:
            out = await asyncio.wait_for(coalescer.submit(images), PREDICT_TIMEOUT_S)
        except TimeoutError:
            raise ServingUnavailable(
                f"model {model_id} did not answer within {PREDICT_TIMEOUT_S:g} s; retry"
            ) from None
        except (RayServeException, RayError) as exc:  # replicas gone, or Serve itself
            log.warning("model %s did not answer: %s", model_id, exc)
            raise ServingUnavailable(f"model {model_id} did not answer; retry") from exc
        if "error" in out:
            raise InvalidImage(out["error"])
        probabilities: list[list[float]] = out["probabilities"]
        return probabilities

    async def _coalescer(self, model_id: str, replicas: int) -> Coalescer:
        """The model's coalescer on the running event loop (calls go through its handle)."""
        key = (model_id, id(asyncio.get_running_loop()))
        with self._lock:
            coalescer = self._coalescers.get(key)
        if coalescer is None:
            handle = await self._handle(model_id)

            async def call(requests: list[Images]) -> list[dict[str, Any]]:
                answers: list[dict[str, Any]] = await handle.predict.remote(requests)
                return answers

            # Settings.model_calls_per_replica calls per replica in flight (default one):
            # requests that come meanwhile form the next call.
            in_flight = replicas * self.settings.model_calls_per_replica
            coalescer = Coalescer(call, in_flight, self.settings.model_max_batch)
            with self._lock:
                coalescer = self._coalescers.setdefault(key, coalescer)
        return coalescer

    async def _handle(self, model_id: str) -> DeploymentHandle[Any]:
        with self._lock:
            handle = self._handles.get(model_id)
        if handle is not None:
            return handle
        try:  # deployed by another API process on the same cluster, or before a restart
            handle = await asyncio.to_thread(serve.get_app_handle, app_name(model_id))
        except RayServeException:
            raise ServingUnavailable(
                f"model {model_id} is not running on the Ray cluster; it is redeployed when "
                "the API starts (or DELETE it and POST it again)"
            ) from None
        with self._lock:
            self._handles[model_id] = handle
        return handle

    def shutdown(self) -> None:
        """Stops Serve on the cluster: every model of every process (tests; a local Ray)."""
        with self._lock:
            self._handles.clear()
            self._coalescers.clear()
            self._started = False
        serve.shutdown()  # type: ignore[no-untyped-call]
