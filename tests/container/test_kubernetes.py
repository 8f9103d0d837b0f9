"""docs/scheduling's Kubernetes examples: valid against the Kubernetes API's own schema (strict: no
unknown field), naming the image the Containerfile builds at this version and its user, and the
fleet's tenant files (its ConfigMap) usable by ``gradesync config check --tenants``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import gradesync

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "docs" / "scheduling").glob("kubernetes-*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] != "CronJob":
        return []
    return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_is_valid_kubernetes(path: Path) -> None:
    docs = _documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_runs_this_image_as_its_user(path: Path) -> None:
    cronjobs = [d for d in _documents(path) if d["kind"] == "CronJob"]
    assert cronjobs
    containerfile = (REPO / "Containerfile").read_text(encoding="utf-8")
    assert "USER 10001:10001" in containerfile and 'ENTRYPOINT ["gradesync"]' in containerfile
    for job in cronjobs:
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
        for container in _containers(job):
            # make image builds localhost/gradesync:VERSION; the examples name it in a registry
            assert container["image"].rsplit("/", 1)[1] == f"gradesync:{gradesync.__version__}"
            assert container["args"][0] in {"sync", "tenant"}
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/data" in mounts  # state and runs on the tenant's own volume


def test_the_fleet_gives_each_tenant_its_own_volume_secret_and_file(tmp_path: Path) -> None:
    docs = _documents(REPO / "docs" / "scheduling" / "kubernetes-fleet.yaml")
    (config_map,) = (d for d in docs if d["kind"] == "ConfigMap")
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    for name, text in config_map["data"].items():
        (tenants / name).write_text(text, encoding="utf-8")
    jobs = [d for d in docs if d["kind"] == "CronJob"]
    assert len(jobs) == len(config_map["data"]) >= 2
    for job in jobs:
        (container,) = _containers(job)
        assert container["args"][:2] == ["tenant", "sync"]
        tenant_file = container["args"][2]
        assert Path(tenant_file).name in config_map["data"]
        volumes = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
        data = next(v for v in volumes if v["name"] == "data")["persistentVolumeClaim"]["claimName"]
        assert data in claims and data == job["metadata"]["name"]  # one volume per tenant
        text = config_map["data"][Path(tenant_file).name]
        (secret_env,) = (e for e in container["env"] if "secretKeyRef" in e["valueFrom"])
        assert f'client_secret_env = "{secret_env["name"]}"' in text
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    check = subprocess.run([sys.executable, "-m", "gradesync", "config", "check", "--tenants", str(tenants)],
                           env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "2 tenant(s), 0 unusable" in check.stdout
