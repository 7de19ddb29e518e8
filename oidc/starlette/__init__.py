"""The Starlette adapter of the provider (mirrors authlib's ``integrations/flask_oauth2``)."""
