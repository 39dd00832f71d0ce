"""Settings for Django's own test suite (``runtests.py --settings``) with wsgisession's
session engine: Django's ``tests/test_sqlite.py`` plus ``SESSION_ENGINE``,
``WSGISESSION`` and a test runner that records every outcome. ``django_suite.py``
copies this module into the unpacked source tree as ``wsgisession_settings.py``.

``WSGISESSION_YARDSTICK_MODE=store`` keeps the sessions in a ``MemoryStore``
(store mode); otherwise they live in the cookie.
"""

import os

from wsgisession import MemoryStore

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3"},
    "other": {"ENGINE": "django.db.backends.sqlite3"},
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False

SESSION_ENGINE = "wsgisession.adapters.django"
WSGISESSION = {"secret_keys": ["wsgisession-yardstick-" + "0123456789abcdef" * 2]}
if os.environ.get("WSGISESSION_YARDSTICK_MODE") == "store":
    WSGISESSION["store"] = MemoryStore()

TEST_RUNNER = "wsgisession_runner.RecordingRunner"
