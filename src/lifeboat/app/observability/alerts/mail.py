"""E-mail through an SMTP relay (smtplib): STARTTLS on a plain connection (port 587, the
default) or TLS from the start (``ssl``, port 465); the certificate is verified against the
system's CAs or ``ca_file``; a password is sent only over TLS. The body is the message's text."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from lifeboat.app.observability.alerts.channel import SEND_TIMEOUT, DeliveryFailed, failure_line
from lifeboat.app.observability.alerts.message import Message


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    ssl: bool = False
    starttls: bool = True
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = SEND_TIMEOUT

    def __repr__(self) -> str:  # never the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, to={self.to!r})"


def email_message(message: Message, sender: str, to: tuple[str, ...]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(message.at.timestamp(), usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["X-Lifeboat-Event"] = message.event
    mail.set_content(message.text() + "\n")
    return mail


class EmailChannel:
    kind = "email"

    def __init__(self, name: str, settings: SmtpSettings) -> None:
        self.name = name
        self._settings = settings

    def __repr__(self) -> str:
        return f"EmailChannel({self.name!r})"

    def send(self, message: Message) -> None:
        s = self._settings
        context = ssl.create_default_context(cafile=s.ca_file)
        try:
            smtp: smtplib.SMTP
            if s.ssl:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with smtp:
                if s.starttls and not s.ssl:
                    smtp.starttls(context=context)
                if s.username is not None and s.password is not None:
                    smtp.login(s.username, s.password)
                smtp.send_message(email_message(message, s.sender, s.to))
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"SMTP relay refused {len(exc.recipients)} recipient(s)") from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed("the SMTP relay does not offer STARTTLS (or AUTH)") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"SMTP login refused ({exc.smtp_code}): check the username and password") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP relay answered {exc.smtp_code}") from None
        except smtplib.SMTPServerDisconnected:
            raise DeliveryFailed("the SMTP relay closed the connection") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(failure_line(exc)) from None
