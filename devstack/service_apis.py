"""Each service's HTTP API as the docs site shows it: its OpenAPI document, read from the service's own code at
build time, and a page rendered from it (mkdocs.yml names this module's ``on_files`` as a hook).

The document is the one the running service serves at ``/api/openapi.json``: ``service_api`` built in a
fresh interpreter with the service's settings and throwaway secrets, so nothing needs to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from devstack import ROOT, SERVICES

__all__ = ["document", "on_files", "render"]

#: Run in the service's directory: its ``api`` (from its URLconf) as an OpenAPI document on stdout.
_DUMP = """
import json, django
django.setup()
from importlib import import_module
from django.conf import settings
api = import_module(settings.ROOT_URLCONF).api
print(json.dumps(api.get_openapi_schema(), default=str))
"""


def document(service: str) -> dict[str, Any]:
    """``service``'s OpenAPI document, as it serves it."""
    package = service.replace("-", "_")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")},
        "DJANGO_SETTINGS_MODULE": f"{package}.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "services" / service), str(ROOT)]),
        "DJANGO_SECRET_KEY": "docs-build-only-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
        "SERVICE_AUTH_TOKEN": "docs-build-only",
        "DATABASE_URL": "sqlite://:memory:",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, on this repository's own code
        [sys.executable, "-c", _DUMP],
        cwd=ROOT / "services" / service,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{service}'s OpenAPI document could not be made: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _type(schema: dict[str, Any]) -> str:
    """A field's type in a few words: ``string (uuid)``, ``UserOut``, ``list of string``, ``integer or null``."""
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in schema:
        return " or ".join(_type(option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _rules(schema: dict[str, Any]) -> str:
    """The constraints a value must meet, as the document states them."""
    options = [schema, *schema.get("anyOf", [])]
    words = []
    for option in options:
        for key in ("minLength", "maxLength", "minimum", "maximum", "pattern", "enum", "default"):
            if key in option:
                words.append(f"{key} `{json.dumps(option[key])}`")
    return ", ".join(dict.fromkeys(words))


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | rules |", "|---|---|---|---|"]
    for name, field in schema.get("properties", {}).items():
        rule = _rules(field).replace("|", "\\|")
        rows.append(f"| `{name}` | {_type(field)} | {'yes' if name in required else 'no'} | {rule} |")
    return rows


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    lines = [f'<a id="{operation["operationId"]}"></a>', "", f"### `{method.upper()} {path}`", ""]
    if operation.get("description"):
        lines += [operation["description"], ""]
    if not operation.get("security", True):
        lines += ["No token needed.", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | rules |", "|---|---|---|---|---|"]
        for p in parameters:
            rule = _rules(p.get("schema", {})).replace("|", "\\|")
            required = "yes" if p.get("required") else "no"
            lines.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | {required} | {rule} |")
        lines.append("")
    for media, body in operation.get("requestBody", {}).get("content", {}).items():
        lines += [f"Request body, `{media}`: {_type(body.get('schema', {}))}", ""]
    answers, errors = [], []
    for status, response in operation.get("responses", {}).items():
        schemas = [_type(c.get("schema", {})) for c in response.get("content", {}).values()]
        text = f"`{status}` {response.get('description', '')}" + (f": {', '.join(schemas)}" if schemas else "")
        (errors if schemas == ["`ErrorOut`"] else answers).append(text)
    lines += [f"Answers: {'; '.join(answers)}.", ""]
    if errors:
        lines += [f"Errors, each the `ErrorOut` envelope: {', '.join(e.split()[0] for e in errors)}.", ""]
    return lines


def render(service: str, spec: dict[str, Any]) -> str:
    """``service``'s API page: every operation (anchored by its operationId) and every schema."""
    lines = [
        f"# {service}",
        "",
        f"Rendered from {service}'s OpenAPI document when this site was built; "
        f"[download it]({service}.openapi.json), or read it from the running service at `/api/openapi.json`. "
        "Every operation needs the service token (`Authorization: Bearer <token>`) unless it says otherwise, "
        "and every error is the JSON envelope `ErrorOut` ([The API contract](../concepts/api-contract.md)).",
        "",
        "## Operations",
        "",
    ]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            lines += _operation(method, path, operation)
    lines += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"### `{name}`", ""]
        if schema.get("description"):
            lines += [schema["description"], ""]
        lines += [*_fields(schema), ""]
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add ``services/<service>.md`` and ``services/<service>.openapi.json`` for each service."""
    from mkdocs.structure.files import File

    for service in SERVICES:
        spec = document(service)
        files.append(File.generated(config, f"services/{service}.md", content=render(service, spec)))
        body = json.dumps(spec, indent=2, sort_keys=True)
        files.append(File.generated(config, f"services/{service}.openapi.json", content=body))
    return files
