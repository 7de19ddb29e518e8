"""SCIM 2.0 provisioning (RFC 7643 schemas, RFC 7644 protocol), free of HTTP.

Users are the eIDs of one tenant (``users``), Groups map to the domain groups (``groups``);
``filters`` turns a filter into SQL, ``patch`` applies PATCH operations in the shapes that
Microsoft Entra ID and Okta send, ``bulk`` runs /Bulk requests, ``tokens`` owns the per-tenant
bearer tokens. The Starlette glue is ``idp.web.scim_routes``.
"""
