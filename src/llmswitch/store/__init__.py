"""SQLite access and the migration runner."""
