"""Views exercising request.session through the wsgisession Django adapter."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from wsgisession import Session
from wsgisession.adapters.django import DjangoSession


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
            "wsgisession": isinstance(s.wsgisession, Session),
            "session_key": s.session_key,
            "is_empty": s.is_empty(),
            "accessed": s.accessed,
            "modified": s.modified,
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
    s["c"].append(4)  # nested change, no modified = True needed
    steps["in"] = ["a" in s, "zz" in s]
    steps["keys"] = sorted(s.keys())
    steps["values"] = sorted(map(str, s.values()))
    steps["items"] = sorted((k, str(v)) for k, v in s.items())
    steps["pop"] = [s.pop("b"), s.pop("zz", "dflt"), s.pop("zz", None)]
    try:
        s.pop("zz")
    except KeyError:
        steps["pop_missing"] = "KeyError"
    del s["a"]
    try:
        s["zz"]
    except KeyError:
        steps["get_missing"] = "KeyError"
    steps["len"] = len(s)
    steps["iter"] = list(s)
    steps["is_empty"] = s.is_empty()
    steps["load"] = s.load()
    steps["repr"] = repr(s).startswith("<DjangoSession <Session id_hash=")
    return JsonResponse(steps)


def clear_view(request):
    request.session.clear()
    return JsonResponse({"len": len(request.session)})


def force_view(request):
    request.session.modified = True
    return JsonResponse({})


def cycle_view(request):
    before = request.session.session_key
    request.session.cycle_key()
    return JsonResponse({"before": before, "after": request.session.session_key})


def flush_view(request):
    before = request.session.session_key
    request.session.flush()
    if "then" in request.GET:
        request.session["after"] = request.GET["then"]
    return JsonResponse(
        {"changed": before != request.session.session_key, "keys": list(request.session)}
    )


@csrf_exempt
def login_view(request):
    before = request.session.session_key
    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if user is None:
        return JsonResponse({"ok": False}, status=403)
    login(request, user)
    return JsonResponse({"ok": True, "before": before, "after": request.session.session_key})


def whoami_view(request):
    user = request.user
    return JsonResponse({"user": user.username if user.is_authenticated else None})


def logout_view(request):
    logout(request)
    return JsonResponse({"user": None})


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


def isinstance_view(request):
    from django.contrib.sessions.backends.base import SessionBase

    return JsonResponse(
        {
            "base": isinstance(request.session, SessionBase),
            "ours": isinstance(request.session, DjangoSession),
        }
    )


urlpatterns = [
    path("get/<str:key>", get_view),
    path("set/<str:key>", set_view),
    path("meta", meta_view),
    path("untouched", untouched_view),
    path("dict", dict_view),
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
    path("isinstance", isinstance_view),
]
