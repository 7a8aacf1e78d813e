"""The multi-node suite's configuration: three Docker Engines in containers as a swarm, the stack on them, once.

Black-box, as the one-node suite: `make test-swarm-nodes` builds this tree's images and the node image;
tools/swarm-nodes starts the nodes (all three managers, node3 labelled db=true) under a per-run name and
tools/swarm deploys compose/stack.yaml on them, images by digest from the nodes' registry. Afterwards the
nodes, their volumes, registry and network are removed, and so are the images the suite built: this engine is
left as it was found, its own swarm state included.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest
import requests

from devstack import SERVICES, throwaway_secrets
from devstack.nodes import WAIT, Nodes, image_variables, rebuild_on_new_base, wait_for

#: The services a rollout moves; ticket-worker runs ticket-service's image.
ROLLED = (*SERVICES, "ticket-worker")
#: Each service's port on every node's edge (compose/stack.yaml's host-mode ports).
EDGE_PORTS = (8001, 8002, 8003, 8004)


@dataclass
class Cluster:
    """The nodes, the stack's name, its secrets and the images it runs (service → reference by digest)."""

    nodes: Nodes
    stack: str
    env: dict[str, str]
    images: dict[str, str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['OPERATOR_TOKEN']}"}

    def url(self, k: int, port: int, path: str) -> str:
        """``path`` through node ``k``'s edge (8001 user-service, 8002 tickets, 8003 communication, 8004 files)."""
        return f"http://{self.nodes.addresses[k - 1]}:{port}{path}"

    def routed(self, k: int, port: int) -> bool:
        """Whether node ``k``'s edge reaches a ready replica behind ``port`` (its /readyz answers 200)."""
        try:
            return requests.get(self.url(k, port, "/readyz"), timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def new_user(self, k: int = 1) -> str:
        body = {"email": f"{uuid.uuid4().hex}@example.com", "name": "Nodes"}
        response = requests.post(self.url(k, 8001, "/api/users/"), json=body, headers=self.auth, timeout=30)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def swarm_env(self, images: dict[str, str]) -> dict[str, str]:
        """tools/swarm's environment: the stack, its secrets and every *_IMAGE."""
        return {**self.env, **image_variables(images)}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Three nodes and the stack deployed on them; everything removed afterwards, this engine as it was."""
    base, image = os.environ.get("SHARED_CORE_BASE_IMAGE"), os.environ.get("NODE_IMAGE")
    if not base or not image:
        pytest.fail("SHARED_CORE_BASE_IMAGE and NODE_IMAGE are not set: run the suite with `make test-swarm-nodes`")
    host = docker.from_env()
    was = host.info()["Swarm"]["LocalNodeState"]
    name = f"scn{uuid.uuid4().hex[:8]}"
    version = base.rsplit(":", 1)[-1]
    nodes = Nodes(name, 3, image)
    try:
        nodes.up()
        tags = {s: f"shared-core/{s}:{version}" for s in (*SERVICES, "proxy", "postgres")}
        images = nodes.publish(tags)
        cluster = Cluster(nodes, name, {"STACK": name, "SWARM_WAIT": "300", **throwaway_secrets()}, images)
        nodes.swarm("deploy", env=cluster.swarm_env(images))
        # Healthy replicas are not yet reachable from every node: each edge re-resolves within
        # PROXY_RESOLVER_VALID, and a node's overlay learns the other nodes' new tasks by gossip.
        for k in (1, 2, 3):
            for port in EDGE_PORTS:
                wait_for(lambda k=k, port=port: cluster.routed(k, port), WAIT, f"node{k}'s edge reaching :{port}")
        yield cluster
    finally:
        nodes.down()
        registry = nodes.env_of.get("REGISTRY", "-")
        left = {
            "containers": [c.name for c in host.containers.list(all=True) if c.name.startswith(name)],
            "volumes": [v.name for v in host.volumes.list() if v.name.startswith(name)],
            "networks": [n.name for n in host.networks.list() if n.name.startswith(name)],
            "images": [
                ref
                for image in host.images.list()
                for ref in image.tags + image.attrs.get("RepoDigests", [])
                if ref.startswith(f"{registry}/")
            ],
            "swarm": host.info()["Swarm"]["LocalNodeState"],
        }
        found = {"containers": [], "volumes": [], "networks": [], "images": [], "swarm": was}
        assert left == found, f"left behind: {left}"


@pytest.fixture(scope="session")
def next_release(cluster: Cluster) -> Iterator[dict[str, str]]:
    """The services rebuilt FROM a new base image digest, published to the nodes' registry: service → reference
    by digest. Their tags are removed from this engine afterwards."""
    base = os.environ["SHARED_CORE_BASE_IMAGE"]
    run = uuid.uuid4().hex[:8]
    host = docker.from_env()
    try:
        yield {**cluster.images, **cluster.nodes.publish(rebuild_on_new_base(base, run))}
    finally:
        for image in host.images.list():
            for tag in image.tags:
                if tag.endswith(f"rebuilt-{run}"):
                    host.images.remove(tag)
