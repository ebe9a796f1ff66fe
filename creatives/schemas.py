from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.urls import HttpUrlStr

ID_PATTERN = r"^[A-Za-z0-9._:\-]+$"
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,31}$"
MAX_VIEWS = 10**12


# ------------------------------------------------------------------------------ views

class ViewCountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video_id: str = Field(min_length=1, max_length=100)
    day: date = Field(description="UTC day the platform counted the views on (YYYY-MM-DD)")
    views: int = Field(ge=0, le=MAX_VIEWS, strict=True)


class ViewImportIn(BaseModel):
    """Daily view counts a platform reported, for one source (``tiktok``, ``youtube``…).
    Idempotent per (video, day, source): sending a count again replaces it."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=SOURCE_PATTERN, examples=["tiktok"])
    counts: list[ViewCountIn] = Field(min_length=1, max_length=10_000)


@dataclass(frozen=True, slots=True)
class ViewRow:
    video_id: str
    day: date
    views: int
    ref: str  # where the row came from: ``$.counts[3]`` or ``line 5``


@dataclass
class ViewImportReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": len(self.rejected),
                "errors": self.rejected[:100]}


# ------------------------------------------------------------------------ experiments

class ExperimentIn(BaseModel):
    """Videos that promote the same product, compared on views → orders."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    product_id: str = Field(min_length=1, max_length=200)
    video_ids: list[str] = Field(min_length=2, max_length=20)
    metric: Literal["conversion", "revenue"] = "conversion"
    attribution_model: Literal["last_touch", "first_touch", "linear",
                               "position_based"] = "last_touch"
    currency: str | None = Field(default=None, pattern=r"^[a-zA-Z]{3}$",
                                 description="Revenue currency (default: the store's first)")
    view_source: str | None = Field(default=None, pattern=SOURCE_PATTERN,
                                    description="Count views of this source only (default: all)")
    starts_on: date
    ends_on: date | None = None
    min_views: int = Field(default=1000, ge=1, le=10**9,
                           description="Views every variant needs before a winner is declared")
    min_orders: int = Field(default=20, ge=1, le=10**9,
                            description="Orders the variants need together")
    threshold: float = Field(default=0.95, ge=0.5, le=0.9999,
                             description="Probability to be best the winner must reach")

    @model_validator(mode="after")
    def _check(self) -> ExperimentIn:
        if len(set(self.video_ids)) != len(self.video_ids):
            raise ValueError("video_ids must be distinct")
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video_id: str | None = Field(
        default=None, min_length=1, max_length=100,
        description="Promote this variant although no winner is declared (the merchant's "
                    "call); default: the declared winner")


# ------------------------------------------------------------------------- provenance

class ProvenanceIn(BaseModel):
    """Register the video's file: a URL we fetch (through the outbound-URL policy) or the
    file itself, base64-encoded (small files; the CLI reads files of any size)."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrlStr | None = None
    file_base64: str | None = Field(default=None, max_length=1_400_000)
    content_type: str = Field(default="video/mp4", pattern=r"^[a-z]+/[a-z0-9.+\-]+$")

    @model_validator(mode="after")
    def _one(self) -> ProvenanceIn:
        if (self.url is None) == (self.file_base64 is None):
            raise ValueError("give exactly one of url and file_base64")
        return self


class ConsentIn(BaseModel):
    """Consent of a person whose likeness appears in the video (cameo, face, voice)."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(min_length=1, max_length=200,
                        description="Who appears (name or handle)")
    kind: Literal["cameo", "likeness", "voice"] = "likeness"
    consent_reference: str = Field(min_length=1, max_length=300,
                                   description="Where the signed consent is kept "
                                               "(contract id, document URL, cameo grant id)")
    scope: list[str] = Field(default_factory=list, max_length=20,
                             description="What the consent covers, e.g. tiktok, ads, paid")
    granted_on: date | None = None
    expires_on: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> ConsentIn:
        if any(not s or len(s) > 64 for s in self.scope):
            raise ValueError("scope entries are 1-64 characters")
        if self.granted_on and self.expires_on and self.expires_on < self.granted_on:
            raise ValueError("expires_on is before granted_on")
        return self
