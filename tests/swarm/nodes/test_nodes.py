"""The stack on three nodes under load: placement, shared uploads, a drain, a rollout, a lost node, a lost leader,
and the loss of the node that holds PostgreSQL.

The tests share one cluster and run in this order; each leaves every node up and the stack at full replicas.
The load is devstack/loadclient.py on this machine through one node's edge (what a load balancer in front of
the nodes would pick: one that is up), with HTTPClient's retries inside a 30 s deadline.
"""

from __future__ import annotations

import time

import requests

from devstack.nodes import WAIT, Load, wait_for
from tests.swarm.nodes.conftest import ROLLED, Cluster

#: Failed calls a node's loss may cost the client, of all it made: its replicas vanish without a goodbye, and a
#: call in flight to one is lost once the client's retries and deadline are spent. Measured: 0 in most runs.
LOST_NODE_FAILURES = 0.02
#: Seconds from a node's loss until every service runs its full replicas on the others: the swarm counts the
#: node down after ~12 s (5 s heartbeats) and starts replacements that must turn healthy. Measured 20-40 s on
#: this 2-core machine (docs: Run on several machines); the bound is generous, not a benchmark.
RECOVERY_BOUND = 120
#: Seconds the load goes on once the stack is whole again: calls on the replicas that took over count too.
AFTER = 3
#: A file's content read from the replica's own port, in its container: P is the path, T the token.
READ = (
    "import os, urllib.request as u; r = u.Request('http://127.0.0.1:8000' + os.environ['P'], "
    "headers={'Authorization': 'Bearer ' + os.environ['T']}); print(u.urlopen(r).read().decode())"
)


def assert_nothing_lost(cluster: Cluster, load: Load, report: dict) -> None:
    """Every acknowledged ticket is stored, and none twice."""
    stored = load.stored(cluster.nodes, cluster.stack)
    assert {k: n for k, n in stored.items() if n != 1} == {}, "a retried POST was stored twice"
    assert set(report["created"]) <= set(stored), "an acknowledged ticket is missing"
    assert set(stored) == set(report["created"]), "a ticket was stored that the client never saw acknowledged"


def spread(cluster: Cluster) -> dict[str, dict[str, int]]:
    """The services whose replicas are not on two nodes, with where they run."""
    placed = {s: dict(cluster.nodes.placement(cluster.stack, s)) for s in ROLLED}
    return {s: where for s, where in placed.items() if len(where) < 2}


def test_replicas_spread_over_the_nodes_and_postgres_runs_on_the_db_node(cluster):
    """Every service's two replicas run on two nodes, a proxy on each node, PostgreSQL on node3 (db=true)."""
    assert spread(cluster) == {}
    assert cluster.nodes.placement(cluster.stack, "proxy") == {"node1": 1, "node2": 1, "node3": 1}
    assert cluster.nodes.placement(cluster.stack, "postgres") == {"node3": 1}


def test_an_upload_is_read_by_every_file_service_replica_on_every_node(cluster):
    """A file uploaded through node1's edge is served by each file-service replica, whichever node it is on."""
    ticket = requests.post(
        cluster.url(1, 8002, "/api/tickets/"),
        json={"title": "nodes upload", "requester_id": cluster.new_user()},
        headers=cluster.auth,
        timeout=30,
    )
    assert ticket.status_code == 201, ticket.text

    def upload() -> tuple[requests.Response] | None:
        answer = requests.post(
            cluster.url(1, 8004, "/api/files/"),
            data={"ticket_id": ticket.json()["id"]},
            files={"file": ("notes.txt", b"stored once, read anywhere")},
            headers=cluster.auth,
            timeout=30,
        )
        # The edge's own 503: no file-service replica could be connected to yet, so nothing was sent or stored.
        edge_503 = answer.status_code == 503 and answer.json().get("error") == "unavailable"
        return None if edge_503 else (answer,)  # a Response is false for any 4xx/5xx: wrapped, it ends the wait

    (uploaded,) = wait_for(upload, WAIT, "an upload that reached a file-service replica")
    assert uploaded.status_code == 201, uploaded.text
    path = f"/api/files/{uploaded.json()['id']}/content"
    read = []
    for task in cluster.nodes.tasks(cluster.stack, "file-service"):
        code, out = cluster.nodes.container_of(task).exec_run(
            ["python3", "-c", READ], environment={"P": path, "T": cluster.env["OPERATOR_TOKEN"]}
        )
        assert code == 0, out.decode(errors="replace")
        read.append((task["NodeID"], out.decode().strip()))
    assert len({node for node, _ in read}) == 2, read
    assert {body for _, body in read} == {"stored once, read anywhere"}


def test_draining_a_node_under_load_fails_no_request(cluster):
    """`docker node update --availability drain node2`: its tasks move to node1 and node3, 0 failed calls."""
    nodes = cluster.nodes
    load = Load(nodes.addresses[0], cluster.env["OPERATOR_TOKEN"], cluster.new_user())
    try:
        nodes.availability(2, "drain")
        wait_for(lambda: not any(nodes.placement(cluster.stack, s)["node2"] for s in ROLLED), WAIT, "node2 drained")
        nodes.wait_full(cluster.stack)
        time.sleep(AFTER)
    finally:
        report = load.finish()
        nodes.availability(2, "active")
    assert report["failures"] == [], report["failures"][:10]
    assert_nothing_lost(cluster, load, report)


def test_a_rollout_of_a_new_base_image_across_the_nodes_fails_no_request(cluster, next_release):
    """A rollout onto a new base digest across the nodes under load: 0 failed calls, all on it, spread again."""
    load = Load(cluster.nodes.addresses[0], cluster.env["OPERATOR_TOKEN"], cluster.new_user())
    try:
        cluster.nodes.swarm("rollout", env=cluster.swarm_env(next_release))
    finally:
        report = load.finish()
    assert report["failures"] == [], report["failures"][:10]
    assert_nothing_lost(cluster, load, report)
    running = {s: {t["Spec"]["ContainerSpec"]["Image"] for t in cluster.nodes.tasks(cluster.stack, s)} for s in ROLLED}
    wanted = {s: {next_release["ticket-service" if s == "ticket-worker" else s]} for s in ROLLED}
    assert running == wanted
    cluster.images = next_release
    assert spread(cluster) == {}


def test_a_killed_node_loses_no_acknowledged_write_and_the_stack_returns_to_full_replicas(cluster):
    """A killed node2 under load: ≤ 2% failed, nothing lost or doubled, full replicas within RECOVERY_BOUND."""
    nodes = cluster.nodes
    assert any(nodes.placement(cluster.stack, s)["node2"] for s in ROLLED), "node2 runs no replica to lose"
    load = Load(nodes.addresses[0], cluster.env["OPERATOR_TOKEN"], cluster.new_user())
    try:
        killed = time.monotonic()
        nodes.kill(2)
        wait_for(lambda: nodes.node(2)["Status"]["State"] == "down", WAIT, "node2 seen down")
        nodes.wait_full(cluster.stack)
        recovered = time.monotonic() - killed
        time.sleep(AFTER)
    finally:
        report = load.finish()
    assert recovered <= RECOVERY_BOUND
    assert len(report["failures"]) <= LOST_NODE_FAILURES * report["calls"], report["failures"][:10]
    assert_nothing_lost(cluster, load, report)
    nodes.start(2)
    nodes.wait_full(cluster.stack)


def test_losing_the_leader_elects_another_and_the_stack_keeps_serving(cluster):
    """A killed leader under load: a new one leads, ≤ 2% failed, nothing lost, full replicas; it rejoins."""
    nodes = cluster.nodes
    leader, _ = nodes.manager()
    survivor = 2 if leader != 2 else 3
    load = Load(nodes.addresses[survivor - 1], cluster.env["OPERATOR_TOKEN"], cluster.new_user(survivor))
    try:
        killed = time.monotonic()
        nodes.kill(leader)
        new = wait_for(lambda: (k := nodes.manager()[0]) != leader and k, WAIT, "a new leader")
        nodes.wait_full(cluster.stack)
        recovered = time.monotonic() - killed
        time.sleep(AFTER)
    finally:
        report = load.finish()
    assert new != leader and recovered <= RECOVERY_BOUND
    assert len(report["failures"]) <= LOST_NODE_FAILURES * report["calls"], report["failures"][:10]
    assert_nothing_lost(cluster, load, report)
    nodes.start(leader)
    assert nodes.node(leader)["ManagerStatus"]["Reachability"] == "reachable"
    nodes.wait_full(cluster.stack)


def test_losing_the_database_node_fails_writes_with_503_and_loses_nothing(cluster):
    """The db=true node killed: writes get a JSON 503 (or 504), other replicas stay, nothing lost once it is back."""
    # One PostgreSQL is one node: its loss stops every write until it returns (docs: Run on several machines).
    nodes = cluster.nodes

    def kept() -> set[str]:  # the tasks of node1 and node2, by id
        node_ids = {n.id for n in nodes.manager()[1].nodes.list() if n.attrs["Description"]["Hostname"] != "node3"}
        return {t["ID"] for s in ROLLED for t in nodes.tasks(cluster.stack, s) if t["NodeID"] in node_ids}

    requester = cluster.new_user()
    before = []
    for i in range(5):
        response = requests.post(
            cluster.url(1, 8002, "/api/tickets/"),
            json={"title": f"before-db-loss-{i}", "requester_id": requester},
            headers=cluster.auth,
            timeout=30,
        )
        assert response.status_code == 201, response.text
        before.append(response.json()["id"])
    running = kept()
    nodes.kill(3)

    def write() -> requests.Response:
        response = requests.post(
            cluster.url(1, 8002, "/api/tickets/"),
            json={"title": "during-db-loss", "requester_id": requester},
            headers=cluster.auth,
            timeout=30,
        )
        # Until the swarm counts node3 down, PostgreSQL's name still points there, and a write may wait out
        # its caller's deadline (504); never a 500, a 502 or a body that is not the error envelope.
        assert response.status_code in (201, 503, 504), f"{response.status_code} {response.text}"
        assert response.status_code == 201 or set(response.json()) >= {"error", "detail", "request_id"}
        return response

    wait_for(lambda: write().status_code == 503, 60, "a write refused with 503")
    # Every write refused from here on: at once (503), or, where a pooled connection to the lost host is
    # tried first, after DATABASE_CONNECT_TIMEOUT at the caller's deadline (504); none accepted.
    statuses = [write().status_code for _ in range(5)]
    assert set(statuses) <= {503, 504}, f"writes not refused while the database is away: {statuses}"
    assert running <= kept(), "a replica on node1 or node2 was replaced while the database was away"
    nodes.start(3)

    def written() -> bool:
        response = requests.post(
            cluster.url(1, 8002, "/api/tickets/"),
            json={"title": "after-db-loss", "requester_id": requester},
            headers=cluster.auth,
            timeout=30,
        )
        return response.status_code == 201

    wait_for(written, WAIT, "a write accepted again")
    for ticket in before:
        response = requests.get(cluster.url(2, 8002, f"/api/tickets/{ticket}/"), headers=cluster.auth, timeout=30)
        assert response.status_code == 200, f"{ticket}: {response.status_code}"
    nodes.wait_full(cluster.stack)
