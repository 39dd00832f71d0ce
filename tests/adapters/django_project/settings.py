"""Settings for the Django adapter tests; the database path comes from the test."""

import os

from tests.conftest import SECRET

SECRET_KEY = "django-insecure-test-only-not-used-for-sessions"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "tests.adapters.django_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "wsgisession.adapters.django.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["WSGISESSION_DJANGO_TEST_DB"],
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_USE_SESSIONS = True
WSGISESSION = {"secret_keys": [SECRET]}
