"""The router service: run history, routing decisions, the ops dashboard. Public surface:
``service.app.create_app`` and ``service.settings.Settings``."""
