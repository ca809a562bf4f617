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
from service.errors import Unauthorized
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


async def get_tenant(request: Request) -> str | None:
    """The caller's tenant from ``Authorization: Bearer <key>``; None when the service is open
    (no keys configured: every record is visible). :class:`Unauthorized` otherwise."""
    services: Services = request.app.state.services
    if services.keys.open:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    tenant = services.keys.tenant_of(token.strip())
    if tenant is None:
        raise Unauthorized("the API key is not valid", invalid=True)
    return tenant


ServicesDep = Annotated[Services, Depends(get_services)]
# The tenant whose records a request may see; None: all (an open service).
TenantDep = Annotated[str | None, Depends(get_tenant)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
