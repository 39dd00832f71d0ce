"""Deployment tests: the demo app under real gunicorn, on loopback."""
