"""The demo: a deterministic 90-day history (``story``) played through the real services
(``loader``) for ``reelcart demo``."""
