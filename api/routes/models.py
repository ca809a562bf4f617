"""/v1/models: serve the model of a search job, query it, take it down."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import ServicesDep, TenantDep
from api.images import OPENAPI_BODY, read_images
from service.models import ModelCreate, ModelPublic, PredictResponse

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post("", status_code=201)
def create_model(body: ModelCreate, services: ServicesDep, tenant: TenantDep) -> ModelPublic:
    """Deploys a succeeded search job's model on Ray Serve; answers once it is ready."""
    return services.models.create(body, tenant).public()


@router.get("")
def list_models(services: ServicesDep, tenant: TenantDep) -> list[ModelPublic]:
    """Lists the served models, newest first."""
    return [m.public() for m in services.models.store.list(tenant)]


@router.get("/{model_id}")
def get_model(model_id: str, services: ServicesDep, tenant: TenantDep) -> ModelPublic:
    """Describes one served model: its job, status, classes and input size."""
    return services.models.store.get(model_id, tenant).public()


@router.delete("/{model_id}", status_code=204)
def delete_model(model_id: str, services: ServicesDep, tenant: TenantDep) -> Response:
    """Undeploys the model and removes it."""
    services.models.delete(model_id, tenant)
    return Response(status_code=204)


@router.post("/{model_id}/predict", openapi_extra=OPENAPI_BODY)
async def predict(
    model_id: str, request: Request, services: ServicesDep, tenant: TenantDep
) -> PredictResponse:
    """Classifies images (multipart ``files``, or JSON ``{"images": [base64, ...]}``)."""
    record = await services.models.ready(services.async_redis(), model_id, tenant)
    images = await read_images(request, services.models.max_images)
    return await services.models.predict(record, images)
