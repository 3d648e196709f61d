"""One router per resource: posts (lookup, batch), drafts (score), push, health."""
