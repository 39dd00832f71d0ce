"""The demo app under real gunicorn: sessions across workers, hosts, a two-phase key
rotation, a restart, and store mode on a real Redis shared by two instances.

Every request is a new ``Connection: close`` TCP connection carrying the cookie by
hand, so any worker of any instance may serve it; ``X-Worker-Pid`` and ``/whoami``
say which one did (see ``wsgi_app.py``).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.deploy.conftest import Client, Gunicorn, http, kid_of, primary_kid

SECRET = "deploy-secret-0123456789abcdefghijklmnopqrstuvwxyz"
OLD = "deploy-old-secret-0123456789abcdefghijklmnopqrstuvwxyz"
NEW = "deploy-new-secret-0123456789abcdefghijklmnopqrstuvwxyz"
KID_OLD = primary_kid([OLD])
KID_NEW = primary_kid([NEW])


def served_by(replies: list, server: Gunicorn) -> Counter[int]:
    """Which workers of ``server`` served ``replies`` (all must be its workers)."""
    pids = Counter(reply.pid for reply in replies)
    workers = server.worker_pids()
    assert set(pids) <= workers, f"pids {set(pids)} are not all workers of {server}: {workers}"
    return pids


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_session_continues_across_workers(gunicorn, worker_class: str) -> None:
    server = gunicorn("app", [SECRET], worker_class=worker_class, workers=3)
    workers = sorted(server.worker_pids())
    assert len(workers) == 3
    client = Client()
    for expected in range(1, 31):
        if expected % 2:  # whichever worker the kernel picks
            reply = client.get(server, "/")
        else:  # round robin over the workers, so that every one of them serves
            target = workers[expected // 2 % 3]
            with server.pinned_to(target):
                reply = client.get(server, "/")
            assert reply.pid == target
        assert reply.views == expected, "the counter must go up by exactly one per visit"
        assert reply.set_cookies, "a changed session must send its cookie"
        token = client.token
        who = client.get(server, "/whoami")
        assert who.json["views"] == expected
        assert who.json["is_new"] is False
        assert who.json["pid"] == who.pid
        assert who.set_cookies == [], "an unchanged session must not resend its cookie"
        assert client.token == token
    pids = served_by(client.history, server)
    assert set(pids) == set(workers), f"not every worker served: {pids}"
    natural = served_by(client.history[::4] + client.history[1::2], server)
    print(f"{worker_class}: requests per worker {dict(pids)}; unpinned {dict(natural)}")


def test_two_hosts_share_sessions(gunicorn) -> None:
    host_a = gunicorn("host-a", [SECRET], worker_class="sync")
    host_b = gunicorn("host-b", [SECRET], worker_class="gthread")
    assert host_a.port != host_b.port
    client = Client()
    a_replies, b_replies = [], []
    for expected in range(1, 21):
        host, replies = (host_a, a_replies) if expected % 2 else (host_b, b_replies)
        replies.append(client.get(host, "/"))
        assert replies[-1].views == expected

    # A login form without its CSRF token is refused on either host; nothing changes.
    before = client.token
    for host in (host_a, host_b):
        refused = client.request(host, "POST", "/login", form={"user": "mallory"})
        assert refused.status == 403 and refused.set_cookies == []
    assert client.token == before

    # Log in on A with the form B served (the token lives in the shared session):
    # login regenerates (a new token), redirects to "/" whatever the Host header says,
    # and is seen on B.
    login = client.submit(host_a, "/login", {"user": "alice"}, form_from=host_b, host="evil.test")
    assert login.status == 303
    assert login.header("Location") == "/"
    assert client.token is not None and client.token != before
    home = client.get(host_b, "/")
    assert home.views == 21
    assert b"<b id=user>alice</b>" in home.body
    assert b"Welcome, alice!" in home.body  # the flash set on A is consumed on B

    # A flash stored on B survives the redirect to A, once.
    assert client.submit(host_b, "/flash", {"msg": "hello-from-b"}).status == 303
    assert b"hello-from-b" in client.get(host_a, "/").body
    again = client.get(host_b, "/")
    assert again.views == 23 and b"hello-from-b" not in again.body

    # GET /logout only shows the form; posting it on B clears the cookie; A then
    # starts afresh.
    form = client.get(host_b, "/logout")
    assert form.status == 200 and form.set_cookies == [] and client.token is not None
    logout = client.submit(host_b, "/logout")
    assert logout.status == 200 and client.token is None
    assert client.get(host_a, "/").views == 1

    served_by(a_replies, host_a)
    served_by(b_replies, host_b)


def test_two_phase_key_rotation_across_hosts(gunicorn) -> None:
    """README "Key rotation" / security.md §1.6, rolled host by host:
    [old] → [old, new] → [new, old] → [new], with each host restarted in turn."""
    host_a = gunicorn("host-a", [OLD], worker_class="sync")
    host_b = gunicorn("host-b", [OLD], worker_class="gthread")
    hosts = {"A": host_a, "B": host_b}
    active = Client()  # comes back at every step, alternating hosts
    returning = Client()  # comes back once, in phase 2, without changing anything
    views = 0

    def visit_both() -> None:
        """One visit to each host; the counter continues, the cookie is sealed with
        the serving host's current key (the first of its list)."""
        nonlocal views
        for label, host in hosts.items():
            views += 1
            assert active.visit(host) == views, f"session lost on {label} {host.secret_keys}"
            assert kid_of(active.token) == primary_kid(host.secret_keys), label

    def opens(host: Gunicorn, token: str) -> bool:
        """Does ``host`` still open this (never re-keyed) token? Read-only request."""
        reply = http(host.port, "GET", "/whoami", token=token)
        who = reply.json
        if who["is_new"]:
            assert who["views"] is None
            assert reply.set_cookies == [], "a rejected cookie must not cause a Set-Cookie"
            return False
        assert who["views"] == 1
        if kid_of(token) == primary_kid(host.secret_keys):
            assert reply.set_cookies == [], "nothing changed: no Set-Cookie"
        else:  # opened with an older key: re-issued under the current one, unchanged
            (cookie,) = reply.set_cookies
            new_token = cookie.split(";", 1)[0].split("=", 1)[1]
            assert kid_of(new_token) == primary_kid(host.secret_keys)
        return True

    # Phase 0: everyone on [old]. A user who will not come back before the old key is
    # dropped keeps an old-key cookie that is replayed (never re-keyed) at every step.
    stale = Client()
    assert stale.visit(host_b) == 1
    stale_token = stale.token
    assert returning.visit(host_a) == 1
    visit_both()
    assert kid_of(active.token) == KID_OLD == kid_of(stale_token)

    # Phase 1, rolled: B gets [old, new] while A still runs [old], then A too.
    # Cookies stay on the old key: it is still first everywhere.
    for label in ("B", "A"):
        hosts[label].restart([OLD, NEW])
        visit_both()
        assert kid_of(active.token) == KID_OLD
        assert opens(host_a, stale_token) and opens(host_b, stale_token)

    # Phase 2, rolled: A gets [new, old] while B still runs [old, new]. A seals with
    # the new key, which B can open (it has it second): nobody is logged out.
    host_a.restart([NEW, OLD])
    visit_both()  # A re-keys to new, B (new is second there) back to old
    assert kid_of(active.token) == KID_OLD
    assert opens(host_a, stale_token) and opens(host_b, stale_token)
    host_b.restart([NEW, OLD])
    visit_both()
    assert kid_of(active.token) == KID_NEW
    assert opens(host_a, stale_token) and opens(host_b, stale_token)
    # A user coming back re-keys with a request that changes nothing.
    old_returning = returning.token
    who = returning.whoami(host_b)
    assert who["views"] == 1 and not who["is_new"]
    assert returning.token != old_returning
    assert kid_of(old_returning) == KID_OLD and kid_of(returning.token) == KID_NEW

    # Phase 3, rolled: A drops the old key while B still has it second.
    host_a.restart([NEW])
    visit_both()
    assert kid_of(active.token) == KID_NEW
    assert not opens(host_a, stale_token), "[new] alone must not open an old-key cookie"
    assert opens(host_b, stale_token)
    host_b.restart([NEW])
    visit_both()
    assert not opens(host_a, stale_token) and not opens(host_b, stale_token)
    # The re-keyed users kept their sessions; the stale one starts afresh.
    assert returning.whoami(host_a)["views"] == 1
    assert active.visit(host_b) == views + 1
    stale.token = stale_token
    assert stale.visit(host_a) == 1
    assert kid_of(stale.token) == KID_NEW


def test_session_survives_restart(gunicorn) -> None:
    server = gunicorn("app", [SECRET], worker_class="sync")
    client = Client()
    for expected in range(1, 6):
        assert client.visit(server) == expected
    before = served_by(client.history, server)
    master = server.pid
    token = client.token

    server.restart()
    assert server.pid != master
    who = client.whoami(server)
    assert who["views"] == 5 and who["is_new"] is False
    assert client.token == token, "nothing changed: the cookie is not resent"
    for expected in range(6, 11):
        assert client.visit(server) == expected
    after = served_by(client.history[5:], server)
    assert not set(before) & set(after), "the restart kept old workers"


def test_store_mode_redis_across_instances(gunicorn, redis_url: str, redis_server) -> None:
    # A builds the middleware (and its RedisStore) in the master and forks (--preload).
    host_a = gunicorn("host-a", [SECRET], store=redis_url, worker_class="sync", preload=True)
    host_b = gunicorn("host-b", [SECRET], store=redis_url, worker_class="gthread")
    for host in (host_a, host_b):
        assert http(host.port, "GET", "/whoami").json["mode"] == "redis"
    redis = redis_server.client()
    try:
        client = Client()
        for expected in range(1, 11):
            host = host_a if expected % 2 else host_b
            assert client.visit(host) == expected
        keys = redis.keys("session:*")
        assert len(keys) == 1, keys
        value = redis.get(keys[0])
        assert b"views" not in value, "the stored record must be sealed"
        assert re.fullmatch(rb"session:[0-9a-f]{64}", keys[0]), "prefix + sha256hex(id)"
        first_key = keys[0]

        # Log in on B: a new id, the old record is gone; A sees the user.
        login = client.submit(host_b, "/login", {"user": "bob"})
        assert login.status == 303
        who = client.whoami(host_a)
        assert who["user"] == "bob" and who["views"] == 10
        keys = redis.keys("session:*")
        assert len(keys) == 1 and keys[0] != first_key

        # Logout on A ends the session everywhere, even for a copy of the cookie.
        copy = client.token
        assert copy is not None
        assert client.submit(host_a, "/logout").status == 200
        assert client.token is None
        assert redis.keys("session:*") == []
        reply = http(host_b.port, "GET", "/whoami", token=copy)
        assert reply.json["is_new"] is True and reply.json["user"] is None
        assert reply.set_cookies == []
        thief = Client(token=copy)
        assert thief.visit(host_b) == 1
        assert thief.token != copy
    finally:
        redis.close()
