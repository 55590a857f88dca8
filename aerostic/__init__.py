"""The roof: the ``aerostic`` command (``aerostic.cli``) and the web server that serves the webhook
ingress and the tenant API together (``aerostic.web``). Nothing imports this package."""
