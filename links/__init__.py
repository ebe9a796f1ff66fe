"""Shoppable video links: short ``/v/{code}`` redirects, click and pixel-view touches per
visitor, the link tokens agents pass back, and the per-video funnel."""
