"""Every Redis key of atnas, built in this one module.

Example:
    >>> Keys("atnas").job("j1")
    'atnas:job:j1'
"""

from __future__ import annotations

import hashlib


class Keys:
    """Key names under one prefix (``Settings.key_prefix``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- jobs ---------------------------------------------------------------------------
    def job(self, job_id: str) -> str:
        """String: the job record as JSON."""
        return self._k("job", job_id)

    def job_cancel(self, job_id: str) -> str:
        """String flag: a cancel was requested while the job was running."""
        return self._k("job", job_id, "cancel")

    def job_seq(self) -> str:
        """Counter: creation order of jobs (the score of the job indexes)."""
        return self._k("jobs", "seq")

    def job_index(
        self, status: str | None = None, kind: str | None = None, tenant: str | None = None
    ) -> str:
        """Sorted set of job ids scored by creation order, optionally per status and/or kind;
        with ``tenant``, only that tenant's jobs (without, every tenant's)."""
        if tenant is not None:
            return self._k("jobs", "idx", "t", tenant, status or "*", kind or "*")
        return self._k("jobs", "idx", status or "*", kind or "*")

    def idempotency(self, key: str, tenant: str | None = None) -> str:
        """String ``<job_id> <body sha256>``; the client's key is hashed to bound its length
        (and scoped to the tenant, so that two tenants' keys never meet)."""
        scoped = key if tenant is None else f"{tenant}\0{key}"
        return self._k("idem", hashlib.sha256(scoped.encode()).hexdigest())

    # --- queue --------------------------------------------------------------------------
    def queue_stream(self) -> str:
        """Stream of job ids waiting for a worker."""
        return self._k("queue")

    def queue_group(self) -> str:
        """Consumer group name of the workers on :meth:`queue_stream` (a name, not a key)."""
        return "workers"

    # --- workers ------------------------------------------------------------------------
    def workers(self) -> str:
        """Sorted set of worker ids scored by the time their heartbeat expires."""
        return self._k("workers")

    def cluster(self) -> str:
        """String (expiring): the Ray cluster's size as JSON, from the dispatchers."""
        return self._k("cluster")

    # --- datasets -----------------------------------------------------------------------
    def dataset(self, dataset_id: str) -> str:
        """String: the dataset record as JSON."""
        return self._k("dataset", dataset_id)

    def dataset_index(self, tenant: str | None = None) -> str:
        """Sorted set of dataset ids scored by creation time (with ``tenant``, only its own)."""
        if tenant is not None:
            return self._k("datasets", "t", tenant)
        return self._k("datasets")

    # --- served models ------------------------------------------------------------------
    def model(self, model_id: str) -> str:
        """String: the served model's record as JSON."""
        return self._k("model", model_id)

    def model_index(self, tenant: str | None = None) -> str:
        """Sorted set of model ids scored by creation time (with ``tenant``, only its own)."""
        if tenant is not None:
            return self._k("models", "t", tenant)
        return self._k("models")

    def all_patterns(self) -> list[str]:
        """SCAN patterns covering every key under the prefix (tests use it to clean up)."""
        return [self._k("*")]
