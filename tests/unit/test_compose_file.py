"""The compose stack's files agree with each other and with the platform's Settings.

Static checks only (no Docker engine): docker-compose.yml parsed with PyYAML, .env.example
parsed as KEY=VALUE lines, SMP_* names walked through the pydantic Settings model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from smp_platform.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

EXPECTED_SERVICES = {"postgres", "redis", "mlflow", "prefect-server", "prefect-worker", "api"}
NAMED_VOLUMES = {"pgdata", "mlartifacts", "smpdata"}
DATABASES = {"mlflow", "feast", "prefect"}

# ${VAR}, ${VAR:-default}, ${VAR:?message}; "$$" is compose's escape for a literal "$".
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"://[^:/@\s]+:([^@\s]+)@")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def env_example_lines(include_commented: bool = False) -> dict[str, str]:
    """KEY=VALUE pairs of .env.example (commented-out examples too, if asked)."""
    values: dict[str, str] = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if include_commented and re.match(r"#\s*[A-Z][A-Z0-9_]*=", line):
            line = line.lstrip("#").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def strings_in(node: Any) -> list[str]:
    """Every string value of the parsed file (comments are not interpolated by compose)."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return [node] if isinstance(node, str) else []


def interpolate(value: str, variables: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: variables[m.group(1)], value).replace("$$", "$")


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def settings_field(path: list[str]) -> bool:
    """Whether SMP_A__B names settings.a.b (walking nested pydantic models)."""
    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        if part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        if i < len(path) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_every_service_the_stack_needs_is_defined_with_a_healthcheck(services) -> None:
    assert set(services) >= EXPECTED_SERVICES
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"service {name} has no healthcheck"


def test_dependencies_wait_for_healthy_services(services) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on must use the long form"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on undefined service {dependency}"
            assert spec.get("condition") == "service_healthy", (
                f"{name} -> {dependency} must wait for service_healthy"
            )
            assert services[dependency].get("healthcheck"), dependency


def test_the_platform_services_start_after_what_they_use(services) -> None:
    assert set(services["api"]["depends_on"]) >= {"postgres", "redis", "mlflow"}
    assert set(services["prefect-worker"]["depends_on"]) >= {
        "postgres",
        "redis",
        "mlflow",
        "prefect-server",
    }
    assert set(services["mlflow"]["depends_on"]) == {"postgres"}
    assert set(services["prefect-server"]["depends_on"]) == {"postgres"}


def test_volumes_are_named_and_declared(compose, services) -> None:
    declared = set(compose.get("volumes") or {})
    assert declared >= NAMED_VOLUMES
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                # bind mounts only of files in this repository (the init script)
                assert (ROOT / source).resolve().is_file(), f"{name}: bind mount {source}"
                continue
            assert source in declared, f"{name} uses undeclared volume {source}"
            used.add(source)
    assert used >= NAMED_VOLUMES


def test_no_literal_passwords(compose_text, services) -> None:
    for match in URL_CREDENTIALS.finditer(compose_text):
        assert match.group(1).startswith("${"), f"literal credentials in a URL: {match.group(0)}"
    for name, service in services.items():
        for key, value in service_environment(service).items():
            if SECRET_KEY.search(key):
                assert re.fullmatch(r"\$\{[^}]+\}", value), f"{name}: {key} is a literal value"
    assert "${POSTGRES_PASSWORD:?" in compose_text  # compose refuses to start without it


def test_env_example_defines_every_variable_the_compose_file_uses(compose) -> None:
    used = {name for value in strings_in(compose) for name in VARIABLE.findall(value)}
    assert "POSTGRES_PASSWORD" in used
    missing = used - set(env_example_lines())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_holds_placeholders_not_secrets() -> None:
    values = env_example_lines()
    for key, value in values.items():
        if SECRET_KEY.search(key):
            assert "change-me" in value, f"{key} in .env.example should be a placeholder"


def test_smp_variables_are_fields_of_settings(services) -> None:
    names = {k for k in env_example_lines(include_commented=True) if k.startswith("SMP_")}
    for service in services.values():
        names |= {k for k in service_environment(service) if k.startswith("SMP_")}
    assert {
        "SMP_PROFILE",
        "SMP_COMPOSE__REDIS_URL",
        "SMP_COMPOSE__POSTGRES_DSN",
        "SMP_COMPOSE__MLFLOW_TRACKING_URI",
        "SMP_COMPOSE__PREFECT_API_URL",
    } <= names
    unknown = sorted(n for n in names if not settings_field(n[4:].lower().split("__")))
    assert not unknown, f"not fields of smp_platform.core.config.Settings: {unknown}"


def test_settings_from_the_stack_environment_are_the_compose_profile(
    services, tmp_path, monkeypatch
) -> None:
    env = env_example_lines()
    environment = {**env, **service_environment(services["api"])}
    monkeypatch.chdir(tmp_path)  # no smp.toml from the working tree
    for key in list(__import__("os").environ):
        if key.startswith("SMP_"):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, interpolate(value, env))
    settings = Settings()
    assert settings.profile == "compose"
    assert settings.compose.redis_url.get_secret_value() == "redis://redis:6379/0"
    assert settings.compose.mlflow_tracking_uri.get_secret_value() == "http://mlflow:5000"
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.compose.prefect_api_url == environment["PREFECT_API_URL"]
    assert settings.compose.postgres_dsn.get_secret_value().endswith("@postgres:5432/feast")
    assert settings.root == Path("/data")


def test_the_init_script_creates_every_database_the_services_use(compose_text) -> None:
    script = (ROOT / "docker" / "postgres-init.sql").read_text().lower()
    created = set(re.findall(r"create database (\w+)", script))
    assert created == DATABASES
    used = set(re.findall(r"@postgres:5432/(\w+)", compose_text))
    assert used == DATABASES


def test_the_api_reads_feast_with_a_read_only_role(services) -> None:
    api_dsn = service_environment(services["api"])["SMP_COMPOSE__POSTGRES_DSN"]
    worker_dsn = service_environment(services["prefect-worker"])["SMP_COMPOSE__POSTGRES_DSN"]
    assert api_dsn.startswith("postgresql+psycopg://feast_reader:${FEAST_READER_DB_PASSWORD")
    assert worker_dsn.startswith("postgresql+psycopg://feast:${FEAST_DB_PASSWORD")
    script = (ROOT / "docker" / "postgres-init.sql").read_text()
    grants = re.findall(r"^(?:GRANT|ALTER DEFAULT PRIVILEGES).*feast_reader;$", script, re.M)
    assert grants and all("SELECT" in g or "CONNECT" in g or "USAGE" in g for g in grants)
    # the privileges granted (between GRANT and ON) are never a write, nor ALL of them
    granted = [re.search(r"GRANT (.+?) ON ", g).group(1) for g in grants]  # type: ignore[union-attr]
    writes = re.compile(r"\b(INSERT|UPDATE|DELETE|TRUNCATE|CREATE|ALL)\b")
    assert granted and not [p for p in granted if writes.search(p)], granted
    assert "GRANT SELECT ON TABLES TO feast_reader" in script


def test_platform_services_run_the_root_image_as_the_brief_says(services) -> None:
    for name in ("prefect-worker", "api"):
        build = services[name]["build"]
        assert build["context"] == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
        # .env holds every service's password: no container reads it whole
        assert "env_file" not in services[name], name
        secrets = {k for k in service_environment(services[name]) if SECRET_KEY.search(k)}
        assert not secrets, f"{name} is given {sorted(secrets)}"
    assert "smp deploy" in " ".join(services["prefect-worker"]["command"])
    assert "--pool smp-pool" in " ".join(services["prefect-worker"]["command"])
    assert services["api"]["command"][:2] == ["smp", "serve"]
    assert services["mlflow"]["build"]["context"] == "mlflow"
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3")


def test_the_platform_images_run_as_a_non_root_user() -> None:
    stages = re.split(r"^FROM\s", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    targets = {"serve", "worker"}
    for stage in stages[1:]:
        name = stage.split("\n", 1)[0].split()[-1]
        if name in targets:
            users = re.findall(r"^USER\s+(\S+)", stage, re.MULTILINE)
            assert users and users[-1] not in {"root", "0"}, name
            targets.discard(name)
    assert not targets, f"Dockerfile lacks the targets {targets}"


def test_the_api_image_is_the_lean_serve_target(services) -> None:
    assert services["api"]["build"]["target"] == "serve"
    assert services["prefect-worker"]["build"]["target"] == "worker"
    assert services["api"]["image"] != services["prefect-worker"]["image"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    serve_stage = dockerfile.split("AS serve", 1)[1].split("\nFROM ", 1)[0]
    assert "requirements.py serve >" in serve_stage and "torch" not in serve_stage
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "requirements.py"), "serve"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    for heavy in ("torch", "transformers", "open_clip", "sentence-transformers", "prefect"):
        assert heavy not in listed, f"the serve image would install {heavy}"
    assert "fastapi" in listed and "catboost" in listed and "feast" in listed


def test_published_ports_listen_on_loopback_unless_overridden(services) -> None:
    published = 0
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert isinstance(port, str), f"{name}: use the short form HOST:HOST_PORT:PORT"
            host = port.rsplit(":", 2)[0]
            assert host == "${PUBLISH_ADDRESS:-127.0.0.1}", f"{name} publishes {port}"
            published += 1
    assert published >= 3  # api, MLflow UI, Prefect UI
    assert env_example_lines()["PUBLISH_ADDRESS"] == "127.0.0.1"


def test_each_service_logs_in_with_its_own_least_privilege_role(compose_text) -> None:
    logins = set(re.findall(r"://(\w+):\$\{(\w+)[^}]*\}@postgres:5432/(\w+)", compose_text))
    # each database's owner, and the api's read-only role for Feast's registry
    readers = {("feast_reader", "feast")}
    assert {(user, db) for user, _, db in logins} == {(db, db) for db in DATABASES} | readers
    assert all(var == f"{user.upper()}_DB_PASSWORD" for user, var, _ in logins)
    script = (ROOT / "docker" / "postgres-init.sql").read_text()
    for role in [*DATABASES, "feast_reader"]:
        create = re.search(rf"CREATE ROLE {role} (.*);", script)
        assert create, role
        assert "NOSUPERUSER" in create.group(1) and "NOCREATEROLE" in create.group(1)
        if role in DATABASES:
            assert f"CREATE DATABASE {role} OWNER {role};" in script
            assert f"REVOKE ALL ON DATABASE {role} FROM PUBLIC;" in script
    assert "PASSWORD '" not in script  # passwords come from the environment (\getenv)


def test_mlflow_dir_is_not_a_package_that_could_shadow_mlflow() -> None:
    assert (ROOT / "mlflow" / "Dockerfile").is_file()
    assert not (ROOT / "mlflow" / "__init__.py").exists()
    assert not list((ROOT / "mlflow").rglob("*.py"))
