"""The framework adapters and the store-mode peers, for ``run.py``.

Adapters, each over its framework's own no-session floor (``flask-bare``,
``django-bare``, ``pyramid-bare``) and compared with that framework's own session:

``flask-adapter``        ``init_app(app, secret_keys=[...])``, cookie mode
``django-adapter``       ``SESSION_ENGINE = "wsgisession.adapters.django"`` under Django's
                         own ``SessionMiddleware``
``pyramid-adapter``      ``PyramidSessionFactory(secret_keys=[...])``, Pyramid's defaults
                         (``reissue_time=0``: re-issued on every request that reads it)
``pyramid-adapter-noreissue``  the same with ``reissue_time=None``

Store mode on one local Redis (the benchmark's private ``redis-server``), read and
write only: ``wsgisession-redis`` (``run.py``'s own) beside Flask-Session's Redis
interface (``flask-session-redis``), Django's ``cache`` session backend on Django's
``RedisCache`` (``django-cache-redis``) and Beaker's ``ext:redis``
(``beaker-redis``), each over its framework floor. Their Redis round trips per
request are counted from the server's own statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import systems as S

#: adapter -> the framework's own session systems it is compared with (the best one)
ADAPTER_PEERS: dict[str, tuple[str, ...]] = {
    "flask-adapter": ("flask",),
    "django-adapter": ("django",),
    "pyramid-adapter": ("pyramid", "pyramid-noreissue"),
    "pyramid-adapter-noreissue": ("pyramid", "pyramid-noreissue"),
}
#: the bare middleware each adapter's cost is compared with (its own cost over it)
BARE_MIDDLEWARE = "wsgisession"
ADAPTER_TARGET = 0.4  # read, write, 2 KB and new, as a ratio to the framework's own
ADAPTER_UNTOUCHED_US = 2.0
STORE_PEERS = ("flask-session-redis", "django-cache-redis", "beaker-redis")
STORE_OURS = "wsgisession-redis"
STORE_TARGET = 0.5


def make_flask_adapter(stores: dict[str, Any]) -> list[S.System]:
    from wsgisession.adapters.flask import init_app

    def setup(app: Any) -> None:
        init_app(app, secret_keys=[S.SECRET])

    return [
        S.System(
            "flask-adapter",
            S.flask_app("bench_flask_adapter", setup),
            "flask-bare",
            "adapter",
            label="wsgisession Flask adapter (init_app), cookie mode",
            version=S._version("Flask"),
            notes="init_app(app, secret_keys=[...]); Flask's SESSION_COOKIE_* defaults",
        )
    ]


def make_django_adapter(stores: dict[str, Any]) -> list[S.System]:
    handler = S.django_handler("wsgisession.adapters.django", {"secret_keys": [S.SECRET]})
    return [
        S.System(
            "django-adapter",
            handler,
            "django-bare",
            "adapter",
            label="wsgisession Django session engine",
            version=S._version("Django"),
            notes='SESSION_ENGINE="wsgisession.adapters.django" under Django\'s '
            "SessionMiddleware; WSGISESSION={secret_keys}",
        )
    ]


def make_pyramid_adapter(stores: dict[str, Any]) -> list[S.System]:
    from wsgisession.adapters.pyramid import PyramidSessionFactory

    version = S._version("pyramid")
    return [
        S.System(
            "pyramid-adapter",
            S.pyramid_app(PyramidSessionFactory(secret_keys=[S.SECRET])),
            "pyramid-bare",
            "adapter",
            label="wsgisession PyramidSessionFactory, Pyramid's defaults",
            version=version,
            notes="PyramidSessionFactory(secret_keys=[...]): timeout=1200, max_age=None, "
            "reissue_time=0",
        ),
        S.System(
            "pyramid-adapter-noreissue",
            S.pyramid_app(PyramidSessionFactory(secret_keys=[S.SECRET], reissue_time=None)),
            "pyramid-bare",
            "adapter",
            label="wsgisession PyramidSessionFactory, reissue_time=None",
            version=version,
            notes="PyramidSessionFactory(secret_keys=[...], reissue_time=None)",
        ),
    ]


def _redis_url(stores: dict[str, Any]) -> str:
    entry = stores.get(STORE_OURS)
    if entry is None:
        raise ImportError("no Redis for the store-mode peers (wsgisession-redis skipped)")
    store, _ = entry
    kwargs = store.client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/1"  # db 1: apart from ours


def make_store_peers(stores: dict[str, Any]) -> list[S.System]:
    url = _redis_url(stores)
    out: list[S.System] = []
    import redis
    from flask_session import Session as FlaskSession  # noqa: F401 - an ImportError skips

    def flask_setup(app: Any) -> None:
        from flask_session import Session

        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(url))
        app.secret_key = S.SECRET
        Session(app)

    out.append(
        S.System(
            "flask-session-redis",
            S.flask_app("bench_flask_session_redis", flask_setup),
            "flask-bare",
            "store-peer",
            scenarios=S.STORE_SCENARIOS,
            label="Flask-Session, RedisSessionInterface",
            version=S._version("Flask-Session"),
            notes=f"SESSION_TYPE=redis, SESSION_REDIS=redis.Redis.from_url({url!r})",
        )
    )
    handler = S.django_handler(
        "django.contrib.sessions.backends.cache",
        None,
        caches={
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
        },
    )
    out.append(
        S.System(
            "django-cache-redis",
            handler,
            "django-bare",
            "store-peer",
            scenarios=S.STORE_SCENARIOS,
            label="Django cache session backend on RedisCache",
            version=S._version("Django"),
            notes=f"SESSION_ENGINE=cache, CACHES default RedisCache at {url}",
        )
    )
    from beaker.middleware import SessionMiddleware as BeakerMiddleware

    beaker = BeakerMiddleware(
        S.session_app("beaker.session", explicit_save=True),
        {
            "session.type": "ext:redis",
            "session.url": url,
            "session.data_serializer": "json",
            "session.validate_key": S.SECRET,
        },
    )
    out.append(
        S.System(
            "beaker-redis",
            beaker,
            "bare",
            "store-peer",
            scenarios=S.STORE_SCENARIOS,
            label="Beaker ext:redis",
            version=S._version("Beaker"),
            notes="session.type=ext:redis, data_serializer=json; save() after a write",
        )
    )
    return out


#: (maker, systems it provides), appended to systems.ADAPTERS by run.py.
MAKERS: list[tuple[Callable[[dict[str, Any]], list[S.System]], tuple[str, ...]]] = [
    (make_flask_adapter, ("flask-adapter",)),
    (make_django_adapter, ("django-adapter",)),
    (make_pyramid_adapter, ("pyramid-adapter", "pyramid-adapter-noreissue")),
    (make_store_peers, STORE_PEERS),
]


# -- analysis ------------------------------------------------------------------------------


def targets(
    overhead: dict[str, float],
    per_repeat: dict[str, list[float]],
    speed: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The adapter and store targets, in the shape of run.py's."""
    out: list[dict[str, Any]] = []
    for adapter, peers in ADAPTER_PEERS.items():
        if f"{adapter}:S0" in overhead:
            value = overhead[f"{adapter}:S0"]
            scaled = value / speed["slowdown"] if speed else None
            reps = per_repeat[f"{adapter}:S0"]
            out.append(
                {
                    "group": adapter,
                    "scenario": "S0",
                    "target": f"{adapter} untouched <= {ADAPTER_UNTOUCHED_US:g} us over its floor",
                    "value": value,
                    "limit": ADAPTER_UNTOUCHED_US,
                    "unit": "us",
                    "range": [min(reps), max(reps)],
                    "pass": value <= ADAPTER_UNTOUCHED_US,
                    "at_anchor_speed": scaled,
                    "pass_at_anchor_speed": scaled is not None and scaled <= ADAPTER_UNTOUCHED_US,
                    "over_bare_us": value - overhead.get(f"{BARE_MIDDLEWARE}:S0", 0.0),
                }
            )
        for scn in ("S1", "S2", "S3", "S4"):
            key = f"{adapter}:{scn}"
            candidates = [(p, overhead[f"{p}:{scn}"]) for p in peers if f"{p}:{scn}" in overhead]
            if key not in overhead or not candidates:
                continue
            peer, peer_ov = min(candidates, key=lambda c: c[1])
            out.append(
                _ratio_target(
                    adapter, scn, key, peer, peer_ov, overhead, per_repeat, ADAPTER_TARGET
                )
            )
            bare = overhead.get(f"{BARE_MIDDLEWARE}:{scn}")
            if bare is not None:
                out[-1]["over_bare_us"] = overhead[key] - bare
    peers = [p for p in STORE_PEERS]
    for scn in S.STORE_SCENARIOS:
        key = f"{STORE_OURS}:{scn}"
        candidates = [(p, overhead[f"{p}:{scn}"]) for p in peers if f"{p}:{scn}" in overhead]
        if key in overhead and candidates:
            peer, peer_ov = min(candidates, key=lambda c: c[1])
            out.append(
                _ratio_target(
                    STORE_OURS, scn, key, peer, peer_ov, overhead, per_repeat, STORE_TARGET
                )
            )
    return out


def _ratio_target(
    group: str,
    scn: str,
    key: str,
    peer: str,
    peer_ov: float,
    overhead: dict[str, float],
    per_repeat: dict[str, list[float]],
    limit: float,
) -> dict[str, Any]:
    ratio = overhead[key] / peer_ov if peer_ov > 0 else float("inf")
    reps = [
        a / b if b > 0 else float("inf")
        for a, b in zip(per_repeat[key], per_repeat[f"{peer}:{scn}"], strict=True)
    ]
    return {
        "group": group,
        "scenario": scn,
        "target": f"{group} {S.SCENARIO_NAMES[scn]} <= {limit:g} x {peer}",
        "ours_us": overhead[key],
        "peer": peer,
        "peer_us": peer_ov,
        "value": ratio,
        "limit": limit,
        "unit": "x",
        "range": [min(reps), max(reps)],
        "pass": ratio <= limit,
    }


def round_trips(
    systems: dict[str, S.System], call: Callable[..., Any], url: str
) -> dict[str, dict[str, float]]:
    """Redis commands per request for each store-mode system, S1 and S2 (the server's
    ``total_commands_processed`` over 50 requests, after one warm-up)."""
    import redis

    client = redis.Redis.from_url(url)
    out: dict[str, dict[str, float]] = {}
    try:
        for name in (STORE_OURS, *STORE_PEERS):
            system = systems.get(name)
            if system is None:
                continue
            out[name] = {}
            for scn in S.STORE_SCENARIOS:
                cookie = system.cookies.get(scn)
                call(system.app, f"/{scn}", cookie)
                before = int(client.info("stats")["total_commands_processed"])
                for _ in range(50):
                    call(system.app, f"/{scn}", cookie)
                after = int(client.info("stats")["total_commands_processed"])
                out[name][scn] = (after - before - 1) / 50  # the first INFO counts
    finally:
        client.close()
    return out
