"""A plain request loop for profilers: ``SCENARIO [N] [SYSTEM]`` (default 20000 wsgisession).

    python -m cProfile -s tottime benchmarks/profile_loop.py S1 20000
    python -m cProfile -s tottime benchmarks/profile_loop.py S2 20000 | head -40

Same app, cookie and environ template as ``run.py`` (the cookie comes from a seed
request), so the profile shows exactly the benchmarked path. ``SYSTEM`` may be
``wsgisession`` (cookie mode) or ``wsgisession-memory``.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# WSGISESSION_BENCH_PACKAGE: the checkout whose package is measured (compare.py).
for _path in (HERE, os.environ.get("WSGISESSION_BENCH_PACKAGE") or os.path.dirname(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import systems as S  # noqa: E402
from run import call, environ_template, wsgi_runner  # noqa: E402

from wsgisession import MemoryStore, SessionMiddleware  # noqa: E402


def main() -> None:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "S1"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    system = sys.argv[3] if len(sys.argv) > 3 else "wsgisession"
    store = MemoryStore() if system == "wsgisession-memory" else None
    app = SessionMiddleware(S.session_app("session"), secret_keys=[S.SECRET], store=store)
    cookie = None
    if S.SEED_DATA[scenario] is not None:
        cookie = call(app, f"/seed/{scenario}", None).cookie_pairs()
    run = wsgi_runner(app, environ_template(f"/{scenario}", cookie))
    run(1000)  # warm-up
    elapsed = run(n)
    each = elapsed / n / 1000 if n else 0.0
    print(f"{system} {scenario}: {n} requests, {each:.2f} µs each", file=sys.stderr)


if __name__ == "__main__":
    main()
