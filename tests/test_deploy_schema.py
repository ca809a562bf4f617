"""The deploy files checked by machine: the compose file by Compose's own validator, the
KubeRay manifest by Kubernetes' API models and by Ray's KubeRay reader (issue 9, item 6).

- ``docker-compose.yml``: ``docker-compose config`` (Debian's docker-compose 1.29.2, which
  validates against the Compose specification's JSON schema bundled in it; ``.ci/run`` installs
  it) must accept the file, refuse it without ``ATNAS_API_KEYS``, and refuse a broken copy (so
  the check can fail). The resolved file is then checked for the wiring the README describes.
- ``deploy/kuberay/raycluster.yaml``: every pod template is checked field by field against the
  official Kubernetes API models (the ``kubernetes`` client's ``openapi_types``: an unknown
  field or a wrong type fails), and Ray's own KubeRay autoscaler reads the RayCluster
  (``_derive_autoscaling_config_from_ray_cr``, which validates against Ray's autoscaler schema).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose (Debian package) not installed; .ci/run installs it"
)


def _words(command: str | list[str]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def _compose(path: Path, keys: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ATNAS_API_KEYS"}
    if keys is not None:
        env["ATNAS_API_KEYS"] = keys
    return subprocess.run(
        [str(COMPOSE), "--project-directory", str(ROOT), "-f", str(path), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@needs_compose
def test_compose_file_is_valid_and_wired_as_documented() -> None:
    done = _compose(ROOT / "docker-compose.yml", keys="me:secret")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) == {"redis", "ray-head", "ray-worker", "api"}
    assert "--appendonly yes" in _words(services["redis"]["command"])  # AOF, as the README says
    for name in ("api", "ray-head"):
        env = services[name]["environment"]
        assert env["ATNAS_REDIS_URL"] == "redis://redis:6379/0"
        assert env["ATNAS_DATA_DIR"] == "/data"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    port = re.search(r"--port=(\d+)", _words(services["ray-head"]["command"]))
    assert port is not None
    joins = _words(services["ray-worker"]["command"])
    assert f"--address=ray-head:{port.group(1)}" in joins
    for name in ("api", "ray-head", "ray-worker"):  # one data volume, shared
        mounts = [
            v if isinstance(v, str) else f"{v['source']}:{v['target']}"
            for v in services[name]["volumes"]
        ]
        assert any(m.startswith("atnas-data:/data") for m in mounts), (name, mounts)
    assert [p["published"] if isinstance(p, dict) else p for p in services["api"]["ports"]]


@needs_compose
def test_compose_refuses_to_start_without_api_keys() -> None:
    done = _compose(ROOT / "docker-compose.yml", keys=None)
    assert done.returncode != 0
    assert "ATNAS_API_KEYS" in done.stderr


@needs_compose
def test_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service, key, value in (
        ("api", "portz", ["8000:8000"]),  # unknown key
        ("redis", "healthcheck", {"interval": 5}),  # wrong type: a duration is a string
        ("ray-worker", "depends_on", {"nothing": {}}),  # a service that does not exist
    ):
        broken = copy.deepcopy(data)
        broken["services"][service][key] = value
        path = tmp_path / "docker-compose.yml"
        path.write_text(yaml.safe_dump(broken))
        assert _compose(path, keys="me:secret").returncode != 0, broken


# ---------------------------------------------------------------- KubeRay


def _model_errors(value: Any, type_name: str, where: str) -> list[str]:
    """Checks ``value`` against a Kubernetes API model type, e.g. ``V1PodSpec``."""
    import kubernetes.client as k8s

    lowered = type_name[:5].lower() + type_name[5:]  # List[...] / Dict(...) in newer clients
    if lowered.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [
            e
            for i, v in enumerate(value)
            for e in _model_errors(v, type_name[5:-1], f"{where}[{i}]")
        ]
    if lowered.startswith(("dict(", "dict[")):
        inner = type_name[type_name.index(",") + 1 : -1].strip()
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping"]
        return [e for key, v in value.items() for e in _model_errors(v, inner, f"{where}.{key}")]
    scalars: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int,),
        "bool": (bool,),
        "float": (int, float),
        "object": (object,),
    }
    if type_name in scalars:
        ok = isinstance(value, scalars[type_name]) and not (
            type_name == "int" and isinstance(value, bool)
        )
        return [] if ok else [f"{where}: expected {type_name}, got {value!r}"]
    model = getattr(k8s, type_name, None)
    if model is None:
        return [f"{where}: unknown model {type_name}"]
    if not isinstance(value, dict):
        return [f"{where}: expected a {type_name} mapping"]
    by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
    errors = []
    for key, v in value.items():
        if key not in by_json:
            errors.append(f"{where}.{key}: not a field of {type_name}")
        else:
            errors += _model_errors(v, model.openapi_types[by_json[key]], f"{where}.{key}")
    return errors


def _raycluster() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "deploy/kuberay/raycluster.yaml").read_text())
    return doc


def test_kuberay_pod_templates_match_the_kubernetes_api() -> None:
    spec = _raycluster()["spec"]
    groups = {"head": spec["headGroupSpec"]}
    groups |= {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    for name, group in groups.items():
        assert _model_errors(group["template"], "V1PodTemplateSpec", name) == []
    # and the check bites: a misspelt field and a wrong type are both found
    broken = copy.deepcopy(spec["headGroupSpec"]["template"])
    broken["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    broken["spec"]["securityContext"]["runAsUser"] = "10001"
    found = _model_errors(broken, "V1PodTemplateSpec", "head")
    assert len(found) == 2 and "imagePullPolicyy" in found[0] + found[1]


def test_ray_reads_the_raycluster_as_documented() -> None:
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _derive_autoscaling_config_from_ray_cr,
    )

    cr = _raycluster()
    assert (cr["apiVersion"], cr["kind"]) == ("ray.io/v1", "RayCluster")
    cr["metadata"].setdefault("namespace", "default")  # kubectl's default namespace
    config = _derive_autoscaling_config_from_ray_cr(cr)  # validates against Ray's schema
    types = config["available_node_types"]
    assert types["headgroup"]["resources"]["CPU"] == 2
    assert types["gpu"]["resources"]["GPU"] == 1
    assert (types["gpu"]["min_workers"], types["gpu"]["max_workers"]) == (0, 8)
    head = cr["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"  # the dashboard stays private
    # The worker pods and the head share the one data volume, as the README says.
    for group in (head, *cr["spec"]["workerGroupSpecs"]):
        pod = group["template"]["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert claims == {"data": "atnas-data"} and mounts == {"data": "/data"}
