"""Storage: the schema, the unit-of-work database, and migrations."""
