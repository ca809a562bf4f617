"""FastAPI dependencies as ``Annotated`` aliases: routes declare what they need by type."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.services import Services
from service.artifacts import ArtifactStore
from service.datasets import DatasetStore
from service.jobs import JobStore
from service.settings import Settings


def get_services(request: Request) -> Services:
    """The app's :class:`Services` (set by ``create_app``)."""
    services: Services = request.app.state.services
    return services


def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


def get_jobs(services: Annotated[Services, Depends(get_services)]) -> JobStore:
    return services.jobs


def get_datasets(services: Annotated[Services, Depends(get_services)]) -> DatasetStore:
    return services.datasets


def get_artifacts(services: Annotated[Services, Depends(get_services)]) -> ArtifactStore:
    return services.artifacts


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
