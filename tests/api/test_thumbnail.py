"""GET /v1/datasets/{id}/thumbnail over real HTTP: a PNG of one image, and clear 4xx."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from PIL import Image

from api.services import Services
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips


def _upload(server: LiveServer, tmp_path: Path, zips: type[Zips]) -> str:
    big = Image.new("RGB", (200, 100), (200, 30, 30))
    buf = io.BytesIO()
    big.save(buf, format="JPEG")
    data = zips.zip(
        {
            "set/Latin/a/0.png": zips.png(seed=1),
            "set/Latin/a/1.png": zips.png(seed=2),
            "set/Greek/b/0.jpg": buf.getvalue(),
        }
    )
    return server.client.upload_dataset(zips.write(tmp_path / "d.zip", data)).id


def test_thumbnail_is_a_png_of_that_image_shrunk_to_fit(
    server: LiveServer, tmp_path: Path, zips: type[Zips]
) -> None:
    ds = _upload(server, tmp_path, zips)
    resp = server.http.get(f"/v1/datasets/{ds}/thumbnail", params={"class": "Greek/b", "size": 64})
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(resp.content))
    assert img.format == "PNG" and img.size == (64, 32)  # aspect kept
    r, g, b = img.convert("RGB").getpixel((32, 16))
    assert r > 150 and g < 80 and b < 80  # the red image, not another
    small = server.http.get(f"/v1/datasets/{ds}/thumbnail", params={"class": "Latin/a", "i": 1})
    expected = Image.open(io.BytesIO(zips.png(seed=2)))
    assert list(Image.open(io.BytesIO(small.content)).getdata()) == list(expected.getdata())


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"class": "Latin/zz"}, 404, "the dataset has no class 'Latin/zz'"),
        ({"class": "Latin/a", "i": 2}, 404, "class 'Latin/a' has 2 images: i must be in 0..1"),
        ({"class": "Latin/a", "size": 4096}, 422, "size"),
        ({}, 422, "class"),
    ],
)
def test_bad_requests_get_a_reason(
    server: LiveServer,
    tmp_path: Path,
    zips: type[Zips],
    params: dict[str, object],
    status: int,
    reason: str,
) -> None:
    ds = _upload(server, tmp_path, zips)
    resp = server.http.get(f"/v1/datasets/{ds}/thumbnail", params=params)
    assert resp.status_code == status
    assert reason in str(resp.json()["detail"])


def test_another_tenants_dataset_is_404(
    server: LiveServer,
    _uvicorn: tuple[FastAPI, str],
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
) -> None:
    keyed = settings.model_copy(
        update={"api_keys": "acme:acme-key-0123456789,globex:globex-key-9876"}
    )
    server.services = _uvicorn[0].state.services = Services.build(keyed, redis_client)
    data = zips.classes({"a": 2, "b": 2})
    ds = server.http.post(
        "/v1/datasets",
        files={"file": ("d.zip", data, "application/zip")},
        headers={"Authorization": "Bearer acme-key-0123456789"},
    ).json()["id"]
    url = f"/v1/datasets/{ds}/thumbnail?class=a"
    assert (
        server.http.get(url, headers={"Authorization": "Bearer globex-key-9876"}).status_code == 404
    )
    ok = server.http.get(url, headers={"Authorization": "Bearer acme-key-0123456789"})
    assert ok.status_code == 200 and ok.content.startswith(b"\x89PNG")
