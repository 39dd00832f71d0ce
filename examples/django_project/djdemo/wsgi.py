"""WSGI entry point: Django's application wrapped by wsgisession (also used by
``manage.py runserver`` through ``WSGI_APPLICATION``)."""

import os

from django.core.wsgi import get_wsgi_application

from wsgisession.adapters.django import wrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djdemo.settings")

application = wrap(get_wsgi_application())
