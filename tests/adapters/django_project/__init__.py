"""A Django project for tests/adapters/test_django.py (settings, URLs, views)."""
