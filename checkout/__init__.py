"""ACP checkout sessions: pricing (pure), the session state machine, persistence."""
