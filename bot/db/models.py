"""Tables of the gateway, the console, the content store and the agency registry.

Written for SQLAlchemy 1.4 in 2.0 style: queries use `select()`; sessions are made with
`future=True`. Tables are prefixed by area: chat_*, content_*, registry_*, staff_*, ops_*.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def TZ() -> DateTime:  # noqa: N802 - a column type factory
    return DateTime(timezone=True)


# ---------------------------------------------------------------- conversations

class Conversation(Base):
    """One person on one channel. `state`: bot -> queued -> assigned -> closed (-> bot)."""

    __tablename__ = "chat_conversation"
    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    user_id = Column(String(128), nullable=False)
    state = Column(String(16), nullable=False, default="bot")
    priority = Column(String(16))  # emergency | at_risk | request
    reason = Column(String(255))
    language = Column(String(8))
    center = Column(String(16))  # hanoi | danang | angiang
    assigned_to = Column(Integer, ForeignKey("staff_account.id"))
    queued_at = Column(TZ())
    last_user_at = Column(TZ())
    unreachable = Column(Boolean, nullable=False, default=False)
    summary = Column(JSON, nullable=False, default=dict)
    notices = Column(JSON, nullable=False, default=dict)  # when each one-off notice was last sent
    # A worker leases a conversation to process its inbox in order; the lease expires on a crash.
    lease_owner = Column(String(64))
    lease_until = Column(TZ())
    created_at = Column(TZ(), nullable=False, default=utcnow)
    updated_at = Column(TZ(), nullable=False, default=utcnow, onupdate=utcnow)
    __table_args__ = (UniqueConstraint("channel", "user_id"), Index("ix_chat_conversation_state", "state"))


class Message(Base):
    """Every turn, inbound and outbound. Inbound rows are the inbox, outbound rows the outbox.

    Inbound `status`: pending -> done (or ignored). Outbound: pending -> sent | failed.
    """

    __tablename__ = "chat_message"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(Integer, ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    direction = Column(String(3), nullable=False)  # in | out
    author = Column(String(16), nullable=False)  # user | bot | counselor | system
    channel = Column(String(16), nullable=False)
    external_id = Column(String(255))  # platform message id (mid / msg_id) of inbound messages
    text = Column(Text)
    payload = Column(JSON)  # quick replies, buttons, attachments, location, handoff
    status = Column(String(16), nullable=False, default="pending")
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(TZ())
    lease_until = Column(TZ())  # an outbound row being sent; back to pending if it expires
    error = Column(Text)
    platform_message_id = Column(String(255))
    account_id = Column(Integer, ForeignKey("staff_account.id"))
    sent_ts = Column(BigInteger)  # the platform's timestamp (ms) of an inbound message
    created_at = Column(TZ(), nullable=False, default=utcnow)
    done_at = Column(TZ())
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_chat_message_channel_external"),
        Index("ix_chat_message_pending", "direction", "status"),
        Index("ix_chat_message_conversation", "conversation_id", "id"),
    )


class Location(Base):
    """A shared location and what it means offline (place, province, border, center, referral)."""

    __tablename__ = "chat_location"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(Integer, ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    message_id = Column(Integer, ForeignKey("chat_message.id", ondelete="SET NULL"))
    source = Column(String(16), nullable=False)  # zalo | messenger | page
    lat = Column(Float, nullable=False)
    lon = Column(Float, nullable=False)
    accuracy_m = Column(Float)
    label = Column(String(255))
    resolved = Column(JSON, nullable=False, default=dict)
    created_at = Column(TZ(), nullable=False, default=utcnow)


class LocationToken(Base):
    """A one-time share-location link: only the hash of the token is stored."""

    __tablename__ = "chat_location_token"
    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    conversation_id = Column(Integer, ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    expires_at = Column(TZ(), nullable=False)
    used_at = Column(TZ())
    created_at = Column(TZ(), nullable=False, default=utcnow)


class Case(Base):
    """One escalation: opened when a conversation is queued, closed with an outcome."""

    __tablename__ = "chat_case"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(Integer, ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    priority = Column(String(16))
    reason = Column(String(255))
    summary = Column(JSON, nullable=False, default=dict)
    outcome = Column(String(64))
    referral = Column(JSON)
    opened_at = Column(TZ(), nullable=False, default=utcnow)
    closed_at = Column(TZ())
    closed_by = Column(Integer, ForeignKey("staff_account.id"))


# ---------------------------------------------------------------- staff

class Account(Base):
    __tablename__ = "staff_account"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    password_hash = Column(String(255), nullable=False)
    role = Column(String(32), nullable=False)  # counselor | supervisor | content_editor | admin
    display_name = Column(String(128))
    center = Column(String(16))
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(TZ(), nullable=False, default=utcnow)
    last_seen_at = Column(TZ())


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "staff_session"
    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    account_id = Column(Integer, ForeignKey("staff_account.id", ondelete="CASCADE"), nullable=False)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(TZ(), nullable=False, default=utcnow)
    last_seen_at = Column(TZ(), nullable=False, default=utcnow)
    expires_at = Column(TZ(), nullable=False)
    revoked_at = Column(TZ())


class LoginFailure(Base):
    """Failed sign-ins, for throttling across replicas."""

    __tablename__ = "staff_login_failure"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False)
    ip = Column(String(64))
    at = Column(TZ(), nullable=False, default=utcnow)
    __table_args__ = (Index("ix_staff_login_failure_username_at", "username", "at"),)


class AuditEntry(Base):
    __tablename__ = "staff_audit"
    id = Column(Integer, primary_key=True)
    at = Column(TZ(), nullable=False, default=utcnow)
    account_id = Column(Integer, ForeignKey("staff_account.id"))
    action = Column(String(64), nullable=False)
    target = Column(String(128))
    detail = Column(JSON)
    __table_args__ = (Index("ix_staff_audit_at", "at"),)


# ---------------------------------------------------------------- content

class Response(Base):
    """The current text of one answer in one language."""

    __tablename__ = "content_response"
    id = Column(Integer, primary_key=True)
    key = Column(String(128), nullable=False)
    lang = Column(String(8), nullable=False)
    text = Column(Text, nullable=False)
    version = Column(Integer, nullable=False, default=1)
    updated_by = Column(String(64))
    updated_at = Column(TZ(), nullable=False, default=utcnow)
    __table_args__ = (UniqueConstraint("key", "lang"),)


class ResponseVersion(Base):
    """Every version of every answer, for diffs and one-step revert."""

    __tablename__ = "content_response_version"
    id = Column(Integer, primary_key=True)
    key = Column(String(128), nullable=False)
    lang = Column(String(8), nullable=False)
    version = Column(Integer, nullable=False)
    text = Column(Text, nullable=False)
    author = Column(String(64))
    created_at = Column(TZ(), nullable=False, default=utcnow)
    __table_args__ = (UniqueConstraint("key", "lang", "version"),)


class SafetyPhrase(Base):
    """A phrase of the deterministic safety screen (folded form, `*` = up to three words)."""

    __tablename__ = "content_safety_phrase"
    id = Column(Integer, primary_key=True)
    phrase = Column(String(255), nullable=False, unique=True)
    priority = Column(String(16), nullable=False)  # emergency | at_risk
    reason = Column(String(255), nullable=False)
    updated_by = Column(String(64))
    updated_at = Column(TZ(), nullable=False, default=utcnow)


class ExampleChange(Base):
    """A change to the training data waiting to be published: an example question added, edited
    or removed, or a new FAQ topic (its examples and answers in ``detail``).

    The accepted examples live in the repository's nlu_data/ files (what the serving model was
    trained on, reviewed in git); these rows are the drafts on top of them. A publish applies the
    pending rows to a copy of the files, and marks them ``published`` only when its model serves.
    """

    __tablename__ = "content_example_change"
    id = Column(Integer, primary_key=True)
    op = Column(String(16), nullable=False)  # add | edit | remove | add_topic
    intent = Column(String(64), nullable=False)
    text = Column(Text)  # the example added, or the new text of an edited one
    old_text = Column(Text)  # the example edited or removed
    detail = Column(JSON)  # add_topic: {title, answers: {vi, en}, examples: [...]}
    state = Column(String(16), nullable=False, default="pending")  # pending | published | discarded
    publish_job_id = Column(Integer, ForeignKey("ops_publish_job.id", ondelete="SET NULL"))
    created_by = Column(String(64))
    created_at = Column(TZ(), nullable=False, default=utcnow)
    decided_by = Column(String(64))
    decided_at = Column(TZ())
    __table_args__ = (Index("ix_content_example_change_state", "state"),)


# ---------------------------------------------------------------- registry

class Agency(Base):
    """A labour-export enterprise from the official list of licences."""

    __tablename__ = "registry_agency"
    id = Column(Integer, primary_key=True)
    name = Column(String(255), nullable=False)
    name_folded = Column(String(255), nullable=False)
    licence_number = Column(String(64), nullable=False, unique=True)
    status = Column(String(16), nullable=False)  # active | suspended | revoked
    licensed_on = Column(Date)
    status_changed_on = Column(Date)
    address = Column(String(512))
    source = Column(String(255))
    updated_at = Column(TZ(), nullable=False, default=utcnow, onupdate=utcnow)


# ---------------------------------------------------------------- operations

class PlatformToken(Base):
    """Tokens that rotate (Zalo's access and single-use refresh token), stored together."""

    __tablename__ = "ops_platform_token"
    name = Column(String(32), primary_key=True)
    access_token = Column(Text, nullable=False)
    refresh_token = Column(Text)
    expires_at = Column(TZ())
    updated_at = Column(TZ(), nullable=False, default=utcnow)


class PublishJob(Base):
    __tablename__ = "ops_publish_job"
    id = Column(Integer, primary_key=True)
    state = Column(String(16), nullable=False, default="queued")
    progress = Column(JSON, nullable=False, default=list)
    gate = Column(JSON)
    error = Column(Text)
    model_path = Column(String(512))
    created_by = Column(String(64))
    created_at = Column(TZ(), nullable=False, default=utcnow)
    finished_at = Column(TZ())
