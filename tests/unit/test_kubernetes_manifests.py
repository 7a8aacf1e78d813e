"""deploy/kubernetes/, validated offline against Kubernetes' own schemas (kubernetes-validate), and the rules the
manifests promise: non-root, read-only, probes, budgets, one migration Job per service, no secret values."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devstack import SERVICES
from shared_core import __version__

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSION = kubernetes_validate.latest_version()


def documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def named(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_the_kubernetes_schema(doc):
    """Each document validates, strictly (no unknown field), against the newest schema kubernetes-validate has."""
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_validator_refuses_a_broken_deployment():
    """A misspelt probe field and a string replica count are refused: the check above can fail."""
    broken = copy.deepcopy(named("Deployment")["ticket-service"])
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)
    broken = copy.deepcopy(named("Deployment")["ticket-service"])
    containers(broken)[0]["readinesProbe"] = containers(broken)[0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_every_workload_runs_non_root_read_only_with_requests():
    """Deployments, the StatefulSet and the Jobs: non-root, read-only root, no privilege escalation, requests."""
    workloads = [d for d in documents() if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert len(workloads) == 11  # 4 services, their 4 migration Jobs, the worker, the proxy, PostgreSQL
    for doc in workloads:
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for container in containers(doc):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_services_separate_liveness_from_readiness_and_migrate_once():
    """Each service: 2+ replicas, liveness on /healthz, readiness on /readyz, a startup probe, a PDB, a
    versioned migration Job, and replicas that never migrate on start."""
    deployments, budgets, jobs = named("Deployment"), named("PodDisruptionBudget"), named("Job")
    for service in SERVICES:
        deployment = deployments[service]
        (container,) = containers(deployment)
        assert deployment["spec"]["replicas"] >= 2
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert {"name": "MIGRATE_ON_START", "value": "0"} in container["env"]
        assert budgets[service]["spec"]["selector"] == deployment["spec"]["selector"]
        (job,) = [j for name, j in jobs.items() if name.startswith(f"{service}-migrate-")]
        assert job["metadata"]["name"] == f"{service}-migrate-{__version__.replace('.', '-')}"
        assert containers(job)[0]["command"][-3:] == ["manage.py", "migrate", "--noinput"]
    worker = deployments["ticket-worker"]
    assert worker["spec"]["replicas"] >= 2 and containers(worker)[0]["args"] == ["worker"]
    assert budgets["ticket-worker"]["spec"]["selector"] == worker["spec"]["selector"]


def test_images_are_this_version_and_secrets_hold_no_value():
    """Every shared-core image is tagged with this version; the Secret's values are empty placeholders."""
    images = {c["image"] for d in documents() if "template" in d.get("spec", {}) for c in containers(d)}
    assert images and all(image.endswith(f":{__version__}") for image in images)
    (secret,) = named("Secret").values()
    assert set(secret["stringData"].values()) == {""}
    tokens = [e for d in documents() if "template" in d.get("spec", {}) for c in containers(d) for e in c["env"]]
    assert not [e for e in tokens if "TOKEN" in e["name"] and "value" in e and "$(" not in e["value"]]
