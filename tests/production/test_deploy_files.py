"""deploy/ agrees with the code: the production environment names every setting the gateway and
Rasa read, the units run commands that exist, the alert rules and the operator's guide name
metrics the gateway exports, and the proxy configurations route the webhook paths the app serves."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from bot.cli import _parser
from bot.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
# Settings with defaults an operator has no reason to change (the platforms' API bases, the
# content directory) and PORT, which each hotline-gateway@PORT unit sets.
OPTIONAL = {"PORT", "CONTENT_DIR", "MESSENGER_GRAPH_URL", "ZALO_API_URL", "ZALO_OAUTH_URL"}


def env_names(path: Path) -> set[str]:
    """Variables set (or shown commented out) in an env file."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", path.read_text(encoding="utf-8"), re.MULTILINE))


def gateway_settings_read() -> set[str]:
    source = (PROJECT_ROOT / "bot" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'get\("([A-Z][A-Z0-9_]+)"\)', source))


def exported_metrics() -> set[str]:
    names: set[str] = set()
    for path in list((PROJECT_ROOT / "bot").rglob("*.py")) + list((PROJECT_ROOT / "channels").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        names |= set(re.findall(r'metrics\.(?:inc|observe|gauge)\(\s*"([a-z_]+)"', source))
        names |= set(re.findall(r"""gauges\[f?["']([a-z_]+)""", source))
    return names


def test_the_production_environment_names_every_setting():
    documented = env_names(DEPLOY / "hotline.env.example")
    missing = gateway_settings_read() - documented - OPTIONAL
    assert not missing, f"add to deploy/hotline.env.example: {sorted(missing)}"
    endpoints = "\n".join(line.split("#", 1)[0] for line in (DEPLOY / "endpoints.production.yml").read_text().splitlines())
    rasa_vars = set(re.findall(r"\$\{([A-Z0-9_]+)\}", endpoints))
    assert rasa_vars and rasa_vars <= documented, sorted(rasa_vars - documented)
    # and the example is a valid configuration (placeholders aside)
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (DEPLOY / "hotline.env.example").read_text(), re.MULTILINE))
    settings = Settings.from_env(values)
    assert settings.auto_migrate is False and settings.redis_url and settings.trusted_proxies == ("127.0.0.1/32",)
    assert settings.log_format == "json" and settings.retention_days >= 1 and settings.tracker_database_url
    assert settings.rasa_model_urls == ("http://127.0.0.1:5005", "http://127.0.0.1:5006")  # both replicas


def unit_commands() -> list[tuple[str, list[str]]]:
    out = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8").replace("\\\n", " ")
        for line in re.findall(r"^ExecStart=(.+)$", text, re.MULTILINE):
            out.append((unit.name, shlex.split(line)))
    return out


@pytest.mark.parametrize("unit, argv", unit_commands(), ids=[u for u, _ in unit_commands()])
def test_every_unit_runs_something_that_exists(unit: str, argv: list[str]):
    program = argv[0]
    assert program.startswith("/opt/hotline/"), program
    if argv[1:3] == ["-m", "bot"]:
        _parser().parse_args(argv[3:])  # exits (SystemExit) on an unknown command
    elif program.endswith("/rasa"):
        assert argv[1] == "run"
        if "--endpoints" in argv:
            assert (PROJECT_ROOT / argv[argv.index("--endpoints") + 1]).is_file()
    else:
        script = PROJECT_ROOT / program.removeprefix("/opt/hotline/")
        assert script.is_file() and script.stat().st_mode & 0o111, f"{script} is not an executable file"


def test_alerts_and_the_guide_name_metrics_the_gateway_exports():
    exported = exported_metrics()
    assert {"webhook_ack_seconds", "send_failures_total", "queue_oldest_wait_seconds", "inbox_pending"} <= exported
    rules = yaml.safe_load((DEPLOY / "prometheus" / "hotline-alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    guide = (DEPLOY / "README.md").read_text(encoding="utf-8")
    metrics_part = guide[guide.index("**Metrics**"):guide.index("## Security")]
    for where, text in (("hotline-alerts.yml", exprs), ("README.md", metrics_part)):
        used = set(re.findall(r"hotline_([a-z_]+)", text))
        used = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        # the guide writes some families as hotline_fanout_{published,received,errors}_total
        used = {n for n in used if not n.endswith("_")}
        unknown = used - exported - {"gateway"}  # (job="hotline-gateway")
        assert not unknown, f"{where} names metrics the gateway does not export: {sorted(unknown)}"
    yaml.safe_load((DEPLOY / "prometheus" / "hotline.yml").read_text())


def test_the_proxies_route_the_app_s_public_paths():
    from bot.app import create_app

    app = create_app(Settings(database_url="sqlite:///:memory:"))
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/webhooks/messenger", "/webhooks/zalo", "/api/live", "/healthz", "/metrics", "/readyz"} <= paths
    nginx = (DEPLOY / "nginx" / "hotline.conf").read_text()
    assert "location /webhooks/" in nginx and "location = /api/live" in nginx and "Upgrade $http_upgrade" in nginx
    assert re.search(r"location = /metrics \{[^}]*deny all", nginx)
    limit = re.search(r"client_max_body_size (\d+)m;", nginx)
    assert limit and int(limit.group(1)) * 1024 * 1024 == Settings().max_body_bytes
    caddy = (DEPLOY / "caddy" / "Caddyfile").read_text()
    assert "health_uri /healthz" in caddy and "@monitoring path /metrics /readyz" in caddy


def test_the_guide_s_commands_exist():
    guide = (DEPLOY / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", guide, re.DOTALL))
    commands = re.findall(r"python -m bot ([a-z][^'#\n|>`]*)", blocks)
    assert len(commands) >= 6
    for line in commands:
        _parser().parse_args(shlex.split(re.sub(r"\[[^\]]*\]", "", line)))
