"""From the ``alerts.channels`` configuration to channels: each channel's secret read from its
file or environment variable, its filter from ``events`` and ``min_severity``. A secret that
cannot be read is a configuration error naming the key — never showing the secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lifeboat.app.observability.alerts.channel import Channel, ChannelFilter
from lifeboat.config.model import (
    AlertsConfig,
    AppriseChannelConfig,
    DiscordChannelConfig,
    EmailChannelConfig,
    SlackChannelConfig,
    WebhookChannelConfig,
)
from lifeboat.core.units import parse_duration
from lifeboat.errors import ConfigError


@dataclass(frozen=True)
class ConfiguredChannel:
    channel: Channel
    filter: ChannelFilter

    @property
    def name(self) -> str:
        return self.channel.name


def read_secret(
    where: str, what: str, path: str | None, variable: str | None, environ: Mapping[str, str]
) -> str | None:
    """The secret ``what`` of ``alerts.channels.<name>`` (``where``): the file's first line, or
    the variable's value; None when neither is configured."""
    if path is not None:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read(1 << 16)
        except OSError as exc:
            raise ConfigError(
                f"{where}.{what}_file: cannot read {path}: {exc.strerror or type(exc).__name__}",
                hint="check the path and that this user may read the file",
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{where}.{what}_file: {path} is not UTF-8 text") from None
        value = text if what == "urls" else (text.splitlines() or [""])[0]
        if not value.strip():
            raise ConfigError(f"{where}.{what}_file: {path} is empty")
        return value.strip()
    if variable is not None:
        value = environ.get(variable, "")
        if not value.strip():
            raise ConfigError(
                f"{where}.{what}_env: the environment variable {variable} is not set",
                hint=f"set {variable} in the daemon's environment (its service file), or use {what}_file",
            )
        return value.strip()
    return None


def _url(where: str, value: str | None) -> str:
    assert value is not None
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: the URL must start with https:// (or http://)")  # never the URL itself
    return value


def build_channel(name: str, config: AlertsConfig, environ: Mapping[str, str]) -> ConfiguredChannel:
    spec = config.channels[name]
    where = f"alerts.channels.{name}"
    channel: Channel
    if isinstance(spec, SlackChannelConfig):
        from lifeboat.app.observability.alerts.slack import SlackChannel

        channel = SlackChannel(name, _url(where, read_secret(where, "url", spec.url_file, spec.url_env, environ)))
    elif isinstance(spec, DiscordChannelConfig):
        from lifeboat.app.observability.alerts.discord import DiscordChannel

        channel = DiscordChannel(name, _url(where, read_secret(where, "url", spec.url_file, spec.url_env, environ)))
    elif isinstance(spec, WebhookChannelConfig):
        from lifeboat.app.observability.alerts.webhook import WebhookChannel

        url = spec.url or read_secret(where, "url", spec.url_file, spec.url_env, environ)
        secret = read_secret(where, "secret", spec.secret_file, spec.secret_env, environ)
        channel = WebhookChannel(name, _url(where, url), secret.encode() if secret is not None else None)
    elif isinstance(spec, EmailChannelConfig):
        from lifeboat.app.observability.alerts.mail import EmailChannel, SmtpSettings

        password = read_secret(where, "password", spec.password_file, spec.password_env, environ)
        starttls = not spec.ssl if spec.starttls is None else spec.starttls
        port = spec.port or (465 if spec.ssl else 587 if starttls else 25)
        settings = SmtpSettings(
            host=spec.host,
            port=port,
            sender=spec.sender,
            to=tuple(spec.to),
            ssl=spec.ssl,
            starttls=starttls,
            ca_file=spec.ca_file,
            username=spec.username,
            password=password,
            timeout=parse_duration(spec.timeout).total_seconds(),
        )
        channel = EmailChannel(name, settings)
    else:
        assert isinstance(spec, AppriseChannelConfig)
        from lifeboat.app.observability.alerts.appriseurls import AppriseChannel, split_urls

        text = read_secret(where, "urls", spec.urls_file, spec.urls_env, environ) or ""
        try:
            channel = AppriseChannel(name, split_urls(text))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return ConfiguredChannel(channel, ChannelFilter(frozenset(spec.events), spec.min_severity))


def build_channels(
    config: AlertsConfig, environ: Mapping[str, str], only: str | None = None
) -> list[ConfiguredChannel]:
    """Every configured channel (or only the one named ``only``), in the file's order."""
    if only is not None and only not in config.channels:
        known = ", ".join(config.channels) or "none"
        raise ConfigError(f"no alert channel named {only!r} (configured: {known})", hint="see alerts.channels")
    return [build_channel(name, config, environ) for name in config.channels if only in (None, name)]
