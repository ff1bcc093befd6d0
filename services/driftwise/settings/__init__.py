"""The one typed settings object. Defaults run everything embedded on one machine.

Override with environment variables (prefix DRIFTWISE_, nested with "__", for example
DRIFTWISE_SERVER__PORT=6000 or DRIFTWISE_MILVUS__URI=http://milvus:19530) or with a TOML file named
by DRIFTWISE_CONFIG (or `--config`). Environment variables win over the file.

`Settings` (here) is the entry point; its sections are in

- serving.py — server, cluster, observability, limits;
- backends.py — triton, milvus;
- security.py — privacy, tls, auth;
- console.py — the web console;

and the model's interest, ranking and tuning in driftwise.model.config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from driftwise.model.config import InterestModelConfig, RankingConfig, TuningConfig
from driftwise.settings.backends import MilvusSettings, TritonSettings
from driftwise.settings.base import REPO_ROOT
from driftwise.settings.console import ConsoleSettings
from driftwise.settings.security import AuthSettings, PrivacySettings, TlsSettings
from driftwise.settings.serving import (
    ClusterSettings,
    LimitSettings,
    ObservabilitySettings,
    Role,
    ServerSettings,
)

__all__ = [
    "REPO_ROOT",
    "AuthSettings",
    "ClusterSettings",
    "ConsoleSettings",
    "LimitSettings",
    "MilvusSettings",
    "ObservabilitySettings",
    "PrivacySettings",
    "Role",
    "ServerSettings",
    "Settings",
    "TlsSettings",
    "TritonSettings",
    "load_settings",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTWISE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(Path(".driftwise"), description="Event log, Milvus Lite file, logs.")
    server: ServerSettings = ServerSettings()
    cluster: ClusterSettings = ClusterSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    triton: TritonSettings = TritonSettings()
    milvus: MilvusSettings = MilvusSettings()
    limits: LimitSettings = LimitSettings()
    privacy: PrivacySettings = PrivacySettings()
    tls: TlsSettings = TlsSettings()
    auth: AuthSettings = AuthSettings()
    console: ConsoleSettings = ConsoleSettings()
    interest: InterestModelConfig = InterestModelConfig()
    ranking: RankingConfig = RankingConfig()
    tuning: TuningConfig = TuningConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("DRIFTWISE_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def milvus_uri(self) -> str:
        return self.milvus.uri or str(self.data_dir / "milvus.db")

    @property
    def candidates_per_layer(self) -> int:
        """Items each layer's Milvus search returns (capped on Milvus Lite)."""
        return self.candidates_per_layer_for(self.ranking)

    def candidates_per_layer_for(self, ranking: RankingConfig) -> int:
        """Items each layer's Milvus search returns with these ranking settings (capped on Lite)."""
        limit = ranking.candidates_per_layer
        return limit if self.milvus.uri else min(limit, self.milvus.lite_candidates_per_layer)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from (in increasing priority) defaults, the TOML file, the environment, overrides."""
    if config_file is not None:
        os.environ["DRIFTWISE_CONFIG"] = str(config_file)
    return Settings(**overrides)
