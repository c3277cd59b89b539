#!/usr/bin/env python
"""Django's command-line utility. It defaults to development mode (DEBUG on) unless DEBUG is set."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
    from authserver.env import use_development_defaults

    use_development_defaults()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
