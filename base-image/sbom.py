"""Write the image's software bill of materials (CycloneDX 1.5 JSON) to stdout, from what is installed.

Run inside the image build, after the last package change: Debian packages from dpkg's database and
Python distributions from the interpreter's path (the venv and /opt/shared). Deterministic: components
sorted, the serial number derived from the content, the timestamp the build's CREATED argument.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

DPKG_STATUS = Path("/var/lib/dpkg/status")


def debian_packages() -> list[dict[str, str]]:
    packages = []
    for stanza in DPKG_STATUS.read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Status", "").endswith(" installed"):
            name, version, arch = fields["Package"], fields["Version"], fields.get("Architecture", "all")
            purl = f"pkg:deb/debian/{name}@{quote(version, safe='')}?arch={arch}&distro=trixie"
            packages.append({"type": "library", "name": name, "version": version, "purl": purl, "bom-ref": purl})
    return packages


def python_distributions() -> list[dict[str, str]]:
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        key = name.lower().replace("_", "-").replace(".", "-")
        purl = f"pkg:pypi/{key}@{dist.version}"
        found[key] = {"type": "library", "name": name, "version": dist.version, "purl": purl, "bom-ref": purl}
    return list(found.values())


def main() -> None:
    image, version, created = sys.argv[1], sys.argv[2], sys.argv[3]
    components = sorted(debian_packages() + python_distributions(), key=lambda c: c["purl"])
    body = json.dumps(components, sort_keys=True)
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{image}:{version}:{body}')}",
        "version": 1,
        "metadata": {
            "timestamp": created,
            "component": {"type": "container", "name": image, "version": version, "bom-ref": f"{image}:{version}"},
            "properties": [{"name": "python", "value": platform.python_version()}],
        },
        "components": components,
    }
    json.dump(bom, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
