"""The API contracts against the live stack: schemathesis fuzzes each service from its own OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import SERVICES
from tests.integration.conftest import ROOT

#: Examples per operation and phase: enough to find a 500, bounded so the four runs fit the CI budget.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
RESULTS = ROOT / "build" / "test-results"


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_finds_no_contract_violation(stack, service, tmp_path: Path):
    """Every default schemathesis check passes for every operation of the service's generated document."""
    document = stack.call("GET", service, "/api/openapi.json")
    assert document.status_code == 200 and document.headers["Content-Type"] == "application/json"
    schema = tmp_path / f"{service}.json"
    schema.write_text(json.dumps(document.json()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            str(schema),
            "--url",
            stack.url(service),
            "--header",
            f"Authorization: Bearer {stack.token}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            os.environ.get("SCHEMATHESIS_SEED", "20261127"),
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-junit-path",
            str(RESULTS / f"schemathesis-{service}-{os.environ.get('DB') or 'sqlite'}.xml"),
            "--output-sanitize",
            "true",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]
