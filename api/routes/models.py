"""/v1/models: serve the model of a search job, query it, take it down."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from api.deps import ServicesDep, TenantDep
from api.images import OPENAPI_BODY, read_images
from service.models import ModelCreate, ModelPublic, PredictResponse

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post("", status_code=202, responses={201: {"description": "deployed (``wait=true``)"}})
def create_model(
    body: ModelCreate,
    services: ServicesDep,
    tenant: TenantDep,
    response: Response,
    wait: bool = Query(
        default=False, description="answer once the model is ready (201), not at once (202)"
    ),
) -> ModelPublic:
    """Deploys a succeeded search job's model on Ray Serve.

    Answers 202 at once with the model ``deploying`` (poll ``GET /v1/models/{id}`` until it is
    ``ready``, or ``failed`` with the reason); with ``?wait=true``, 201 once it answers.
    """
    record = services.models.create(body, tenant, wait=wait)
    response.status_code = 201 if wait else 202
    response.headers["Location"] = f"/v1/models/{record.id}"
    return record.public()


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
