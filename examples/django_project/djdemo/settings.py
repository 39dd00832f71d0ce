"""Settings for the wsgisession Django demo (not for production as is)."""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Django still wants SECRET_KEY (password reset tokens, signing); sessions do not use it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
USE_TZ = True
ROOT_URLCONF = "djdemo.urls"
WSGI_APPLICATION = "djdemo.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
]  # no django.contrib.sessions: wsgisession keeps the sessions

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "wsgisession.adapters.django.SessionMiddleware",  # instead of Django's
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DEMO_DB") or BASE_DIR / "db.sqlite3",
    }
}

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_USE_SESSIONS = True

# wsgisession: any SessionMiddleware option; these override SESSION_COOKIE_*.
# Make a secret with `python -m wsgisession genkey`.
WSGISESSION = {
    "secret_keys": [os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)],
}
SESSION_COOKIE_AGE = 3600
