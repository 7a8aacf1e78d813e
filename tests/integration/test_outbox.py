"""The transactional outbox across containers: side effects survive a neighbour's outage and a worker's death."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.conftest import TICKET_WORKERS, eventually

pytestmark = pytest.mark.docker

#: Generous bound for the outbox to catch up once a neighbour is back (retries come every 2 s at most).
DRAINED_WITHIN = 120.0
#: ticket-chaos-worker: OUTBOX_RECOVER_AFTER (10 s) plus a generous margin for a restart on a busy machine.
RECOVERED_WITHIN = 90.0
COMMUNICATION = "http://communication-chaos:8000"


def new_user(stack) -> str:
    body = {"email": f"{uuid.uuid4().hex}@example.com", "name": "Outbox"}
    response = stack.call("POST", "user-service", "/api/users/", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def new_ticket(stack, requester: str, service: str = "ticket-service", **kwargs) -> dict:
    response = stack.call("POST", service, "/api/tickets/", json={"title": "t", "requester_id": requester}, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def upload(stack, ticket_id: str) -> str:
    files = {"file": ("a.txt", uuid.uuid4().bytes)}
    response = stack.call("POST", "file-service", "/api/files/", data={"ticket_id": ticket_id}, files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def files_of(stack, ticket_id: str) -> dict[str, bool]:
    """``{file id: is_deleted}`` for every file of the ticket."""
    path = f"/api/files/?ticket_id={ticket_id}&include_deleted=true&limit=100"
    return {f["id"]: f["is_deleted"] for f in stack.call("GET", "file-service", path).json()["results"]}


def notifications_of(stack, ticket_id: str, service: str = "communication-service") -> int:
    path = f"/api/notifications/?ticket_id={ticket_id}&include_deleted=true"
    return len(stack.call("GET", service, path).json()["results"])


def deliveries(upstream, path: str, ticket_id: str) -> list[dict]:
    """What the upstream received at ``path`` for this ticket (an earlier test's late delivery is not counted)."""
    return [seen for seen in upstream.seen(path) if ticket_id in seen["body"]]


def test_tickets_created_while_communication_service_is_down_are_each_notified_once_it_is_back(stack):
    """With communication-service stopped, 50 tickets get 201 pending; once it is back, each has one notification."""
    requester = new_user(stack)
    communication = stack.container("communication-service")
    communication.stop(timeout=30)
    try:
        tickets = [new_ticket(stack, requester) for _ in range(50)]
    finally:
        communication.start()
        stack.wait_healthy("communication-service")
    assert {t["notification"] for t in tickets} == {"pending"}

    def delivered() -> bool:
        listed = stack.call("GET", "ticket-service", f"/api/tickets/?requester_id={requester}&limit=100").json()
        return len(listed["results"]) == 50 and all(t["notification"] == "delivered" for t in listed["results"])

    eventually(delivered, DRAINED_WITHIN, "every ticket's notification delivered")
    assert [notifications_of(stack, t["id"]) for t in tickets] == [1] * 50


def test_a_ticket_deleted_while_file_service_is_paused_takes_exactly_its_files(stack):
    """DELETE is 204 while file-service is paused; once it is back exactly the ticket's files are deleted, and
    restore brings back exactly those: not the file deleted on its own before the ticket, nor the one deleted
    on its own after the ticket but before file-service heard of it."""
    ticket = new_ticket(stack, new_user(stack))["id"]
    before, kept_a, kept_b, after = (upload(stack, ticket) for _ in range(4))
    assert stack.call("DELETE", "file-service", f"/api/files/{before}/").status_code == 204
    workers = stack.containers("ticket-worker")
    for worker in workers:  # nothing in flight to file-service, so the order below is certain
        worker.stop(timeout=40)
    file_service = stack.container("file-service")
    file_service.pause()
    try:
        assert stack.call("DELETE", "ticket-service", f"/api/tickets/{ticket}/").status_code == 204
    finally:
        file_service.unpause()
    assert stack.call("DELETE", "file-service", f"/api/files/{after}/").status_code == 204
    file_service.pause()  # the workers now meet a paused file-service: attempts time out and are retried
    try:
        for worker in workers:
            worker.start()
        stack.wait_healthy("ticket-worker")
        eventually(lambda: stack.outbox()["scheduled"], 30, "a delivery waiting to be retried")
    finally:
        file_service.unpause()
    seen = lambda: {"files": files_of(stack, ticket), "outbox": stack.outbox()}  # noqa: E731
    eventually(lambda: all(files_of(stack, ticket).values()), DRAINED_WITHIN, "the ticket's files deleted", seen)

    assert stack.call("POST", "ticket-service", f"/api/tickets/{ticket}/restore/").status_code == 200
    expected = {before: True, kept_a: False, kept_b: False, after: True}
    eventually(lambda: files_of(stack, ticket) == expected, DRAINED_WITHIN, f"only {expected} restored", seen)


@pytest.mark.parametrize("tries", [6])
def test_a_tiny_deadline_on_delete_and_restore_leaves_ticket_and_files_agreeing(stack, tries):
    """DELETE and restore with X-Request-Deadline: 0.008 may answer 504, but once the outbox drains, every
    ticket and its files agree."""
    requester = new_user(stack)
    tickets = {}
    for _ in range(tries):
        ticket = new_ticket(stack, requester)["id"]
        tickets[ticket] = {upload(stack, ticket) for _ in range(2)}
    budget = {"X-Request-Deadline": "0.008"}
    for ticket in tickets:
        deleted = stack.call("DELETE", "ticket-service", f"/api/tickets/{ticket}/", headers=budget)
        restored = stack.call("POST", "ticket-service", f"/api/tickets/{ticket}/restore/", headers=budget)
        assert deleted.status_code in (204, 504) and restored.status_code in (200, 404, 504), restored.text
    eventually(stack.idle, DRAINED_WITHIN, "ticket-service's outbox drained")
    for ticket, files in tickets.items():
        live = stack.call("GET", "ticket-service", f"/api/tickets/{ticket}/").status_code == 200
        assert files_of(stack, ticket) == dict.fromkeys(files, not live), ticket


def test_two_workers_share_the_outbox_and_run_each_task_once(stack):
    """Two worker containers both take tasks; each task was claimed once, and each ticket has one notification."""
    assert len(stack.containers("ticket-worker")) == TICKET_WORKERS == 2
    requester = new_user(stack)
    tickets = [new_ticket(stack, requester)["id"] for _ in range(30)]

    def delivered() -> bool:
        listed = stack.call("GET", "ticket-service", f"/api/tickets/?requester_id={requester}&limit=100").json()
        return all(t["notification"] == "delivered" for t in listed["results"])

    eventually(delivered, DRAINED_WITHIN, "every notification delivered")
    rows = json.loads(
        stack.manage(
            "ticket-service",
            "import json; from django_tasks_db.models import DBTaskResult as R; print(json.dumps(list("
            "R.objects.filter(task_path__endswith='notify_requester').values_list('args_kwargs', 'worker_ids'))))",
        )
    )
    claims = {args["args"][0]: workers for args, workers in rows if args["args"][0] in tickets}
    assert sorted(claims) == sorted(tickets) and all(len(w) == 1 for w in claims.values())
    assert len({w[0] for w in claims.values()}) == 2, "both workers took tasks"
    assert [notifications_of(stack, t) for t in tickets] == [1] * 30


def test_a_worker_killed_mid_delivery_is_recovered_and_the_receiver_stores_one_row(stack, upstream):
    """`docker kill` of the worker while the upstream holds its delivery: after recovery the task is delivered
    again with the same Idempotency-Key, and communication-service holds one notification."""
    path = "/n/api/notifications/"
    upstream.script(path, {"delay": 2, "proxy": COMMUNICATION}, {"proxy": COMMUNICATION})
    worker = stack.container("ticket-chaos-worker")
    ticket = new_ticket(stack, str(uuid.uuid4()), "ticket-chaos")["id"]
    eventually(lambda: deliveries(upstream, path, ticket), 30, "the delivery reached the upstream")
    worker.kill()
    worker.start()
    stack.wait_healthy("ticket-chaos-worker")

    def delivered() -> bool:
        return stack.call("GET", "ticket-chaos", f"/api/tickets/{ticket}/").json()["notification"] == "delivered"

    eventually(delivered, RECOVERED_WITHIN, "the killed delivery recovered")
    attempts = deliveries(upstream, path, ticket)
    assert len(attempts) >= 2 and len({a["headers"]["Idempotency-Key"] for a in attempts}) == 1
    assert notifications_of(stack, ticket, "communication-chaos") == 1


def test_sigterm_lets_the_worker_finish_the_delivery_in_hand_and_exit_0(stack, upstream):
    """`docker stop` during a held delivery: the worker finishes it, under the enqueuing request's id, and exits 0."""
    path = "/n/api/notifications/"
    upstream.script(path, {"delay": 1.5, "status": 201, "body": {}})
    worker = stack.container("ticket-chaos-worker")
    request_id = f"outbox-{uuid.uuid4().hex}"
    ticket = new_ticket(stack, str(uuid.uuid4()), "ticket-chaos", headers={"X-Request-ID": request_id})["id"]
    eventually(lambda: deliveries(upstream, path, ticket), 30, "the delivery reached the upstream")
    try:
        worker.stop(timeout=15)
        worker.reload()
        assert worker.attrs["State"]["ExitCode"] == 0
        assert stack.call("GET", "ticket-chaos", f"/api/tickets/{ticket}/").json()["notification"] == "delivered"
        (attempt,) = deliveries(upstream, path, ticket)
        assert attempt["headers"]["X-Request-Id"] == request_id
        assert "delivered" in stack.wait_for_log("ticket-chaos-worker", request_id)
    finally:
        worker.start()
        stack.wait_healthy("ticket-chaos-worker")


def test_the_worker_is_healthy_by_its_own_check(stack):
    """Each worker container runs the `worker` command and its exec HEALTHCHECK reports healthy."""
    for worker in [*stack.containers("ticket-worker"), stack.container("ticket-chaos-worker")]:
        worker.reload()
        assert worker.attrs["Config"]["Cmd"] == ["worker"]
        assert worker.attrs["State"]["Health"]["Status"] == "healthy"
        probe = worker.exec_run(["python3", "/usr/local/bin/healthcheck"])
        assert probe.exit_code == 0, probe.output.decode()


def test_a_stuck_worker_loop_fails_its_healthcheck_and_recovers_with_it(stack):
    """With the worker process frozen (SIGSTOP), its heartbeat goes stale and the healthcheck fails; once it runs
    again, the healthcheck passes. The probe is run with a 1 s limit (OUTBOX_TASK_TIMEOUT=-29) to keep this short."""
    worker = stack.container("ticket-chaos-worker")
    signal_worker = (
        "import os, signal, sys; "
        "pid = next(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid() "
        "and b'outbox\\x00work' in open(f'/proc/{p}/cmdline', 'rb').read()); "
        "os.kill(pid, getattr(signal, sys.argv[1]))"
    )

    def probe() -> int:
        strict = {"OUTBOX_TASK_TIMEOUT": "-29"}
        return worker.exec_run(["python3", "/usr/local/bin/healthcheck"], environment=strict).exit_code

    assert worker.exec_run(["python3", "-c", signal_worker, "SIGSTOP"]).exit_code == 0
    try:
        eventually(lambda: probe() == 1, 30, "the healthcheck failing on a frozen loop")
    finally:
        assert worker.exec_run(["python3", "-c", signal_worker, "SIGCONT"]).exit_code == 0
    eventually(lambda: probe() == 0, 30, "the healthcheck passing once the loop turns again")
