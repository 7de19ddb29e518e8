"""The OpenID Connect / OAuth 2 provider, on authlib."""
