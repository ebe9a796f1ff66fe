"""The edge and composition root: HTTP app, CLI, settings, worker startup."""
