"""The tenant administration API: who may call it (``principal``), its resources (``models``) and
its OpenAPI 3.1 description (``openapi``). The HTTP layer is :mod:`idp.web.admin_routes`."""
