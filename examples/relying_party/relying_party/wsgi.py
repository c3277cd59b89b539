"""WSGI entry point: `gunicorn relying_party.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relying_party.settings")

application = get_wsgi_application()
