"""Settings for the Django adapter tests: a default ``startproject`` (admin included,
so its system checks run) with the two settings of the engine, plus
``CSRF_USE_SESSIONS`` and the session storage of ``contrib.messages``. The database
path comes from the test; tests change the rest with ``override_settings``."""

import os

from tests.conftest import SECRET

SECRET_KEY = "django-insecure-test-only-not-used-for-sessions"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "testserver", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "tests.adapters.django_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["WSGISESSION_DJANGO_TEST_DB"],
        "TEST": {"NAME": os.environ["WSGISESSION_DJANGO_TEST_DB"]},
    }
}
STATIC_URL = "static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_USE_SESSIONS = True

SESSION_ENGINE = "wsgisession.adapters.django"
WSGISESSION = {"secret_keys": [SECRET]}
