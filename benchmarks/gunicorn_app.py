"""WSGI apps served by gunicorn for ``benchmarks/run.py --gunicorn``.

Same handlers and paths as the in-process benchmark (``systems.py``):

``gunicorn_app:plain``         no session (the floor)
``gunicorn_app:with_session``  ``SessionMiddleware`` around the same handlers, cookie mode
``gunicorn_app:demo``          the project's demo app (``wsgisession.demo.make_demo``)

The secret comes from ``WSGISESSION_BENCH_SECRET`` so that every worker (and the load
generator, which seeds its cookie through ``/seed/S1``) shares it.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (_HERE, os.path.dirname(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from systems import bare_app, session_app  # noqa: E402

from wsgisession import SessionMiddleware  # noqa: E402
from wsgisession.demo import make_demo  # noqa: E402

_SECRET = os.environ.get("WSGISESSION_BENCH_SECRET") or "x" * 43

plain = bare_app
with_session = SessionMiddleware(session_app("session"), secret_keys=[_SECRET])
demo = make_demo([_SECRET])
