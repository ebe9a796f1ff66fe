from __future__ import annotations

from typing import Any

from models.errors import Conflict, InvalidRequest, NotFound


class InvalidViewCounts(InvalidRequest):
    """A view import with bad rows: nothing is written; ``errors`` lists every problem."""

    code = "invalid_view_counts"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first['message']}{more}", param=first.get("param"),
                         extra={"errors": problems[:100]})


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"

    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"Experiment {experiment_id!r} does not exist.")


class InvalidExperiment(InvalidRequest):
    code = "invalid_experiment"


class NoWinner(Conflict):
    code = "no_winner"


class ConsentNotFound(NotFound):
    code = "consent_not_found"

    def __init__(self, consent_id: str) -> None:
        super().__init__(f"Consent {consent_id!r} does not exist.")


class ProvenanceUnreadable(InvalidRequest):
    """The file is not a media container the C2PA library can read."""

    code = "unreadable_media"


class ProvenanceFetchFailed(InvalidRequest):
    """The video URL could not be fetched (refused by the outbound policy, an error
    status, too large, unreachable)."""

    code = "video_fetch_failed"
    status_code = 422
