"""The tenant console: server-rendered pages (FastAPI + Jinja2) served by the ingress process.

``templating`` renders the templates with the console's security headers, ``forms`` reads the
pages' form posts, ``whatsapp`` turns a tenant's WhatsApp connection into what the page shows,
and ``pages`` holds the routes (mounted by ``ingress.api.install``). This module imports none of
them, so ``ingress.signup`` can use ``ingress.console.templating`` without import cycles.
"""
