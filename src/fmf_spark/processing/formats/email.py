"""E-mail (``.eml``, RFC 5322/MIME) with the standard library's ``email`` package.

The text is a short header block (subject as a heading; From, To, Cc, Date) and the
body: the ``text/plain`` alternative when there is one (what the sender wrote), else
the ``text/html`` one through the HTML converter; transfer encodings and charsets
decoded. ``Received:`` chains, DKIM/ARC signatures and other transport headers never
reach the text. Attachments (and attached e-mails) become child documents; inline
images of the HTML body are counted, not extracted.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import mimetypes
import re
from collections.abc import Iterator
from email.message import EmailMessage, Message
from typing import Any

from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Child, Loaded, LoaderSpec, register_loader
from fmf_spark.processing.loaders import load_html
from fmf_spark.processing.text import ParseFailure

EML = "message/rfc822"

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?")
_SHOWN = ("From", "To", "Cc", "Date")


def header_block(subject: str, fields: list[tuple[str, str]]) -> str:
    """The e-mail's header as markdown: the subject as a heading, then one field a line."""
    lines = [f"# {subject}" if subject else "# (no subject)", ""]
    lines.extend(f"{name}: {value}" for name, value in fields if value)
    return "\n".join(lines)


def iso_date(value: str) -> str:
    """An RFC 5322 date as ISO 8601; the value as it is when it does not parse."""
    try:
        return email.utils.parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return value


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    return " ".join(str(value).split())


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("latin-1")


def safe_name(name: str, fallback: str) -> str:
    """An attachment's file name without any directory part (never a path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".")
    return base or fallback


def _parts(msg: Message) -> Iterator[Message]:
    """The parts of a message, depth first, not descending into attached messages
    (their own attachments belong to them)."""
    for part in msg.iter_parts() if isinstance(msg, EmailMessage) else ():
        yield part
        if part.get_content_type() != "message/rfc822" and part.is_multipart():
            yield from _parts(part)


def _attachments(msg: EmailMessage, body: Message | None) -> Iterator[tuple[str, bytes]]:
    n = 0
    for part in _parts(msg):
        if part is body:
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            inner_msg = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner_msg, Message):
                n += 1
                name = safe_name(filename or "", f"attached-{n}.eml")
                if not name.lower().endswith(".eml"):
                    name += ".eml"
                yield name, inner_msg.as_bytes(policy=email.policy.SMTP)
            continue
        if part.is_multipart():
            continue
        if part.get_content_disposition() != "attachment" and (
            not filename or part.get_content_maintype() == "image"
        ):
            continue  # the other alternative of the body, an inline image
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        n += 1
        ext = mimetypes.guess_extension(content_type) or ""
        yield safe_name(filename or "", f"attachment-{n}{ext}"), data


def load_eml(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """An RFC 5322 e-mail as markdown, its attachments as children."""
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except (ValueError, TypeError, IndexError) as exc:  # the parser is tolerant; rare
        raise ParseFailure(
            f"e-mail: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise ParseFailure("no e-mail headers", code="processing.corrupt")
    subject = _header(msg, "Subject")
    meta = {"subject": subject} if subject else {}
    fields = []
    for name in _SHOWN:
        value = _header(msg, name)
        if name == "Date" and value:
            meta["date"] = iso_date(value)
        elif value:
            meta[name.lower()] = value
        fields.append((name, value))
    message_id = _header(msg, "Message-ID")
    if message_id:
        meta["message_id"] = message_id
    body_part: Any = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        if body_part.get_content_type() == "text/html":
            html = body_part.get_payload(decode=True)
            body = load_html(html).text if isinstance(html, bytes) and html.strip() else ""
            meta["body"] = "html"
        else:
            body = _decoded(body_part)
            meta["body"] = "plain"
    children = [Child(name, payload) for name, payload in _attachments(msg, body_part)]
    if children:
        meta["attachments"] = str(len(children))
    text = header_block(subject, fields) + ("\n\n" + body.strip() if body.strip() else "")
    return Loaded(text, metadata=meta, children=children)


def looks_like_email(data: bytes) -> bool:
    """RFC 5322 headers at the start: From plus a date or id, and a subject or recipient."""
    head = data[:16384]
    end = head.find(b"\n\n")
    if end < 0:
        end = head.find(b"\r\n\r\n")
    if end <= 0:
        return False
    names = set()
    for line in head[:end].splitlines():
        if line[:1] in (b" ", b"\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        names.add(line.split(b":", 1)[0].lower())
    return (
        b"from" in names
        and bool(names & {b"date", b"message-id", b"mime-version", b"received"})
        and bool(names & {b"subject", b"to"})
    )


register_loader(LoaderSpec(EML, load_eml, ("eml", "mime"), sniff=looks_like_email))
