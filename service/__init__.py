"""The job domain of atnas: settings, schemas, Redis keys, the queue, jobs, datasets, artifacts.

No torch, no Ray, no FastAPI: the API and the Ray workers both build on this package.
"""
