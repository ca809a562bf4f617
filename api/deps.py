"""FastAPI dependencies as ``Annotated`` aliases: routes declare what they need by type.

They are ``async`` because they only read attributes: FastAPI runs a plain ``def`` dependency
in its thread pool, and three pool hops per request cost more than the Redis round trip.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.services import Services
from service.artifacts import ArtifactStore
from service.datasets import DatasetStore
from service.jobs import JobStore
from service.settings import Settings


async def get_services(request: Request) -> Services:
    """The app's :class:`Services` (set by ``create_app``)."""
    services: Services = request.app.state.services
    return services


async def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


async def get_jobs(services: Annotated[Services, Depends(get_services)]) -> JobStore:
    return services.jobs


async def get_datasets(services: Annotated[Services, Depends(get_services)]) -> DatasetStore:
    return services.datasets


async def get_artifacts(services: Annotated[Services, Depends(get_services)]) -> ArtifactStore:
    return services.artifacts


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
