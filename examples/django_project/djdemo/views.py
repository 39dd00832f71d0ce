"""The demo: a visit counter, login (it cycles the session key), logout (it flushes the
session) and flash messages, on Django's own ``request.session`` API."""

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST


def _page(request, body):
    flashes = format_html_join(
        "",
        '<p class="{}">{}</p>',
        ((m.level_tag, m.message) for m in messages.get_messages(request)),
    )
    return HttpResponse(
        format_html("<!doctype html><title>Django on wsgisession</title>{}{}", flashes, body)
    )


def _csrf(request):
    return format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )


def index(request):
    if request.user.is_authenticated:
        visits = request.session.get("visits", 0) + 1
        request.session["visits"] = visits
        body = format_html(
            '<p>Logged in as {} ({} visits).</p><form id="logout" method="post" action="/logout">'
            "{}<button>Log out</button></form>",
            request.user.get_username(),
            visits,
            _csrf(request),
        )
    else:
        body = format_html('<p>Not logged in. <a href="{}">Log in</a></p>', "/login")
    return _page(request, body)


def login_view(request):
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is not None:
            login(request, user)  # cycle_key(): a new session id (store mode: the old record goes)
            messages.success(request, f"Welcome, {user.get_username()}!")
            return HttpResponseRedirect("/")
        messages.error(request, "Wrong username or password.")
    body = format_html(
        '<form id="login" method="post" action="/login">{}'
        '<input name="username" placeholder="username">'
        '<input name="password" type="password" placeholder="password">'
        "<button>Log in</button></form>",
        _csrf(request),
    )
    return _page(request, body)


@require_POST
def logout_view(request):
    logout(request)  # flush(): the session is destroyed, Django deletes the cookie
    messages.info(request, "Goodbye.")
    return HttpResponseRedirect("/")
