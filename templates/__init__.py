"""Jinja2 pages and mails, their static files and translation catalogues (shipped as package data)."""
