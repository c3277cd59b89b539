"""Settings of the test suite: the project's settings with manage.py's development defaults.

pytest-django reads this module before any conftest, so the defaults are applied here. Tests run
with DEBUG off all the same (pytest-django turns it off).
"""

from authserver.env import use_development_defaults

use_development_defaults()

from authserver.settings import *  # noqa: E402, F403
