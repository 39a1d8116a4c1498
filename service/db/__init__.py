"""The database: tables (models), the engine and sessions (engine), schema migrations (migrations/)."""
