"""The tenant console: server-rendered pages (FastAPI + Jinja2) of the web application.

``templating`` renders the templates with the console's security headers, ``forms`` reads the
pages' form posts, ``whatsapp`` turns a tenant's WhatsApp connection into what the page shows,
and ``pages`` holds the routes (mounted by ``api.app``). This module imports none of
them, so ``api.signup`` can use ``api.console.templating`` without import cycles.
"""
