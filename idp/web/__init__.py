"""The web layer: Starlette routes, pages and the glue between HTTP and the domain."""
