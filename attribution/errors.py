from __future__ import annotations

from models.errors import InvalidRequest, NotFound


class VideoNotFound(NotFound):
    code = "video_not_found"

    def __init__(self, video_id: str) -> None:
        super().__init__(f"Video {video_id!r} does not exist.")


class InvalidVideo(InvalidRequest):
    code = "invalid_video"
