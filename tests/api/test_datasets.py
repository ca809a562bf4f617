from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.client import ApiError
from tests.api.conftest import MAX_UPLOAD_BYTES, LiveServer
from tests.conftest import Zips


def _post(server: LiveServer, data: bytes, name: str = "d.zip") -> tuple[int, dict[str, object]]:
    resp = server.http.post("/v1/datasets", files={"file": (name, data, "application/zip")})
    return resp.status_code, resp.json()


def _disk(server: LiveServer) -> list[Path]:
    root = server.services.settings.datasets_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_upload_describe_list_delete(server: LiveServer, zips: type[Zips], tmp_path: Path) -> None:
    path = zips.write(tmp_path / "omni.zip", zips.classes({"Latin/a": 3, "Greek/b": 2}, "bg/"))
    status, body = _post(server, path.read_bytes(), "omni.zip")
    assert status == 201
    assert body["classes"] == ["Greek/b", "Latin/a"]
    assert body["counts"] == {"Greek/b": 2, "Latin/a": 3}
    assert body["groups"] == ["Greek", "Latin"] and body["kind"] == "classes"
    ds = server.client.upload_dataset(path)  # the client's way
    assert server.client.dataset(ds.id) == ds
    assert [d.id for d in server.client.datasets()] == [ds.id, body["id"]]
    server.client.delete_dataset(ds.id)
    assert server.http.get(f"/v1/datasets/{ds.id}").status_code == 404
    assert server.http.delete(f"/v1/datasets/{ds.id}").status_code == 404
    assert len(_disk(server)) == 1


def test_delete_refuses_a_dataset_that_a_queued_job_reads(
    server: LiveServer, zips: type[Zips], tmp_path: Path
) -> None:
    path = zips.write(tmp_path / "omni.zip", zips.classes({"Latin/a": 3, "Greek/b": 2}))
    ds = server.client.upload_dataset(path)
    job = server.client.submit("meta_train", {"datasets": [ds.id], "way": 2})
    resp = server.http.delete(f"/v1/datasets/{ds.id}")
    assert resp.status_code == 409
    assert f"read by queued job '{job.id}'" in resp.json()["detail"]
    assert server.client.dataset(ds.id) == ds  # nothing lost
    server.client.cancel(job.id)
    assert server.http.delete(f"/v1/datasets/{ds.id}").status_code == 204


def test_upload_task(server: LiveServer, zips: type[Zips]) -> None:
    status, body = _post(server, zips.task({"cat": 1, "dog": 2}, {"cat": 3}))
    assert status == 201 and body["kind"] == "task"
    assert body["counts"] == {"cat": 1, "dog": 2} and body["query_counts"] == {"cat": 3}


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        (None, "not a zip archive"),
        ({"readme.txt": b"hi"}, "no PNG or JPEG"),
        ({"a.png": "PNG", "b.png": "PNG"}, "no class folders"),
        ({"cat/1.png": "PNG", "cat/2.png": b"\x89PNG garbage"}, r"cat/2.png: not a readable image"),
        ({"support/cat/1.png": "PNG", "query/cow/1.png": "PNG"}, "not in support/"),
    ],
)
def test_bad_archives(
    server: LiveServer, zips: type[Zips], members: dict[str, object] | None, reason: str
) -> None:
    if members is None:
        data = b"this is not a zip" * 10
    else:
        data = zips.zip({k: zips.png() if v == "PNG" else v for k, v in members.items()})  # type: ignore[misc]
    status, body = _post(server, data)
    assert status == 422, body
    assert reason.replace("\\", "") in str(body["detail"]) or reason in str(body["detail"])
    assert _disk(server) == []


def test_truncated_zip(server: LiveServer, zips: type[Zips]) -> None:
    data = zips.classes({"a": 5, "b": 5})
    status, body = _post(server, data[: len(data) // 2])
    assert status == 422 and "not a zip" in str(body["detail"])


def test_not_multipart(server: LiveServer) -> None:
    resp = server.http.post(
        "/v1/datasets", content=b"PK...", headers={"content-type": "application/zip"}
    )
    assert resp.status_code == 422 and "multipart/form-data" in resp.json()["detail"]


def test_missing_file_field(server: LiveServer) -> None:
    resp = server.http.post("/v1/datasets", files={"other": ("x.zip", b"123")})
    assert resp.status_code == 422 and "'file'" in resp.json()["detail"]


def test_malformed_multipart(server: LiveServer) -> None:
    resp = server.http.post(
        "/v1/datasets",
        content=b"--XYZ\r\nno headers here at all",
        headers={"content-type": "multipart/form-data; boundary=XYZ"},
    )
    assert resp.status_code == 422


def test_too_large_by_content_length(server: LiveServer, zips: type[Zips]) -> None:
    data = b"x" * (MAX_UPLOAD_BYTES + 70 * 1024)
    status, body = _post(server, data)
    assert status == 413 and "exceeds the limit" in str(body["detail"])
    assert _disk(server) == []


def test_too_large_file_under_envelope(server: LiveServer) -> None:
    status, body = _post(server, b"x" * (MAX_UPLOAD_BYTES + 10))
    assert status == 413, body
    assert _disk(server) == []


def test_too_large_chunked_without_content_length(server: LiveServer) -> None:
    boundary = "B0UNDARY"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        for _ in range(40):
            yield b"x" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = server.http.post(
        "/v1/datasets",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413
    assert _disk(server) == []


def test_client_raises_api_error(server: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    with pytest.raises(ApiError) as err:
        server.client.upload_dataset(bad)
    assert err.value.status == 422 and "not a zip" in err.value.detail
    with pytest.raises(ApiError) as err:
        server.client.dataset("missing")
    assert err.value.status == 404 and "no dataset with id 'missing'" in err.value.detail


def test_an_absolute_entry_name_is_a_422_naming_it(server: LiveServer, zips: type[Zips]) -> None:
    data = zips.zip({"a/1.png": zips.png(1), "/tmp/x/1.png": zips.png(2), "b/1.png": zips.png(3)})
    status, body = _post(server, data)
    assert status == 422 and "'/tmp/x/1.png'" in str(body["detail"]), body
    assert _disk(server) == []  # nothing kept, not even a .part file
