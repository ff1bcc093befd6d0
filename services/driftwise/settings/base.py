"""What every settings section shares: a frozen model that refuses unknown keys, and where the
repository is (defaults such as the model repository point into it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]


class Section(BaseModel):
    # a typo in a TOML key or an environment variable fails at start instead of being ignored
    model_config = ConfigDict(frozen=True, extra="forbid")
