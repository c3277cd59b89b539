"""The auth server's Django project: settings, URLs, WSGI, logging, middleware."""

__version__ = "2.1.0"
