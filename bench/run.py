"""`make bench`: every measurement in one run on one machine, written to bench/results/ and docs/benchmarks.md.

Benchmarks are not tests: nothing here fails on a slow figure. Each figure is a median of repeats
with min and max; ratios compare figures measured in this same run.
"""

import datetime as dt
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import docker

from bench import client as client_bench, edge, fleet, images, resilience, swarm, swarm_nodes, throughput
from shared_core import Resilience, __version__

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    engine = docker.from_env().version()["Version"]
    return {
        "cpu": cpu[1] if cpu else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "docker": engine,
        "host_python": platform.python_version(),
    }


def measured(command: list[str]) -> dict:
    """The JSON a bench module prints; its stderr goes up with the error when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return json.loads(done.stdout)


def in_process(name: str) -> dict:
    """Run ``bench.<name>`` on a scratch SQLite file in a process of its own (its own Django setup)."""
    scratch = ROOT / "build" / f"bench-{name}.sqlite3"
    scratch.parent.mkdir(exist_ok=True)
    scratch.unlink(missing_ok=True)
    try:
        return measured([sys.executable, "-m", f"bench.{name}", str(scratch)])
    finally:
        scratch.unlink(missing_ok=True)


def on_both_databases(name: str) -> dict:
    """Run ``bench.<name>`` in process on a scratch SQLite file and on a throwaway PostgreSQL."""
    scratch = ROOT / "build" / f"bench-{name}.sqlite3"
    scratch.parent.mkdir(exist_ok=True)
    scratch.unlink(missing_ok=True)
    module = [sys.executable, "-m", f"bench.{name}"]
    try:
        sqlite = measured([*module, f"sqlite:///{scratch}"])
    finally:
        scratch.unlink(missing_ok=True)
    postgres = measured(["tools/with-postgres", "bash", "-c", f'{" ".join(module)} "$TEST_DATABASE_URL"'])
    return {"sqlite": sqlite, "postgresql": postgres}


def ok(met: bool) -> str:
    return "yes" if met else "**missed**"


def ok_within(s: dict, target: float) -> str:
    """Met by a ratio's median, and whether its 95% confidence interval lies above ``target`` too."""
    if s["median"] < target:
        return ok(False)
    return "yes" if s.get("ci95_low", target) >= target else "median yes, CI reaches below"


def ratio(ours: float, theirs: float, unit: str, digits: int = 0) -> str:
    return f"{ours:.{digits}f} vs {theirs:.{digits}f} {unit} ({ours / theirs:.2f}x)"


def table(r: dict) -> str:
    """The Markdown table: figure, target, and whether this run met it."""
    size, build, start, cl, tp, res, prof = (
        r[k] for k in ("image_size", "build", "startup", "client", "throughput", "resilience", "profile")
    )
    added = size["service_added_mb"]
    cold = build["cold"]
    rates = {k: v["median"] for k, v in cl["calls_per_second"].items()}
    ours, bare = (tp[m] for m in ("everything", "bare"))
    rows = [
        ("Base image size", f"{size['base_mb']:.1f} MB", "≤ 110 MB", ok(size["base_mb"] <= 110)),
        (
            "Added by each service",
            ", ".join(f"{s.split('-')[0]} {v:.3f} MB" for s, v in added.items()),
            "≤ 1 MB",
            ok(max(added.values()) <= 1),
        ),
        (
            "Four services on disk: each with its own Django etc. vs one shared base",
            ratio(size["four_services_standalone_mb"], size["four_services_shared_mb"], "MB"),
            "> 1x",
            ok(size["standalone_vs_shared"] > 1),
        ),
        (
            "Cold build: root fs + base + 4 services",
            f"{cold['total_s']:.0f} s "
            f"({cold['root_filesystem_s']:.0f} + {cold['base_s']:.0f} + {cold['four_services_s']:.0f})",
            "",
            "",
        ),
        (
            "Rebuild after a one-line view change",
            f"{build['rebuild_one_line_s']:.1f} s, {build['rebuild_steps_run']} of {build['rebuild_steps']} steps run "
            f"({build['rebuild_vs_cold']:.1%} of cold)",
            "< 5% of cold",
            ok(build["rebuild_vs_cold"] < 0.05),
        ),
        (
            "Stack from built images to all four healthy",
            f"{start['stack_up_to_all_healthy_s']:.1f} s",
            "≤ 15 s",
            ok(start["stack_up_to_all_healthy_s"] <= 15),
        ),
        ("One container from start to healthy", fmt(start["one_container_to_healthy_s"], "s", 2), "", ""),
        (
            "HTTPClient.get_json vs bare requests.Session",
            ratio(rates["httpclient_get_json"], rates["requests_session"], "calls/s"),
            "≥ 0.9x",
            ok(cl["vs_requests_session"] >= 0.9),
        ),
        (
            "HTTPClient.get_json vs a new connection per call",
            ratio(rates["httpclient_get_json"], rates["new_connection_per_call"], "calls/s"),
            "≥ 1.5x",
            ok(cl["vs_new_connection"] >= 1.5),
        ),
        (
            "ticket-service read under wrk, everything on (metrics, tracing) vs the bare view",
            ratio(ours["rps"]["median"], bare["rps"]["median"], "req/s")
            + f"; per-round ratio {spread(tp['ratios']['everything_vs_bare'])} over {tp['rounds']} rounds; p99 "
            f"{ours['p99_ms']['median']:.0f} vs {bare['p99_ms']['median']:.0f} ms",
            "≥ 0.9x",
            ok_within(tp["ratios"]["everything_vs_bare"], 0.9),
        ),
        (
            "Same read, metrics and tracing on vs off",
            ratio(ours["rps"]["median"], tp["quiet"]["rps"]["median"], "req/s")
            + f"; per-round ratio {spread(tp['ratios']['everything_vs_quiet'])}",
            "≥ 0.95x",
            ok_within(tp["ratios"]["everything_vs_quiet"], 0.95),
        ),
        (
            "Same read in process, instructions per request (callgrind), everything on vs the bare view",
            instructions(r.get("instructions"), "bare"),
            "≥ 0.9x",
            ok(r.get("instructions", {}).get("everything_vs_bare", 0) >= 0.9),
        ),
        (
            "Same, metrics and tracing on vs off",
            instructions(r.get("instructions"), "quiet"),
            "≥ 0.95x",
            ok(r.get("instructions", {}).get("everything_vs_quiet", 0) >= 0.95),
        ),
        (
            "Same read in process under cProfile's loop: µs per request, everything vs bare",
            f"{prof['us_per_request']['everything']:.0f} vs {prof['us_per_request']['bare']:.0f} µs "
            f"({prof['in_process_ratio']:.2f}x); costliest shared_core function: "
            f"{next(iter(prof['top_shared_core_own_us']))}",
            "reported",
            "",
        ),
    ]
    for vendor, d in r["soft_delete"].items():
        for query in ("lookup", "newest_page"):
            figures = d[query]
            rows.append(
                (
                    f"1M rows, 10% deleted, {vendor}: {query.replace('_', ' ')}",
                    ratio(figures["basemodel_us"]["median"], figures["plain_us"]["median"], "µs"),
                    "≤ 1.2x",
                    ok(figures["ratio"] <= 1.2),
                )
            )
    for vendor, d in r.get("outbox", {}).items():
        create, out, call = d["create"], d["create"]["outbox"], d["create"]["call"]
        latency = d["commit_to_delivered"]
        rows += [
            (
                f"{vendor}: create a row with its notification enqueued vs the synchronous call it replaced",
                ratio(out["rps"]["median"], call["rps"]["median"], "req/s")
                + f"; p50 {out['p50_ms']:.1f} vs {call['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} vs "
                f"{call['p99_ms']:.1f} ms; per-round ratio min {create['outbox_vs_call_rps_rounds']['min']:.2f}",
                "≥ 1.0x",
                ok(create["outbox_vs_call_rps"] >= 1.0),
            ),
            (
                f"{vendor}: outbox delivery by one worker, local upstream",
                f"{d['delivery']['tasks_per_s']:.0f} tasks/s ({d['delivery']['tasks']} tasks)",
                "reported",
                "",
            ),
            (
                f"{vendor}: commit to delivered, idle worker, default settings",
                f"p50 {latency['p50_s']:.2f} s, p99 {latency['p99_s']:.2f} s ({latency['samples']} tasks)",
                "p50 ≤ 1 s",
                ok(latency["p50_s"] <= 1),
            ),
        ]
    for vendor, d in r["soft_delete"].items():
        k = d["keyset"]
        rows.append(
            (
                f"1M rows, {vendor}: API page {k['deep_rows']:,} rows deep vs the first (keyset); OFFSET for contrast",
                ratio(k["deep_us"]["median"], k["first_us"]["median"], "µs", 0)
                + f"; OFFSET {k['offset_deep_us']['median'] / 1000:.0f} ms",
                "≤ 1.2x",
                ok(k["ratio"] <= 1.2),
            )
        )
    ed = r["edge"]
    rows += [
        (
            "ticket-service read through the edge proxy (its own CPU) vs direct to gunicorn",
            f"{ed['proxy']['rps']['median']:.0f} vs {ed['direct']['rps']['median']:.0f} req/s; "
            f"per-round ratio {spread(ed['ratios']['proxy_vs_direct_rps'])} over {ed['rounds']} rounds",
            "≥ 0.95x",
            ok_within(ed["ratios"]["proxy_vs_direct_rps"], 0.95),
        ),
        (
            "The same, the proxy on the service's CPU (no core of its own)",
            f"{ed['proxy_shared']['rps']['median']:.0f} vs {ed['direct']['rps']['median']:.0f} req/s; "
            f"per-round ratio {spread(ed['ratios']['shared_vs_direct_rps'])}",
            "reported",
            "",
        ),
        (
            "The same, the proxy on its own CPU without upstream keep-alive (`PROXY_UPSTREAM_KEEPALIVE=0`)",
            f"{ed['per_request']['rps']['median']:.0f} vs {ed['direct']['rps']['median']:.0f} req/s; "
            f"per-round ratio {spread(ed['ratios']['per_request_vs_direct_rps'])}; keep-alive's gain "
            f"{spread(ed['ratios']['keepalive_vs_per_request_rps'])}",
            "reported",
            "",
        ),
    ]
    if "haproxy" in ed:
        rows.append(
            (
                "The same through HAProxy alone (bench/haproxy/haproxy.cfg) on the proxy's CPU: no body buffering",
                f"{ed['haproxy']['rps']['median']:.0f} vs {ed['direct']['rps']['median']:.0f} req/s; "
                f"per-round ratio {spread(ed['ratios']['haproxy_vs_direct_rps'])}; the edge vs HAProxy alone "
                f"{spread(ed['ratios']['proxy_vs_haproxy_rps'])}",
                "reported",
                "",
            )
        )
    rows += [
        (
            f"p99 through the proxy with {ed['slow_connections']} slow connections held vs idle",
            f"{ed['slow']['p99_ms']['median']:.0f} vs {ed['proxy']['p99_ms']['median']:.0f} ms; per-round ratio "
            f"{ed['slow_vs_idle_p99']:.2f}x (min {ed['slow_vs_idle_p99_rounds']['min']:.2f}, "
            f"max {ed['slow_vs_idle_p99_rounds']['max']:.2f})",
            "≤ 2x",
            ok(ed["slow_vs_idle_p99"] <= 2),
        ),
        (
            "Edge proxy image; what nginx and HAProxy add over the project's Debian root",
            f"{ed['image']['proxy_image_mb']:.1f} MB; {ed['image']['added_over_root_mb']:.1f} MB",
            "< 10 MB added",
            ok(ed["image"]["added_over_root_mb"] < 10),
        ),
    ]
    refused, paused = res["connection_refused_s"], res["paused_s"]
    rows += [
        (
            "Detect a refused upstream (defaults)",
            f"{refused['median']:.2f} s",
            f"≤ {res['connection_refused_bound_s']:.2f} s of backoff + 0.5",
            ok(refused["max"] <= res["connection_refused_bound_s"] + 0.5),
        ),
        (
            "Detect a paused upstream (defaults)",
            f"{paused['median']:.3f} s",
            f"≤ {res['paused_bound_s']:.0f} s deadline + 0.5",
            ok(paused["max"] <= res["paused_bound_s"] + 0.5),
        ),
    ]
    if "fleet" in r:
        fl = r["fleet"]
        on, off = fl["hung"]["on"], fl["hung"]["off"]
        recovered_within = Resilience().open_seconds + 1
        rows += [
            (
                "Creates calling a healthy neighbour, guards (bulkhead, breaker, retry budget) on vs off",
                spread(fl["healthy_on_vs_off"]),
                "≥ 0.97x",
                ok_within(fl["healthy_on_vs_off"], 0.97),
            ),
            (
                "Neighbour hung, 12 clients creating: 4 clients' unrelated reads vs theirs alone (guards off)",
                f"{on['reads_vs_baseline']:.2f}x, p99 {on['read_p99_ms']:.0f} ms, {on['failed_reads']} failed "
                f"({off['reads_vs_baseline']:.2f}x, p99 {off['read_p99_ms']:.0f} ms, {off['failed_reads']} failed)",
                "≥ 0.8x, p99 ≤ 250 ms",
                ok(on["reads_vs_baseline"] >= 0.8 and on["read_p99_ms"] <= 250),
            ),
            (
                "Neighbour hung: p99 of the creates an open circuit refused (creates that still waited: probes, "
                "or a worker whose circuit was not open yet); first success after it is back",
                f"{fmt_or_none(on['circuit_refused_p99_ms'], 'ms')} (opened "
                f"{fmt_or_none(on['circuit_opened_after_s'], 's', 1)} in; {on['slow_after_open']} of "
                f"{on['after_open']} waited); {on['first_success_after_s']:.2f} s",
                "≤ 100 ms; ≤ open wait + 1 s",
                ok((on["circuit_refused_p99_ms"] or 1e9) <= 100 and on["first_success_after_s"] <= recovered_within),
            ),
            (
                "Neighbour refusing connections: requests that reach it per create, guards on (off)",
                f"{fl['outage_requests_per_call']['on']:.2f} ({fl['outage_requests_per_call']['off']:.2f})",
                "≤ 1.2",
                ok(fl["outage_requests_per_call"]["on"] <= 1.2),
            ),
        ]
    if "swarm" in r:
        sw = r["swarm"]
        rollout, kills = sw["during_rollout"], sw["during_kills"]
        rows += [
            (
                "Swarm: ticket-service read through the proxy, 2 replicas vs 1 (wrk and all on 2 cores)",
                ratio(sw["rps_2_replicas"]["median"], sw["rps_1_replica"]["median"], "req/s", 0)
                + f"; per-round ratio min {sw['two_vs_one']['min']:.2f}, max {sw['two_vs_one']['max']:.2f}",
                "reported",
                "",
            ),
            ("Swarm: full rollout of the four services and the worker", f"{sw['rollout_s']:.0f} s", "reported", ""),
            (
                "Swarm: a killed ticket-service replica replaced and healthy",
                fmt(sw["replace_killed_replica_s"], "s", 1),
                "reported",
                "",
            ),
            (
                "Swarm: reads through the proxy answered with an error, and cut (wrk: no client retry), during the "
                "rollout; during the kills (slowest read)",
                f"{failed(rollout)} and {cut(rollout)} of {rollout['requests']} ({rollout['max_latency_s']:.1f} s); "
                f"{failed(kills)} and {cut(kills)} of {kills['requests']} ({kills['max_latency_s']:.1f} s)",
                "0 (a SIGKILL may cut a read in flight: only a client retry saves it)",
                ok(failed(rollout) + cut(rollout) + failed(kills) == 0),
            ),
        ]
    if "swarm_nodes" in r:
        sn = r["swarm_nodes"]
        rollout, node, leader = sn["during_rollout"], sn["killed_node"], sn["killed_leader"]
        rows += [
            (
                "Swarm on 3 nodes: nodes up; the stack deployed; a rollout of every service onto a new base "
                "digest under load (client calls failed)",
                f"{sn['nodes_up_s']:.0f} s; {sn['deploy_s']:.0f} s; {sn['rollout_s']:.0f} s "
                f"({rollout['failed']} of {rollout['calls']})",
                "0 failed",
                ok(rollout["failed"] == 0),
            ),
            (
                "Swarm on 3 nodes: a node killed under load: seen down; every service at full replicas on the "
                "other two (client calls failed)",
                f"{node['seen_down_s']:.0f} s; {node['full_replicas_s']:.0f} s ({node['failed']} of {node['calls']})",
                "≤ 2% failed",
                ok(node["failed"] <= 0.02 * node["calls"]),
            ),
            (
                "Swarm on 3 nodes: the leader killed under load: a new leader; full replicas (client calls failed)",
                f"{leader['new_leader_s']:.0f} s; {leader['full_replicas_s']:.0f} s "
                f"({leader['failed']} of {leader['calls']})",
                "≤ 2% failed",
                ok(leader["failed"] <= 0.02 * leader["calls"]),
            ),
        ]
    m = r["machine"]
    lines = [
        f"Latest run: {r['date']}, shared_core {r['version']}, {m['cores']} cores of {m['cpu']}, "
        f"{m['memory_gib']} GiB, "
        f"Docker {m['docker']}; medians of repeats (min and max in `bench/results/`). "
        f"`make bench` took {r['duration_s'] / 60:.1f} min"
        + (f"; {', '.join(r['rerun'])} rerun on its own after." if r.get("rerun") else "."),
        "",
        "| measure | this run | target | met |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
    ]
    for vendor, d in r["soft_delete"].items():
        lines.append(f"\nQuery plan of the newest live page on {vendor}: `{' / '.join(d['newest_page_plan'])[:300]}`")
    return "\n".join(lines) + "\n"


def failed(load: dict) -> int:
    """Reads the proxy answered with something other than a 200."""
    return sum(load["not_200"].values())


def cut(load: dict) -> int:
    """Reads wrk saw fail without an answer (socket errors: a connection cut, or no answer in time)."""
    return sum(load["socket_errors"].values())


def spread(s: dict) -> str:
    """A per-round ratio's median, with its 95% confidence interval when known, and its spread over the rounds."""
    known = f" (95% CI {s['ci95_low']:.2f}-{s['ci95_high']:.2f})" if "ci95_low" in s else ""
    return f"{s['median']:.2f}x{known}, IQR {s['p25']:.2f}-{s['p75']:.2f}, min {s['min']:.2f}, max {s['max']:.2f}"


def instructions(counted: dict | None, baseline: str) -> str:
    """Instructions per request, ours vs ``baseline``, as a throughput ratio, and how far two passes differed."""
    if not counted:
        return "not run"
    per_request = counted["instructions_per_request"]
    ours, theirs = (statistics.median(per_request[name]) for name in ("everything", baseline))
    return (
        f"{ours / 1e6:.3f} vs {theirs / 1e6:.3f} M instructions ({counted[f'everything_vs_{baseline}']:.3f}x); "
        f"passes differ by {counted['pass_to_pass'] * 100:.3f}% at most"
    )


def fmt_or_none(value: float | None, unit: str, digits: int = 0) -> str:
    return "not seen" if value is None else f"{value:.{digits}f} {unit}"


def fmt(s: dict, unit: str, digits: int) -> str:
    return f"{s['median']:.{digits}f} {unit} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f})"


def main() -> None:
    logging.disable(logging.WARNING)  # the client's retry warnings are expected here
    started = time.monotonic()
    base = os.environ["SHARED_CORE_BASE_IMAGE"]
    root = os.environ.get("ROOT_IMAGE", "shared-core/root:trixie")
    proxy = os.environ["SHARED_CORE_PROXY_IMAGE"]
    haproxy = os.environ.get("HAPROXY_ROOT_IMAGE", "shared-core/root-haproxy:trixie")
    compose = os.environ.get("COMPOSE", "docker-compose")
    engine = docker.from_env()
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    results: dict = {"date": today, "version": __version__, "machine": machine()}
    # BENCH_ONLY=soft_delete,edge reruns those steps into today's results and keeps the others' figures.
    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    if only:
        results = {**json.loads((RESULTS / f"{today}.json").read_text()), "rerun": sorted(only)}
    steps = [
        ("image_size", lambda: images.sizes(engine, root, base, __version__)),
        ("startup", lambda: images.startup(engine, base, __version__, compose)),
        ("client", client_bench.run),
        ("throughput", lambda: throughput.run(f"shared-core/ticket-service:{__version__}")),
        ("profile", lambda: in_process("profiling")),
        ("instructions", lambda: in_process("instructions")),
        ("edge", lambda: edge.run(f"shared-core/ticket-service:{__version__}", proxy, root, haproxy)),
        ("soft_delete", lambda: on_both_databases("softdelete")),
        ("outbox", lambda: on_both_databases("outbox")),
        ("resilience", resilience.run),
        ("fleet", lambda: fleet.run(f"shared-core/ticket-service:{__version__}")),
        ("swarm", lambda: swarm.run(__version__)),
        ("swarm_nodes", lambda: swarm_nodes.run(__version__)),
        ("build", lambda: images.builds(__version__)),
    ]
    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / f"{results['date']}.json"
    for name, step in steps:
        if only and name not in only:
            continue
        t = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        results[name] = step()
        print(f"bench: {name} done in {time.monotonic() - t:.0f} s", flush=True)
        # After every step: a step that fails later keeps these figures, and BENCH_ONLY can rerun the rest.
        saved.write_text(json.dumps(results, indent=1, default=str) + "\n")
    if not only:
        results["duration_s"] = time.monotonic() - started
    saved.write_text(json.dumps(results, indent=1, default=str) + "\n")
    markdown = table(results)
    (RESULTS / f"{results['date']}.md").write_text(markdown)
    text = PAGE.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        PAGE.write_text(head + START + "\n" + markdown + END + rest.split(END, 1)[1])
    print(markdown)


if __name__ == "__main__":
    main()
