"""A user's whole journey through the Python client generated from the live document
(openapi-python-client). Every call is the generated client's; only the event stream is read here.

Run by python.clients.ts: `python python_flow.py <base url>` with the generated package
`chat_api_client` on the path. Each check is a JSON line on stdout; a line {"mail": ...} asks for
the token of a mail, which comes back as one line on stdin.
"""

import json
import re
import sys
import time
from datetime import datetime, timezone

from chat_api_client import AuthenticatedClient, Client
from chat_api_client.api.auth import (
    forgot_password,
    login,
    logout,
    refresh,
    register,
    resend_verification,
    reset_password_with_link_token,
    verify_email,
)
from chat_api_client.api.chat import create_chat, delete_chat, get_chat, list_chats, list_messages, stream_chat, update_chat
from chat_api_client.api.users import get_me
from chat_api_client.models import (
    CreateChatBody,
    DoneEventData,
    LoginBody,
    RefreshBody,
    RegisterBody,
    StartEventData,
    StreamChatBody,
    TextEventData,
    UpdateChatBody,
    VerifyEmailBody,
)

ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def is_future_date(value):
    """An ISO date after now: a string, or the datetime the client makes of a `date-time` field."""
    if isinstance(value, str) and ISO_DATE.match(value):
        value = datetime.fromisoformat(value)
    return isinstance(value, datetime) and value.tzinfo is not None and value > datetime.now(timezone.utc)


def emit(line):
    print(json.dumps(line, default=repr), flush=True)


def check(name, ok, found=None):
    emit({"check": name, "ok": bool(ok), "found": found})


def equal(name, found, wanted):
    emit({"check": name, "found": found, "wanted": wanted})


def mail_token(email, subject):
    emit({"mail": {"email": email, "subject": subject}})
    return sys.stdin.readline().strip()


def read_events(text):
    """Server-sent events from a whole body: (event name, parsed data); no `event:` line is a `message`."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            field, value = line.split(":", 1)
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def main(url):
    anonymous = Client(base_url=url)
    email = f"python-{int(time.time() * 1000)}@example.com"
    password = "correct horse battery staple"

    registered = register.sync_detailed(client=anonymous, body=RegisterBody(email=email, password=password))
    equal("register answers 200", registered.status_code, 200)
    check("register returns the new user", getattr(registered.parsed, "email", None) == email, registered.parsed)
    refused = register.sync_detailed(client=anonymous, body=RegisterBody(email="someone@example.com", password="short"))
    equal("a too short password is a 422", refused.status_code, 422)
    detail = getattr(refused.parsed, "detail", None)
    check("422 detail is the FastAPI list [{ loc, msg, type }]",
          isinstance(detail, list) and detail and detail[0].msg and "password" in detail[0].loc, detail)

    token = mail_token(email, "Verify your email address")
    equal("verify answers 200", verify_email.sync_detailed(client=anonymous, body=VerifyEmailBody(token=token)).status_code, 200)

    signed_in = login.sync_detailed(client=anonymous, body=LoginBody(username=email, password=password))
    equal("login by form answers 200", signed_in.status_code, 200)
    tokens = signed_in.parsed
    equal("the token is a bearer token", tokens.token_type, "bearer")
    check("login says how long the token lives (expires_in)", tokens.expires_in > 0, tokens.expires_in)
    expires_at = getattr(tokens, "expires_at", None)
    check("login says when the token expires (expires_at)", is_future_date(expires_at), expires_at)
    client = AuthenticatedClient(base_url=url, token=tokens.access_token)

    me = get_me.sync_detailed(client=client)
    equal("me answers 200", me.status_code, 200)
    check("me is the verified user", me.parsed.email == email and me.parsed.is_verified, me.parsed)

    resent = resend_verification.sync_detailed(client=anonymous, email=email)
    equal("resend-verification takes the address as a query parameter alone", resent.status_code, 200)

    created = create_chat.sync_detailed(client=client, body=CreateChatBody(title="From Python"))
    equal("creating a chat answers 200", created.status_code, 200)
    chat_id = created.parsed.id
    check("the new chat", created.parsed.title == "From Python" and created.parsed.messages == [], created.parsed)
    listed = list_chats.sync_detailed(client=client)
    equal("the chat list needs no skip or limit", listed.status_code, 200)
    check("the list has the chat", any(chat.id == chat_id for chat in listed.parsed), listed.parsed)
    renamed = update_chat.sync_detailed(chat_id, client=client, body=UpdateChatBody(title="Renamed"))
    equal("a chat can be renamed", renamed.parsed.title, "Renamed")

    streamed = stream_chat.sync_detailed(client=client, body=StreamChatBody(message="Hello from Python", chat_id=chat_id))
    equal("the stream answers 200", streamed.status_code, 200)
    check("as server-sent events", streamed.headers.get("content-type", "").startswith("text/event-stream"), streamed.headers.get("content-type"))
    check("the generated client gives the stream's text", isinstance(streamed.parsed, str), type(streamed.parsed))
    events = read_events(streamed.parsed)
    names = [name for i, (name, _) in enumerate(events) if i == 0 or events[i - 1][0] != name]
    equal("start, text events, done", names, ["start", "message", "done"])
    start = StartEventData.from_dict(events[0][1])
    done = DoneEventData.from_dict(events[-1][1])
    reply = "".join(TextEventData.from_dict(data).text for name, data in events if name == "message")
    equal("start names the chat", start.chat_id, chat_id)
    check("done says the reply is complete",
          done.chat_id == chat_id and done.message_id == start.message_id and done.status.value == "complete", done)
    check("the text events make a reply", len(reply) > 0, reply)

    chat = get_chat.sync_detailed(chat_id, client=client).parsed
    equal("the chat stored both messages", [[m.role.value, m.content] for m in chat.messages],
          [["user", "Hello from Python"], ["assistant", reply]])
    page = list_messages.sync_detailed(chat_id, client=client).parsed
    equal("the message page needs no limit", len(page.messages), 2)
    equal("the reply has the id the stream gave", page.messages[1].id, done.message_id)

    refreshed = refresh.sync_detailed(client=anonymous, body=RefreshBody(refresh_token=tokens.refresh_token))
    equal("refresh answers 200", refreshed.status_code, 200)
    expires_at = getattr(refreshed.parsed, "expires_at", None)
    check("refresh says when the new token expires (expires_at)", is_future_date(expires_at), expires_at)
    client = AuthenticatedClient(base_url=url, token=refreshed.parsed.access_token)
    equal("the refreshed token works", get_me.sync_detailed(client=client).status_code, 200)

    forgot = forgot_password.sync_detailed(client=anonymous, email=email)
    equal("forgot-password takes the address as a query parameter alone", forgot.status_code, 200)
    new_password = "another correct horse battery"
    token = mail_token(email, "Password Reset Request")
    reset = reset_password_with_link_token.sync_detailed(token, client=anonymous, new_password=new_password)
    equal("reset-password takes the new password as a query parameter alone", reset.status_code, 200)
    equal("a reset signs every session out", get_me.sync_detailed(client=client).status_code, 401)
    again = login.sync_detailed(client=anonymous, body=LoginBody(username=email, password=new_password))
    equal("the new password logs in", again.status_code, 200)
    client = AuthenticatedClient(base_url=url, token=again.parsed.access_token)

    deleted = delete_chat.sync_detailed(chat_id, client=client)
    equal("a chat can be deleted", getattr(deleted.parsed, "detail", None), "Chat deleted successfully")
    equal("and is gone", get_chat.sync_detailed(chat_id, client=client).status_code, 404)

    equal("logout answers 204", logout.sync_detailed(client=client).status_code, 204)
    after = get_me.sync_detailed(client=client)
    equal("the token works no more after logout", after.status_code, 401)
    check("with a WWW-Authenticate challenge", after.headers.get("www-authenticate", "").startswith("Bearer"), after.headers.get("www-authenticate"))


if __name__ == "__main__":
    main(sys.argv[1])
    emit({"done": True})
