"""Levels of assurance: the ladder, its acr/amr vocabularies, and the authenticators."""
