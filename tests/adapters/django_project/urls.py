"""Views exercising ``request.session`` on wsgisession's Django session engine."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from wsgisession.adapters.django import SessionStore, session_manager


def _record_exists(session_id):
    """Store mode: whether the record of ``session_id`` is in the store (None: cookie mode)."""
    manager = session_manager()
    store = manager.options.store
    if store is None:
        return None
    return store.get(manager.store_key(session_id)) is not None


def get_view(request, key):
    return JsonResponse({"value": request.session.get(key)})


def set_view(request, key):
    request.session[key] = request.GET["value"]
    return JsonResponse({})


def meta_view(request):
    s = request.session
    return JsonResponse(
        {
            "type": type(s).__name__,
            "base": isinstance(s, SessionBase),
            "session_key": s.session_key,
            "id": s.wsgisession.id,
            "is_empty": s.is_empty(),
            "age": s.get_expiry_age(),
            "browser_close": s.get_expire_at_browser_close(),
            "cookie_age": s.get_session_cookie_age(),
            "expiry_date": s.get_expiry_date().isoformat(),
        }
    )


def untouched_view(request):
    s = request.session
    return JsonResponse({"accessed": s.accessed, "modified": s.modified})


def dict_view(request):
    s = request.session
    steps = {"empty": s.is_empty(), "accessed0": s.accessed, "modified0": s.modified}
    s["a"] = 1
    steps["modified1"] = s.modified
    s.update({"b": 2})
    steps["setdefault"] = [s.setdefault("a", 9), list(s.setdefault("c", [3]))]
    steps["in"] = ["a" in s, "zz" in s, s.has_key("a")]
    steps["keys"] = sorted(s.keys())
    steps["values"] = sorted(map(str, s.values()))
    steps["items"] = sorted((k, str(v)) for k, v in s.items())
    steps["pop"] = [s.pop("b"), s.pop("zz", "dflt"), s.pop("zz", default=None)]
    try:
        s.pop("zz")
    except KeyError:
        steps["pop_missing"] = "KeyError"
    del s["a"]
    try:
        s["zz"]
    except KeyError:
        steps["get_missing"] = "KeyError"
    steps["repr"] = repr(s).startswith("<SessionStore <Session id_hash=")
    return JsonResponse(steps)


def nested_view(request):
    """A change in place, no ``modified = True``: Django's middleware must still save."""
    request.session["cart"].append(request.GET["item"])
    return JsonResponse({"modified": request.session.modified})


def new_cart_view(request):
    request.session["cart"] = ["a"]
    return JsonResponse({})


def clear_view(request):
    request.session.clear()
    return JsonResponse({"empty": request.session.is_empty()})


def force_view(request):
    request.session.modified = True
    return JsonResponse({})


def cycle_view(request):
    s = request.session
    before = s.wsgisession.id
    s.cycle_key()
    return JsonResponse(
        {
            "before": before,
            "after": s.wsgisession.id,
            "old_record": _record_exists(before),
            "new_record": _record_exists(s.wsgisession.id),
        }
    )


def flush_view(request):
    s = request.session
    before = s.wsgisession.id
    s.flush()
    if "then" in request.GET:
        s["after"] = request.GET["then"]
    return JsonResponse({"old_record": _record_exists(before), "keys": list(s.keys())})


@csrf_exempt
def login_view(request):
    before = request.session.wsgisession.id
    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if user is None:
        return JsonResponse({"ok": False}, status=403)
    login(request, user)
    return JsonResponse(
        {
            "ok": True,
            "before": before,
            "after": request.session.wsgisession.id,
            "old_record": _record_exists(before),
        }
    )


def whoami_view(request):
    user = request.user
    return JsonResponse({"user": user.username if user.is_authenticated else None})


def logout_view(request):
    before = request.session.wsgisession.id
    logout(request)
    return JsonResponse({"old_record": _record_exists(before)})


def flash_view(request):
    messages.info(request, request.GET["msg"])
    messages.warning(request, "careful")
    return HttpResponseRedirect("/messages")


def messages_view(request):
    return JsonResponse(
        {"messages": [[m.level_tag, str(m)] for m in messages.get_messages(request)]}
    )


def expiry_view(request):
    raw = request.GET["value"]
    if raw == "none":
        value = None
    elif raw.startswith("td"):
        value = datetime.timedelta(seconds=int(raw[2:]))
    elif raw.startswith("dt"):
        value = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=int(raw[2:]))
    else:
        value = int(raw)
    request.session.set_expiry(value)
    request.session["x"] = "y"
    return meta_view(request)


def testcookie_view(request, action):
    s = request.session
    if action == "set":
        s.set_test_cookie()
    elif action == "delete":
        s.delete_test_cookie()
    return JsonResponse({"worked": s.test_cookie_worked()})


def form_view(request):
    if request.method == "POST":
        return HttpResponse("posted " + request.POST.get("text", ""))
    return JsonResponse({"token": get_token(request)})


def interrupted_view(request):
    """A concurrent logout: another request deletes this session's record while this
    one still changes it; Django's middleware turns our UpdateError into a 400."""
    SessionStore(request.session.session_key).delete()
    request.session["late"] = "write"
    return JsonResponse({})


def error_view(request):
    request.session["on_error"] = "yes"
    return HttpResponse("boom", status=500)


async def async_view(request):
    session = request.session
    value = await session.aget("counter", 0)
    await session.aset("counter", value + 1)
    return JsonResponse({"counter": value + 1, "has": await session.ahas_key("counter")})


urlpatterns = [
    path("get/<str:key>", get_view),
    path("set/<str:key>", set_view),
    path("meta", meta_view),
    path("untouched", untouched_view),
    path("dict", dict_view),
    path("nested", nested_view),
    path("cart", new_cart_view),
    path("clear", clear_view),
    path("force", force_view),
    path("cycle", cycle_view),
    path("flush", flush_view),
    path("login", login_view),
    path("whoami", whoami_view),
    path("logout", logout_view),
    path("flash", flash_view),
    path("messages", messages_view),
    path("expiry", expiry_view),
    path("testcookie/<str:action>", testcookie_view),
    path("form", form_view),
    path("interrupted", interrupted_view),
    path("error", error_view),
    path("async", async_view),
]
