"""Orders: created from a paid checkout session; history kept as append-only events."""
