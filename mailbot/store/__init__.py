"""Tables and queries (sqlmodel)."""
