"""WSGI entry point (gunicorn authserver.wsgi:application). Production rules apply: DEBUG is off unless set."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")

application = get_wsgi_application()
