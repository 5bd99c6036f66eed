"""Repositories in Azure Blob Storage: ``az://container/prefix?account=NAME``.

The data plane is obstore's Azure store (block blobs; large objects go up as parallel
blocks committed at once; put-if-absent is ``If-None-Match: *``). Credentials come from
the environment the Azure tools use: ``AZURE_STORAGE_CONNECTION_STRING``, or an account
name with ``AZURE_STORAGE_ACCOUNT_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``, or Microsoft
Entra ID (service principal, workload or managed identity, ``use_azure_cli=true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import ConfigError, UsageError
from lifeboat.storage.objectstore import TUNING_OPTIONS, ObstoreBackend, Tuning
from lifeboat.storage.url import Options, StorageUrl, shown_url

OPTIONS = TUNING_OPTIONS | {"account", "endpoint", "access_tier", "use_azure_cli"}
ACCESS_TIERS = ("Hot", "Cool", "Cold")
ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;Key=Value`` as Azure writes connection strings (values may contain '=')."""
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"{ENV_CONNECTION_STRING} is malformed (a part has no '=')")
        fields[key.strip()] = value.strip()
    return fields


@dataclass(frozen=True)
class AzureSettings:
    container: str
    prefix: str = ""
    account: str | None = None
    endpoint: str | None = None
    access_tier: str | None = None
    use_azure_cli: bool = False
    tuning: Tuning = field(default_factory=Tuning)

    @classmethod
    def from_url(cls, url: StorageUrl) -> AzureSettings:
        options = Options(url, OPTIONS)
        if not url.host:
            raise UsageError("the az URL names no container", hint="write az://container/prefix?account=NAME")
        if url.user or url.port:
            raise UsageError(
                "an az URL names a container, not a server",
                hint="give the account as ?account=NAME and a custom endpoint as ?endpoint=URL",
            )
        endpoint = options.endpoint()
        return cls(
            container=url.host,
            prefix=url.path.strip("/"),
            account=options.text("account"),
            endpoint=endpoint,
            access_tier=options.choice("access_tier", ACCESS_TIERS),
            use_azure_cli=options.boolean("use_azure_cli", False),
            tuning=Tuning.from_options(options),
        )


class AzureBackend(ObstoreBackend):
    """Block blobs in one container under a prefix."""

    container_word = "container"
    delete_reports_missing = True

    def __init__(self, settings: AzureSettings, *, env: Mapping[str, str]) -> None:
        """``env``: the variables to take the account and its key or token from (docs/storage.md,
        "Credentials"); Microsoft Entra ID settings are left to obstore."""
        from obstore.store import AzureStore

        config: dict[str, Any] = {}
        connection = env.get(ENV_CONNECTION_STRING)
        if connection:
            fields = parse_connection_string(connection)
            if "AccountName" in fields:
                config["account_name"] = fields["AccountName"]
            if "AccountKey" in fields:
                config["account_key"] = fields["AccountKey"]
            if "SharedAccessSignature" in fields:
                config["sas_key"] = fields["SharedAccessSignature"].lstrip("?")
            if "BlobEndpoint" in fields:
                config["endpoint"] = fields["BlobEndpoint"].rstrip("/")
        if env.get("AZURE_STORAGE_SAS_TOKEN") and "sas_key" not in config:
            config["sas_key"] = env["AZURE_STORAGE_SAS_TOKEN"].lstrip("?")
        # AZURE_STORAGE_KEY and AZURE_STORAGE_ACCOUNT are the names the az CLI uses.
        key = env.get("AZURE_STORAGE_ACCOUNT_KEY") or env.get("AZURE_STORAGE_KEY")
        if key and "account_key" not in config:
            config["account_key"] = key
        name = env.get("AZURE_STORAGE_ACCOUNT_NAME") or env.get("AZURE_STORAGE_ACCOUNT")
        if name and "account_name" not in config:
            config["account_name"] = name
        if settings.account:
            config["account_name"] = settings.account
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        if settings.use_azure_cli:
            config["use_azure_cli"] = True
        account = config.get("account_name")
        if not account:
            raise UsageError(
                "no Azure storage account given",
                hint=f"add ?account=NAME to the az URL, or set AZURE_STORAGE_ACCOUNT_NAME or {ENV_CONNECTION_STRING}",
            )
        endpoint = str(config.get("endpoint") or "")
        try:
            store = AzureStore(
                settings.container,
                prefix=settings.prefix or None,
                client_options=settings.tuning.client_options(allow_http=endpoint.startswith("http://")),
                retry_config=settings.tuning.retry_config(),
                **config,
            )
        except Exception as exc:
            raise UsageError(
                f"cannot configure the Azure store for {account}: {type(exc).__name__}",
                hint="check the AZURE_STORAGE_* settings (docs/storage.md)",
            ) from None
        where = f"az://{settings.container}/{settings.prefix}" if settings.prefix else f"az://{settings.container}"
        location = f"{where} (account {account}" + (f", {shown_url(endpoint)})" if endpoint else ")")
        attributes = {"Storage-Class": settings.access_tier} if settings.access_tier else None
        super().__init__(
            store, location=location, container=settings.container, tuning=settings.tuning, attributes=attributes
        )


# --- the provider (lifeboat.storage.registry) ---------------------------------------------------
def check(url: StorageUrl) -> None:
    AzureSettings.from_url(url)


def connect(url: StorageUrl, env: Mapping[str, str]) -> AzureBackend:
    return AzureBackend(AzureSettings.from_url(url), env=env)
