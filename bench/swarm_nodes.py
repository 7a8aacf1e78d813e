"""The stack on three local nodes (tools/swarm-nodes) measured under load: a rollout and the loss of nodes.

Three engines in containers of this one, all managers, node3 holding PostgreSQL (db=true), the stack deployed
by digest from their registry. devstack/loadclient.py runs on this machine through one node's edge, with
HTTPClient's retries inside a 30 s deadline; what it reports as failed is what a client with that policy
would have seen fail. Measured, in order, each under that load:
- a rollout of every service onto images rebuilt FROM a new base digest (tools/swarm rollout);
- `docker kill` of node2: how long until the swarm counts it down, and until every service runs its full
  replicas on node1 and node3;
- `docker kill` of the leader (node1), the client on node2's edge: how long until another manager leads,
  and until the stack is at full replicas again.
Nothing is left behind: the nodes, their volumes, network and registry, and the rebuilt images' tags.
"""

from __future__ import annotations

import time
import uuid

import docker
import requests

from devstack import SERVICES, throwaway_secrets
from devstack.nodes import WAIT, Load, Nodes, image_variables, rebuild_on_new_base, wait_for


def measured(report: dict) -> dict:
    """A client loop's report, counted: calls, failed calls and a few of the failures."""
    return {"calls": report["calls"], "failed": len(report["failures"]), "failures": report["failures"][:5]}


def kill(nodes: Nodes, stack: str, k: int, client_on: int, token: str, requester: str) -> dict:
    """Kill node ``k`` under load through node ``client_on``'s edge; the figures; node ``k`` started again."""
    was_leader = nodes.manager()[0] == k
    load = Load(nodes.addresses[client_on - 1], token, requester)
    started = time.monotonic()
    nodes.kill(k)
    if was_leader:
        wait_for(lambda: nodes.manager()[0] != k, WAIT, "a new leader")
        new_leader_s = time.monotonic() - started
    wait_for(lambda: nodes.node(k)["Status"]["State"] == "down", WAIT, f"node{k} seen down")
    down_s = time.monotonic() - started
    nodes.wait_full(stack)
    full_s = time.monotonic() - started
    report = load.finish()
    nodes.start(k)
    nodes.wait_full(stack)
    return {
        "seen_down_s": down_s,
        "full_replicas_s": full_s,
        **({"new_leader_s": new_leader_s} if was_leader else {}),
        **measured(report),
    }


def run(version: str) -> dict:
    name = f"benchn{uuid.uuid4().hex[:8]}"
    nodes = Nodes(name, 3, f"shared-core/swarm-node:{version}")
    run_id = uuid.uuid4().hex[:8]
    host = docker.from_env()
    try:
        started = time.monotonic()
        nodes.up()
        up_s = time.monotonic() - started
        images = nodes.publish({s: f"shared-core/{s}:{version}" for s in (*SERVICES, "proxy", "postgres")})
        env = {"STACK": name, "SWARM_WAIT": str(WAIT), **throwaway_secrets()}
        deploy_s = nodes.swarm("deploy", env={**env, **image_variables(images)})
        token = env["OPERATOR_TOKEN"]
        user = requests.post(
            f"http://{nodes.addresses[0]}:8001/api/users/",
            json={"email": f"{run_id}@example.com", "name": "Bench"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        user.raise_for_status()
        requester = user.json()["id"]

        rebuilt = nodes.publish(rebuild_on_new_base(f"shared-core/base:{version}", run_id))
        load = Load(nodes.addresses[0], token, requester)
        rollout_s = nodes.swarm("rollout", env={**env, **image_variables({**images, **rebuilt})})
        rollout = measured(load.finish())

        worker = kill(nodes, name, 2, 1, token, requester)
        k = nodes.manager()[0]
        leader = kill(nodes, name, k, 2 if k != 2 else 1, token, requester)
    finally:
        nodes.down()
        for image in host.images.list():
            for tag in image.tags:
                if tag.endswith(f"rebuilt-{run_id}"):
                    host.images.remove(tag)
    return {
        "nodes_up_s": up_s,
        "deploy_s": deploy_s,
        "rollout_s": rollout_s,
        "during_rollout": rollout,
        "killed_node": worker,
        "killed_leader": leader,
        "load": "devstack/loadclient.py on this machine through one node's edge: a GET direct, a GET through "
        "the edge and a POST with an Idempotency-Key per round, HTTPClient with 6 retries in a 30 s deadline",
    }
