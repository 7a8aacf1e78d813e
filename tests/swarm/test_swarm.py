"""The Swarm stack under rollouts and faults, with a client loop on the overlay network.

The tests share one stack and run in this order: a rollout from N to N+1, a rollback by hand to N, a broken
rollout that Swarm rolls back, the loss of a replica and of a worker, a hung replica, and a database restart.
"""

from __future__ import annotations

import contextlib
import threading

import docker
import requests
from docker.models.containers import Container

from shared_core.pytest_plugin import eventually
from tests.swarm.conftest import ROLLED, SWARM_WAIT, Release, Swarm, wait_converged


def digest_of(swarm: Swarm, tag: str) -> str:
    """The registry digest (sha256:...) of a local image tag, as pushed by tools/swarm."""
    (digest,) = {ref.split("@", 1)[1] for ref in swarm.client.images.get(tag).attrs["RepoDigests"]}
    return digest


def on_release(swarm: Swarm, release: Release) -> dict[str, set[str]]:
    """Each rolled service's running images, as digests, beside the release's (ticket-worker: ticket-service's)."""
    seen = {name: {image.split("@", 1)[1] for image in swarm.images_of(name)} for name in ROLLED}
    wanted = {
        name: {digest_of(swarm, release.images[name if name != "ticket-worker" else "ticket-service"])}
        for name in ROLLED
    }
    return {name: seen[name] for name in ROLLED if seen[name] != wanted[name]}


def test_secrets_reach_the_services_as_files_never_as_environment(swarm):
    """No service's spec holds a secret's value: each reads it from /run/secrets through a *_FILE variable."""
    values = [
        swarm.env[name] for name in ("OPERATOR_TOKEN", "TICKET_SERVICE_TOKEN", "DJANGO_SECRET_KEY", "POSTGRES_PASSWORD")
    ]
    for name in (*ROLLED, "postgres", "proxy"):
        spec = str(swarm.service(name).attrs["Spec"])
        assert not [v for v in values if v in spec], f"{name}'s spec holds a secret"
    env = swarm.service("ticket-service").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "DJANGO_SECRET_KEY_FILE=/run/secrets/django_secret_key" in env
    response = requests.get(swarm.url("ticket-service", "/api/tickets/"), headers=swarm.auth, timeout=30)
    assert response.status_code == 200, response.text


def test_a_rollout_to_the_next_base_image_under_load_fails_no_request_and_writes_nothing_twice(swarm, releases):
    """N to N+1 across every service while the loop runs: 0 failed calls, 0 duplicated tickets, all on N+1."""
    load = swarm.load(swarm.new_user())
    swarm.tool("rollout", releases["next"])
    report = load.finish()
    load.assert_clean(report)
    assert report["created"], "no POST ran during the rollout"
    assert on_release(swarm, releases["next"]) == {}
    for name in ROLLED:
        assert swarm.converged(name)


def test_rolling_back_by_hand_is_one_command_and_fails_no_request(swarm, releases):
    """`tools/swarm rollback` under load: every service back on N, 0 failed calls, 0 duplicated tickets."""
    load = swarm.load(swarm.new_user())
    swarm.tool("rollback", releases["current"])
    report = load.finish()
    load.assert_clean(report)
    assert on_release(swarm, releases["current"]) == {}


def test_a_rollout_that_never_turns_healthy_is_rolled_back_by_swarm(swarm, releases):
    """A ticket-service image that never turns healthy: the update rolls back on its own, 0 failed calls."""
    load = swarm.load(swarm.new_user())
    done = swarm.tool("rollout", releases["broken"], check=False)
    report = load.finish()
    assert done.returncode == 1, done.stderr
    assert "ticket-service: update rollback_completed" in done.stderr, done.stderr
    load.assert_clean(report)
    assert on_release(swarm, releases["current"]) == {}, "a service moved, or the rollback did not finish"
    wait_converged(swarm, "ticket-service")


def test_a_killed_replica_and_a_killed_worker_fail_no_request_and_the_held_task_is_delivered_once(swarm):
    """`docker kill` of a ticket-service replica, then of the worker holding a delivery: both replaced, 0 failed
    calls, and the held delivery is stored once by communication-service."""
    requester = swarm.new_user()
    load = swarm.load(requester)
    victim = swarm.containers("ticket-service")[0]
    victim.kill()
    wait_converged(swarm, "ticket-service")
    assert victim.id not in {c.id for c in swarm.containers("ticket-service")}

    # Hold a delivery: communication-service paused, the worker that runs the ticket's task waits on it.
    receivers = swarm.containers("communication-service")
    for receiver in receivers:
        receiver.pause()
    try:
        body = {"title": "held", "requester_id": requester}
        response = requests.post(
            swarm.url("ticket-service", "/api/tickets/"), json=body, headers=swarm.auth, timeout=30
        )
        assert response.status_code == 201, response.text
        # The loop's own POSTs are held too, and may keep the workers busy before this one: the delivery to
        # cut is whichever a worker is running.
        holder, ticket = eventually(
            lambda: swarm.psql(
                "ticket_service",
                "SELECT worker_ids->>-1, args_kwargs->'args'->>0 FROM django_tasks_database_dbtaskresult "
                "WHERE status = 'RUNNING' AND task_path LIKE '%' || :'value' ORDER BY started_at LIMIT 1",
                ".notify_requester",
            ),
            30,
            "a worker running a held delivery",
        )[0].split("|")
        (worker,) = [c for c in swarm.containers("ticket-worker") if holder.startswith(c.attrs["Config"]["Hostname"])]
        worker.kill()
    finally:
        for receiver in receivers:
            receiver.unpause()
    wait_converged(swarm, "ticket-worker")
    assert worker.id not in {c.id for c in swarm.containers("ticket-worker")}

    report = load.finish()
    load.assert_clean(report)

    def delivered() -> bool:
        got = requests.get(swarm.url("ticket-service", f"/api/tickets/{ticket}/"), headers=swarm.auth, timeout=30)
        return got.status_code == 200 and got.json()["notification"] == "delivered"

    eventually(delivered, SWARM_WAIT, "the held delivery recovered and delivered")
    rows = swarm.psql(
        "communication_service",
        "SELECT count(*) FROM communication_service_notification WHERE ticket_id = :'value'",
        ticket,
    )
    assert rows == ["1"], f"the held delivery was stored {rows} times"


def unpause(container: Container) -> None:
    """Resume ``container``, unless Swarm replaced it as unhealthy while it was paused."""
    with contextlib.suppress(docker.errors.APIError):
        container.unpause()


#: A read of one page of tickets takes milliseconds; one sent to a hung replica waits until the client gives up.
READ_TIMEOUT = 5.0
#: Reads through the edge while one ticket-service replica hangs.
READS_WHILE_HUNG = 1500


def test_a_hung_replica_is_routed_around_by_the_edge(swarm):
    """One of ticket-service's two replicas paused: of 1500 reads through the edge by 4 clients, at least 99% are
    answered 200 (the hung replica holds a few until they time out); afterwards the service converges again."""
    wait_converged(swarm, "ticket-service")
    url = swarm.url("ticket-service", "/api/tickets/?limit=1")
    stop = threading.Event()
    reads: list[int | str] = []

    def reader() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    reads.append(session.get(url, headers=swarm.auth, timeout=READ_TIMEOUT).status_code)
                except requests.RequestException as exc:
                    reads.append(type(exc).__name__)

    victim = swarm.containers("ticket-service")[0]
    threads = [threading.Thread(target=reader) for _ in range(4)]
    victim.pause()
    try:
        for thread in threads:
            thread.start()
        eventually(lambda: len(reads) >= READS_WHILE_HUNG, SWARM_WAIT, f"{READS_WHILE_HUNG} reads", lambda: len(reads))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        unpause(victim)
    failed = [r for r in reads if r != 200]
    assert len(failed) <= 0.01 * len(reads), f"{len(failed)} of {len(reads)} reads failed: {failed[:10]}"
    wait_converged(swarm, "ticket-service")


def test_a_database_restart_drops_readiness_and_restarts_no_replica(swarm):
    """PostgreSQL's task stopped: /readyz turns 503 and back to 200, and every replica keeps its container."""
    before = {name: sorted(c.id for c in swarm.containers(name)) for name in ROLLED}
    readyz = swarm.url("ticket-service", "/readyz")
    (postgres,) = swarm.containers("postgres")
    postgres.stop(timeout=30)
    eventually(lambda: requests.get(readyz, timeout=30).status_code == 503, 60, "readiness dropped")
    eventually(lambda: requests.get(readyz, timeout=30).status_code == 200, SWARM_WAIT, "readiness back")
    wait_converged(swarm, "postgres", replicas=1)
    for name in ROLLED:
        assert swarm.converged(name), f"{name} is not healthy after the database came back"
    assert {name: sorted(c.id for c in swarm.containers(name)) for name in ROLLED} == before
