"""The deploy files keep their promises: only the API published, no root, Ray kept private."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_compose_publishes_only_the_api_and_requires_keys() -> None:
    services = _load("docker-compose.yml")["services"]
    published = sorted(name for name, svc in services.items() if svc.get("ports"))
    assert published == ["api"]
    assert "ATNAS_API_KEYS" in services["api"]["environment"]
    assert ":?" in services["api"]["environment"]["ATNAS_API_KEYS"]  # compose refuses if unset
    assert services["redis"].get("user") not in (None, "0", "root")


def test_images_run_as_a_non_root_user() -> None:
    for name in ("Dockerfile.api", "Dockerfile.worker"):
        text = (ROOT / "deploy" / name).read_text()
        users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
        assert users and users[-1] not in ("root", "0"), name
        # USER comes before the command that starts the process.
        assert text.index(f"USER {users[-1]}") < text.index("CMD"), name


def test_kuberay_keeps_the_dashboard_private_and_pods_non_root() -> None:
    spec = _load("deploy/kuberay/raycluster.yaml")["spec"]
    assert spec["headGroupSpec"]["rayStartParams"].get("dashboard-host") == "127.0.0.1"
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        ctx = group["template"]["spec"]["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0
