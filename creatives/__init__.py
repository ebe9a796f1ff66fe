"""Creatives: what happens to a video after it is published, and what it is.

- platform view counts per video, day and source (``views``), imported idempotently;
- creative experiments: videos promoting one product compared on views → orders, with
  Beta-Binomial statistics (``stats``, pure), and the winner promoted to be the product's
  video in feeds and catalog results (``experiments``);
- provenance: the file's C2PA Content Credentials (``c2pa_reader`` wraps the official
  ``c2pa-python`` library) and consent of the people appearing in it (``provenance``).
"""
