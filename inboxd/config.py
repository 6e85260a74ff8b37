"""Settings: one TOML file, validated at start, errors naming the key.

Secrets never live in the file: a mailbox or SMTP login names an environment
variable (``password_env``) or a file (``password_file``, e.g. systemd's
``LoadCredential=``) and the secret is read only when a connection is made.
(One exception for the simplest Slack set-up: ``[slack] webhook_url`` may be
written inline; it is a ``SecretStr``, so it never prints.) Nothing happens on
import; ``load_settings`` is called by the CLI.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

Security = Literal["none", "starttls", "tls"]

DEFAULT_CONFIG = "inboxd.toml"


class ConfigError(Exception):
    """The configuration file is missing or invalid; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked, for
    anything printed or logged (a database URL may carry one)."""
    return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)


def read_secret(env: str | None, file: Path | None, key: str) -> str | None:
    """A token or password from the environment variable ``env`` or the file ``file``
    (stripped); None when neither is set. Errors name the config key, never the value."""
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigError(f"{key}_env: environment variable {env} is not set")
        return value
    if file:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_file: {exc}") from exc
        if not value:
            raise ConfigError(f"{key}_file: {file} is empty")
        return value
    return None


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _check_listen(value: str, *, optional: bool = False) -> str:
    _, sep, port = value.rpartition(":")
    if (value or not optional) and (not sep or not port.isdigit()):
        raise ValueError("must be HOST:PORT" + (" (or empty: off)" if optional else ""))
    return value


class Secret(_Strict):
    """Where a password comes from. Its value is never stored in Settings."""

    password_env: str | None = None
    password_file: Path | None = None

    def read_password(self) -> str | None:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"environment variable {self.password_env} is not set")
            return value
        if self.password_file:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read password_file {self.password_file}: {exc}") from exc
        return None


class DatabaseConfig(_Strict):
    url: str = "sqlite:///var/inboxd.db"


class MailboxConfig(Secret):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    address: str
    imap_host: str = ""
    imap_port: int = 993
    imap_security: Security = "tls"
    username: str = ""
    folder: str = "INBOX"
    sent_folder: str | None = None
    after_import: str = "keep"
    idle: bool = True
    poll_interval: float = 60.0
    batch_size: Annotated[int, Field(ge=1, le=5000)] = 200
    # bytes (by RFC822.SIZE) per FETCH batch: 20 x 45 MB mails were 2.8 GB of memory
    batch_bytes: Annotated[int, Field(ge=1)] = 64 * 1024 * 1024
    imap_timeout: float = 60.0

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be an email address")
        return value.strip().lower()

    @field_validator("after_import")
    @classmethod
    def _after_import(cls, value: str) -> str:
        if value in ("keep", "seen") or (value.startswith("move:") and len(value) > 5):
            return value
        raise ValueError("must be keep, seen or move:FOLDER")

    @property
    def uses_imap(self) -> bool:
        """An empty imap_host means this address takes mail over LMTP only."""
        return bool(self.imap_host)

    @property
    def move_target(self) -> str | None:
        return self.after_import[5:] if self.after_import.startswith("move:") else None


class LmtpConfig(_Strict):
    enabled: bool = True
    listen: str = "127.0.0.1:8024"
    protocol: Literal["lmtp", "smtp"] = "lmtp"
    max_message_size: int = 50 * 1024 * 1024

    @property
    def host_port(self) -> tuple[str, int]:
        return _host_port(self.listen)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _check_listen(value)


class SmtpConfig(Secret):
    # "smtp": a relay; "maildir": files in ``path`` (the demo: read what was sent)
    transport: Literal["smtp", "maildir"] = "smtp"
    path: Path = Path("var/sent")
    host: str = "127.0.0.1"
    port: int = 25
    security: Security = "none"
    username: str = ""
    timeout: float = 30.0
    retry_for: float = 2 * 24 * 3600.0  # seconds a temporary failure is retried
    max_per_run: int = 100


class HelpdeskConfig(_Strict):
    """Identity of the helpdesk in outbound mail and threading."""

    name: str = "Support"  # display name on automatic mail
    domain: str = "inboxd.localhost"  # right side of our Message-IDs
    secret_env: str | None = None  # HMAC secret for tokens; from env or file
    secret_file: Path | None = None
    subject_tag: str = "[#{id}]"
    reopen_window_days: float = 30.0  # reply to a ticket closed longer ago -> new linked ticket
    acknowledge: bool = True
    # hourly loop caps (core.loops.HourlyCaps): acks per recipient, per recipient
    # domain and in all; new tickets per sender and per sender domain (above the
    # cap a mail joins the sender's newest open ticket, else a held ticket)
    ack_per_sender_per_hour: Annotated[int, Field(ge=0)] = 3
    ack_per_domain_per_hour: Annotated[int, Field(ge=0)] = 50
    ack_per_hour: Annotated[int, Field(ge=0)] = 500
    tickets_per_sender_per_hour: Annotated[int, Field(ge=0)] = 20
    tickets_per_domain_per_hour: Annotated[int, Field(ge=0)] = 0  # 0: off
    # authserv-ids of our own receiving servers whose Authentication-Results are
    # trusted; when set, agent commands also need DKIM or DMARC pass for the agent
    trusted_authserv_ids: list[str] = []

    @field_validator("subject_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("must contain {id}")
        return value

    def read_secret(self) -> bytes:
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if value:
                return value.encode()
            raise ConfigError(
                f"helpdesk.secret_env: environment variable {self.secret_env} is not set"
            )
        if self.secret_file:
            try:
                return self.secret_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"helpdesk.secret_file: {exc}") from exc
        raise ConfigError("helpdesk: set secret_env or secret_file (the HMAC key for reply tokens)")


class DirConfig(_Strict):
    dir: Path


_SUBTEAM_ID = re.compile(r"^S[A-Z0-9]{2,20}$")  # a Slack user group id
# alert kinds that may wait for the next opening (core.quiet_hours.DEFERRABLE)
QuietKind = Literal["new_vip", "new_ticket", "customer_reply", "sla_warning"]


def _subteam(value: str) -> str:
    if not _SUBTEAM_ID.match(value):
        raise ValueError("must be a Slack user group id such as S0123ABC")
    return value


class QuietHoursConfig(_Strict):
    """Alerts of ``kinds`` that come while the team's calendar (a calendar of the rule
    files: ``teams[TEAM]``, else ``calendar``) is closed wait for one summary per
    channel at its next opening. Breaches and urgent tickets always go at once."""

    kinds: list[QuietKind] = []
    calendar: str = ""
    teams: dict[str, str] = {}
    interval: Annotated[float, Field(gt=0)] = 60.0  # how often the summary job looks

    @field_validator("kinds", mode="before")
    @classmethod
    def _never(cls, value: object) -> object:
        if isinstance(value, list) and {"sla_breach", "urgent"} & set(value):
            raise ValueError("breaches and urgent tickets always go at once")
        return value

    @model_validator(mode="after")
    def _calendar(self) -> QuietHoursConfig:
        if self.kinds and not (self.calendar or self.teams):
            raise ValueError("kinds wait for a calendar: set calendar (or teams)")
        return self


class SlackConfig(_Strict):
    token_env: str | None = None
    token_file: Path | None = None
    base_url: str | None = None  # for tests: a local stand-in of the Web API
    ops_channel: str | None = None
    # seconds a Slack call is retried; how often living roots are compared with their tickets
    retry_for: Annotated[float, Field(gt=0)] = 86400.0
    sync_interval: Annotated[float, Field(gt=0)] = 30.0
    # minutes a mailbox may stay unreachable before one alert to ops_channel says so
    outage_after: Annotated[float, Field(gt=0)] = 10.0
    # the app-level token (xapp-...) of Socket Mode: buttons on the living messages
    app_token_env: str | None = None
    app_token_file: Path | None = None
    # the user group (S0123ABC) a breach alert pings; per team (the ticket's) first
    breach_mention: str | None = None
    breach_mentions: dict[str, str] = {}
    quiet_hours: QuietHoursConfig = QuietHoursConfig()
    # an incoming webhook instead of a bot token: posts only (no threads, updates,
    # buttons); the URL is a secret: never printed, logged or put in an error
    webhook_url: SecretStr | None = None
    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None

    @field_validator("breach_mention")
    @classmethod
    def _mention(cls, value: str | None) -> str | None:
        return _subteam(value) if value is not None else None

    @field_validator("breach_mentions")
    @classmethod
    def _mentions(cls, value: dict[str, str]) -> dict[str, str]:
        for team, group in value.items():
            if not _SUBTEAM_ID.match(group):
                raise ValueError(f"{team}: must be a Slack user group id such as S0123ABC")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> SlackConfig:
        hooks = [self.webhook_url, self.webhook_url_env, self.webhook_url_file]
        if sum(h is not None for h in hooks) > 1:
            raise ValueError("set one of webhook_url, webhook_url_env, webhook_url_file")
        if self.webhook and (self.token_env or self.token_file):
            raise ValueError("set a bot token or an incoming webhook, not both")
        if self.webhook and self.interactive:
            raise ValueError("buttons (app_token_*) need a bot token, not a webhook")
        return self

    @property
    def interactive(self) -> bool:
        """Socket Mode is configured: roots carry buttons and a listener runs."""
        return bool(self.app_token_env or self.app_token_file)

    @property
    def webhook(self) -> bool:
        """Alerts go through an incoming webhook: plain posts, no threads or updates."""
        return bool(self.webhook_url or self.webhook_url_env or self.webhook_url_file)

    @property
    def enabled(self) -> bool:
        return bool(self.token_env or self.token_file or self.webhook)

    def mention_for(self, team: str | None) -> str | None:
        """The user group a breach of ``team``'s ticket pings, if any."""
        return self.breach_mentions.get(team or "") or self.breach_mention

    def read_webhook_url(self) -> str | None:
        """The webhook URL, or None when none is configured. Errors never carry it."""
        if self.webhook_url is not None:
            return self.webhook_url.get_secret_value().strip() or None
        url = read_secret(self.webhook_url_env, self.webhook_url_file, "slack.webhook_url")
        if url is not None and not url.startswith(("https://", "http://")):
            raise ConfigError("slack.webhook_url: not an http(s) URL")
        return url


class IngestConfig(_Strict):
    # worker processes that fetch and parse bulk imports while the main process
    # stores; unset: one per core beyond the first (at most 4), 0: none
    workers: Annotated[int, Field(ge=0, le=32)] | None = None
    # seconds a daemon's claim on a mailbox lasts unless renewed (a third of it at the
    # latest); another daemon takes a dead one's mailboxes over within this time
    lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 60.0


class MetricsConfig(_Strict):
    """The Prometheus endpoint (/metrics, /healthz, /readyz); empty ``listen``: off."""

    listen: str = ""

    @property
    def host_port(self) -> tuple[str, int]:
        return _host_port(self.listen)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _check_listen(value, optional=True)


class SlaConfig(_Strict):
    """How often the SLA sweep looks for due tickets (it reads only those)."""

    sweep_interval: Annotated[float, Field(gt=0)] = 30.0  # seconds


class CsatConfig(_Strict):
    """Satisfaction surveys: one per solved ticket, ``delay`` seconds after its solve."""

    enabled: bool = False
    delay: Annotated[float, Field(ge=0)] = 86400.0  # seconds after the (latest) solve
    interval: Annotated[float, Field(gt=0)] = 300.0  # how often the survey job looks
    # what a bad rating does: "reopen" the solved ticket, "alert_lead" mails the team lead
    on_bad: list[Literal["reopen", "alert_lead"]] = ["alert_lead"]


class DigestConfig(_Strict):
    """The weekly digest to each team lead (and ``cc``): sent ``weekday`` at ``time`` in
    ``timezone`` for the week (Monday to Sunday) before; the staffing estimate's inputs."""

    enabled: bool = False
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "08:00"
    timezone: str = "UTC"
    cc: list[str] = []  # addresses that get every team's digest too
    interval: Annotated[float, Field(gt=0)] = 300.0  # how often the job looks (seconds)
    handle_time: Annotated[float, Field(gt=0)] = 600.0  # agent seconds per ticket
    response_target: Annotated[float, Field(gt=0)] = 3600.0  # first response, seconds
    service_level: Annotated[float, Field(gt=0, lt=1)] = 0.8
    staffing_weeks: Annotated[int, Field(ge=1, le=26)] = 4  # weeks of arrivals averaged


class Settings(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    ingest: IngestConfig = IngestConfig()
    helpdesk: HelpdeskConfig = HelpdeskConfig()
    mailbox: list[MailboxConfig] = []
    lmtp: LmtpConfig = LmtpConfig()
    smtp: SmtpConfig = SmtpConfig()
    rules: DirConfig = DirConfig(dir=Path("rules"))
    templates: DirConfig = DirConfig(dir=Path("templates"))
    slack: SlackConfig = SlackConfig()
    sla: SlaConfig = SlaConfig()
    metrics: MetricsConfig = MetricsConfig()
    csat: CsatConfig = CsatConfig()
    digest: DigestConfig = DigestConfig()

    @model_validator(mode="after")
    def _unique_mailboxes(self) -> Settings:
        seen: set[str] = set()
        for box in self.mailbox:
            if box.name in seen:
                raise ValueError(f"mailbox name {box.name!r} is used twice")
            seen.add(box.name)
        return self

    @property
    def support_addresses(self) -> frozenset[str]:
        return frozenset(box.address for box in self.mailbox)


def _resolve_paths(data: dict[str, object], base: Path) -> None:
    """Relative directories, files and SQLite paths are taken relative to the config file."""
    for section in ("rules", "templates"):
        table = data.get(section)
        if isinstance(table, dict) and isinstance(table.get("dir"), str):
            path = Path(table["dir"])
            table["dir"] = str(path if path.is_absolute() else base / path)
    helpdesk = data.get("helpdesk")
    if isinstance(helpdesk, dict) and isinstance(helpdesk.get("secret_file"), str):
        secret = Path(helpdesk["secret_file"])
        helpdesk["secret_file"] = str(secret if secret.is_absolute() else base / secret)
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and isinstance(smtp.get("path"), str):
        maildir = Path(smtp["path"])
        smtp["path"] = str(maildir if maildir.is_absolute() else base / maildir)
    db = data.get("database")
    if isinstance(db, dict) and isinstance(db.get("url"), str):
        url: str = db["url"]
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            db["url"] = prefix + str(base / url[len(prefix) :])


def _format_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def parse_settings(text: str, path: Path) -> Settings:
    """Validate TOML text; relative paths resolve against ``path``'s directory."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    base = path.resolve().parent
    _resolve_paths(data, base)
    data.setdefault("rules", {"dir": str(base / "rules")})
    data.setdefault("templates", {"dir": str(base / "templates")})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from exc


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("INBOXD_CONFIG") or DEFAULT_CONFIG)


def load_settings(explicit: str | None = None) -> Settings:
    path = config_path(explicit)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    return parse_settings(text, path)
