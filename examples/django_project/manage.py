#!/usr/bin/env python
"""Django's command-line utility for the wsgisession demo project.

export SESSION_SECRET="$(python -m wsgisession genkey)"
python manage.py migrate
python manage.py createsuperuser
python manage.py runserver        # serves djdemo.wsgi.application, wrapped
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djdemo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
