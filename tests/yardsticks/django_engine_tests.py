"""Django's ``SessionTestsMixin`` (``tests/sessions_tests/tests.py``) run against
wsgisession's session engine, the way Django runs it for its ``signed_cookies``
engine (``CookieSessionTests``) but with no test overridden: what differs is listed
in ``django_expected_failures.txt``. ``django_suite.py`` copies this module into the
unpacked source tree as ``wsgisession_engine_tests/tests.py``; the mode (cookie or
store) comes from the settings.
"""

from django.test import SimpleTestCase
from sessions_tests.tests import SessionTestsMixin

from wsgisession.adapters.django import SessionStore


class WSGISessionEngineTests(SessionTestsMixin, SimpleTestCase):
    backend = SessionStore
