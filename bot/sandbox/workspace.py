"""In-memory state of a simulated Rocket.Chat workspace, and the server methods acting on it.

No I/O here: every operation takes the acting user's id, checks what Rocket.Chat checks
(permission → role table, room-scoped roles from subscriptions, room access, settings) and raises
:class:`MeteorError` exactly where the real server method would. Changes are announced to
``listeners`` as :class:`Event` values; the DDP layer turns them into stream frames.

Documents (rooms, subscriptions, messages, reports) are plain dicts shaped like Rocket.Chat's
Mongo documents with ``datetime`` dates (see :mod:`bot.sandbox.wire`). Section references
(A.x, B.x, C.x, F.x) point into ``shared/reference/rocketchat-protocol.md``.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.sandbox.errors import MeteorError, PlainError
from bot.sandbox.permissions import SERVER_PERMISSIONS
from bot.sandbox.uploads import FILE_UPLOAD_PREFIX, encode_uri, image_size, is_valid_content_type, mime_type
from bot.sandbox.wire import IdSource, utc_from_clock

__all__ = [
    "DEFAULT_PERMISSIONS",
    "Event",
    "MessageChanged",
    "RoomNotify",
    "User",
    "UserNotify",
    "Workspace",
]

Doc = dict[str, Any]

# Rocket.Chat's default permission → roles table, the whole of it (see permissions.py).
DEFAULT_PERMISSIONS: dict[str, list[str]] = {perm: list(roles) for perm, roles in SERVER_PERMISSIONS}

_ROLES: list[tuple[str, str, bool]] = [
    # (_id, scope, protected)
    ("admin", "Users", True),
    ("moderator", "Subscriptions", True),
    ("leader", "Subscriptions", True),
    ("owner", "Subscriptions", True),
    ("user", "Users", True),
    ("bot", "Users", True),
    ("app", "Users", True),
    ("guest", "Users", True),
    ("anonymous", "Users", True),
    ("livechat-agent", "Users", True),
]

_COMMANDS: list[tuple[str, str, str]] = [
    ("gimme", "your_message_optional", "Slash_Gimme_Description"),
    ("invite", "@username", "Invite_user_to_join_channel"),
    ("join", "#channel", "Join_the_given_channel"),
    ("kick", "@username", "Remove_someone_from_room"),
    ("leave", "", "Leave_the_current_channel"),
    ("me", "your_message", "Displays_action_text"),
    ("mute", "@username", "Mute_someone_in_room"),
    ("shrug", "your_message_optional", "Slash_Shrug_Description"),
    ("tableflip", "your_message_optional", "Slash_Tableflip_Description"),
    ("topic", "Topic", "Slash_Topic_Description"),
]

_MENTION = re.compile(r"(?:^|\s|>)@([0-9a-zA-Z\-_.]+)")
_CHANNEL = re.compile(r"(?:^|\s|>)#([0-9a-zA-Z\-_.]+)")
# UTF8_User_Names_Validation and UTF8_Channel_Names_Validation (default ``[0-9a-zA-Z-_.]+``).
# getValidRoomName tests the channel pattern without an end anchor, as the server does.
USERNAME_PATTERN = re.compile(r"[0-9a-zA-Z\-_.]+")
ROOM_NAME_PATTERN = re.compile(r"(?!\s+$)[0-9a-zA-Z\-_.]+")
# validateNameChars: a display name may not contain these.
NAME_FORBIDDEN_CHARS = re.compile(r"[<>\\/]")
# validateEmail (lib/emailValidator): something@something.tld, no spaces.
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_TOKEN_LIFETIME = timedelta(days=90)
# A sandbox-only bound on the bytes of every uploaded file it holds in memory (the server writes
# them to its store); an upload past it is refused. The per-file cap is FileUpload_MaxFileSize.
UPLOAD_STORE_BYTES = 256 * 1024 * 1024
# rooms.media's temporary files expire a day after the upload unless confirmed.
_UPLOAD_EXPIRY = timedelta(hours=24)
# sendFileMessage's check(msgData, Match.Maybe({...})): any other key fails the Match.
_FILE_MESSAGE_KEYS = frozenset(
    {"avatar", "emoji", "alias", "groupable", "msg", "tmid", "customFields", "t", "content"}
)
_PIN = {"method": "pinMessage", "action": "Message_pinning"}


@dataclass(frozen=True)
class MessageChanged:
    """A message was inserted or updated → ``stream-room-messages`` (B.1, B.2)."""

    message: Doc


@dataclass(frozen=True)
class RoomNotify:
    """``stream-notify-room`` ``<rid>/<event>`` (B.5)."""

    rid: str
    event: str
    args: list[Any]


@dataclass(frozen=True)
class UserNotify:
    """``stream-notify-user`` ``<uid>/<event>`` (B.7)."""

    uid: str
    event: str
    args: list[Any]


Event = MessageChanged | RoomNotify | UserNotify


@dataclass
class User:
    id: str
    username: str
    name: str
    password: str
    roles: list[str]
    created_at: datetime
    type: Literal["user", "bot"] = "user"
    active: bool = True
    # token → expiry; personal access tokens live in the same place as login tokens (A.7).
    tokens: dict[str, datetime | None] = field(default_factory=dict)
    updated_at: datetime | None = None
    # Personal access tokens by name: {"token", "bypassTwoFactor", "createdAt"}.
    personal_tokens: dict[str, Doc] = field(default_factory=dict)
    # Users.setReason: the registration form's "reason to join" (only with manual approval on).
    reason: str | None = None
    # Users.updateLastLoginById at every successful login (password or resume); absent until then,
    # which is how the admin's "Pending" tab tells a registration awaiting approval.
    last_login: datetime | None = None
    mail: str | None = None  # the address as given (users.create, users.register)
    # emails[0].verified: users.create stores its `verified` flag; registration leaves it false.
    mail_verified: bool = False
    # services.email2fa.enabled: set at creation while Accounts_TwoFactorAuthentication_By_Email_
    # Auto_Opt_In is on (Accounts.insertUserDoc); it takes effect only with a verified address.
    email2fa: bool = False
    # services.emailCode: {"code", "expire", "attempts"} of the last code e-mailed for 2FA.
    email_code: Doc | None = None

    def ref(self) -> Doc:
        return {"_id": self.id, "username": self.username, "name": self.name}

    def email(self) -> str:
        return self.mail or f"{self.username}@sandbox.invalid"


def _md(text: str) -> list[Doc]:
    """A minimal message-parser AST: one paragraph of plain text per line (E.1 not modelled)."""
    return [
        {"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": line}]} for line in text.split("\n")
    ]


def _add_to_set(doc: Doc, key: str, value: Any) -> None:
    """Mongo ``$addToSet``: creates the array if missing."""
    items: list[Any] = doc.setdefault(key, [])
    if value not in items:
        items.append(value)


def _last_message(message: Doc) -> Doc:
    """A room's copy of its last message (the server stores it without the parsed ``md``)."""
    return {k: v for k, v in message.items() if k != "md"}


def _pull(doc: Doc, key: str, value: Any) -> None:
    """Mongo ``$pull``: a missing array stays missing."""
    if key in doc:
        doc[key] = [v for v in doc[key] if v != value]


class Workspace:
    """All state of one simulated workspace. Methods named after the server methods they mimic."""

    def __init__(self, clock: Callable[[], float], seed: int = 0, site_url: str = "") -> None:
        self.clock = clock
        self.ids = IdSource(seed)
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Doc] = {}
        self.subscriptions: dict[tuple[str, str], Doc] = {}
        # The same keys by room (rid -> member ids, in subscription order): a message's unread
        # counts and a room's member list without a scan of every subscription in the workspace,
        # which at thousands of rooms cost the sandbox more than the bot under test. Kept by
        # _subscribe and _drop_subscription; read as a hint, each key checked in ``subscriptions``.
        self._room_members: dict[str, dict[str, None]] = {}
        self._token_owner: dict[str, str] = {}  # a resume token -> the user it last resumed
        # Room bans (8.3+). The server keeps a banned user's subscription with status BANNED and
        # leaves it out of every member and room listing; here it is kept apart, so that every
        # check on ``subscriptions`` sees the user as gone, as the server's member queries do.
        self.banned: dict[tuple[str, str], Doc] = {}
        self.messages: dict[str, Doc] = {}
        # Deleted messages stay here with ``_deletedAt`` (chat.syncMessages reports them).
        self.trash: dict[str, Doc] = {}
        # The same documents by room, as the server's indexes on rid find them: a room's history
        # or sync reads its own messages, not every message of the workspace (which made a
        # catch-up of 1000 rooms quadratic here, unlike on a real server).
        self._room_messages: dict[str, dict[str, Doc]] = {}
        self._room_trash: dict[str, dict[str, Doc]] = {}
        self.permissions: dict[str, Doc] = {}
        self.roles: dict[str, Doc] = {}
        self.settings: dict[str, Doc] = {}
        self.reports: list[Doc] = []
        self.user_reports: list[Doc] = []
        # Uploads (the rocketchat_uploads documents) and their bytes, by file id.
        self.uploads: dict[str, Doc] = {}
        self.upload_data: dict[str, bytes] = {}
        self.upload_store_bytes = UPLOAD_STORE_BYTES
        # What Mailer.send would have sent, oldest first: {"to", "username", "subject", "code", "at"}.
        # Tests read e-mailed 2FA codes here as a person would read their inbox.
        self.mailbox: list[Doc] = []
        self.listeners: list[Callable[[Event], None]] = []
        now = self.now()
        for perm, roles in DEFAULT_PERMISSIONS.items():
            self.permissions[perm] = {"_id": perm, "roles": list(roles), "_updatedAt": now}
        for role_id, scope, protected in _ROLES:
            self.roles[role_id] = {
                "_id": role_id,
                "name": role_id,
                "description": "",
                "mandatory2fa": False,
                "protected": protected,
                "scope": scope,
            }
        self.commands: list[Doc] = [
            {"command": c, "params": p, "description": d, "clientOnly": False} for c, p, d in _COMMANDS
        ]
        self._seed_settings(site_url)

    # ---------------------------------------------------------------- basics

    def now(self) -> datetime:
        return utc_from_clock(self.clock)

    def _emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener(event)

    def _emit_message(self, message: Doc) -> None:
        self._emit(MessageChanged(copy.deepcopy(message)))

    def _seed_settings(self, site_url: str) -> None:
        public: dict[str, Any] = {
            "Message_AllowPinning": True,
            "Message_AllowDeleting": True,
            "Message_AllowEditing": True,
            "Message_ShowDeletedStatus": False,
            "Message_AllowUnrecognizedSlashCommand": False,
            "Message_MaxAllowedSize": 5000,
            "Accounts_ManuallyApproveNewUsers": False,
            "Accounts_RegistrationForm": "Public",
            "Accounts_AllowRealNameChange": True,
            "Accounts_AllowUsernameChange": True,
            "Accounts_AllowEmailChange": True,
            "Accounts_AllowUserProfileChange": True,
            "Site_Url": site_url,
            "Site_Name": "Rocket.Chat",
            "API_Enable_Rate_Limiter": True,
            # server/settings/accounts.ts: these four are public, with these defaults.
            "Accounts_TwoFactorAuthentication_Enabled": True,
            "Accounts_TwoFactorAuthentication_By_Email_Enabled": True,
            "Accounts_TwoFactorAuthentication_Enforce_Password_Fallback": True,
            "Accounts_EmailVerification": False,
            # file-upload/server/startup/settings.ts and the Message_Attachments section.
            "FileUpload_Enabled": True,
            "FileUpload_MaxFileSize": 104857600,
            "FileUpload_MediaTypeWhiteList": "",
            "FileUpload_MediaTypeBlackList": "image/svg+xml",
            "FileUpload_ProtectFiles": True,
            "FileUpload_Enabled_Direct": True,
            "FileUpload_Storage_Type": "GridFS",
            "Message_Attachments_Thumbnails_Enabled": True,
            "Message_Attachments_Thumbnails_Width": 480,
            "Message_Attachments_Thumbnails_Height": 360,
        }
        private: dict[str, Any] = {
            # getPaginationItems: count defaults to API_Default_Count and is clamped to
            # API_Upper_Count_Limit; count=0 is "all" only with API_Allow_Infinite_Count.
            "API_Upper_Count_Limit": 100,
            "API_Default_Count": 50,
            "API_Allow_Infinite_Count": True,
            "API_Enable_Rate_Limiter_Limit_Calls_Default": 10,
            "API_Enable_Rate_Limiter_Limit_Time_Default": 60000,
            "Accounts_TwoFactorAuthentication_RememberFor": 1800,
            "Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In": True,
            "Accounts_TwoFactorAuthentication_By_Email_Code_Expiration": 3600,
            "Accounts_TwoFactorAuthentication_Max_Invalid_Email_Code_Attempts": 5,
            "FileUpload_Restrict_to_room_members": False,
            "FileUpload_Restrict_to_users_who_can_access_room": False,
            "E2E_Enable_Encrypt_Files": True,
        }
        now = self.now()
        for key, value in public.items():
            self.settings[key] = {"_id": key, "value": value, "public": True, "_updatedAt": now}
        for key, value in private.items():
            self.settings[key] = {"_id": key, "value": value, "public": False, "_updatedAt": now}

    def setting(self, key: str) -> Any:
        entry = self.settings.get(key)
        return None if entry is None else entry["value"]

    def setting_doc(self, key: str) -> Doc | None:
        """Settings.findOneNotHiddenById: no setting here is hidden."""
        return self.settings.get(key)

    def update_setting_value(self, key: str, value: Any) -> bool:
        """Settings.updateValueNotHiddenById: an unknown id matches nothing (False); the value is
        stored as sent, with no check against the setting's type, as the server stores it."""
        entry = self.settings.get(key)
        if entry is None:
            return False
        entry["value"] = value
        entry["_updatedAt"] = self.now()
        return True

    def set_setting(self, key: str, value: Any) -> None:
        entry = self.settings.setdefault(key, {"_id": key, "public": True})
        entry["value"] = value
        entry["_updatedAt"] = self.now()

    # ---------------------------------------------------------------- users and auth

    def create_user(
        self, username: str, password: str, roles: Iterable[str], name: str | None = None, bot: bool = False
    ) -> User:
        user = User(
            id=self.ids.id(),
            username=username,
            name=name or username,
            password=password,
            roles=list(roles),
            created_at=self.now(),
            type="bot" if bot else "user",
        )
        user.updated_at = user.created_at
        self.users[user.id] = user
        return user

    def create_personal_access_token(self, uid: str) -> str:
        token = self.ids.secret()
        self.users[uid].tokens[token] = None  # PATs do not expire
        return token

    def insert_user(self, uid: str, data: Doc) -> User:
        """insertOrUpdateUser behind users.create: ``create-user`` is checked by the route."""
        username, email = str(data["username"]), str(data["email"]).lower()
        unavailable = {"method": "insertOrUpdateUser", "field": username}
        if self.user_by_username(username) is not None:
            raise MeteorError("error-field-unavailable", f"{username} is already in use :(", unavailable)
        if any(u.email().lower() == email for u in self.users.values()):
            raise MeteorError(
                "error-field-unavailable",
                f"{email} is already in use :(",
                {"method": "insertOrUpdateUser", "field": email},
            )
        roles = list(data.get("roles") or ["user"])
        unknown = [r for r in roles if r not in self.roles]
        if unknown:
            raise MeteorError("error-invalid-role", "Invalid role", {"method": "insertOrUpdateUser"})
        user = self.create_user(
            username, str(data["password"]), roles, name=str(data["name"]), bot="bot" in roles
        )
        # saveNewUser: the address as given, then emails.0.verified from a boolean `verified`.
        user.mail = str(data["email"])
        user.mail_verified = data.get("verified") is True
        user.email2fa = bool(self.setting("Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In"))
        user.active = bool(data.get("active", True))
        if data.get("joinDefaultChannels", True):
            for room in list(self.rooms.values()):
                if room.get("default") and room["t"] in ("c", "p"):
                    self.add_user_to_room(room, user, None)
        return user

    def register_user(self, data: Doc) -> User:
        """registerUser behind users.register, after the route's own checks (name characters,
        username validity and availability). While ``Accounts_ManuallyApproveNewUsers`` is on the
        account is created inactive and keeps the form's reason (Users.setReason); the server
        then only e-mails the admins — no stream event tells anyone. Setting the username joins
        the default channels, posting a ``uj`` there as for any new account."""
        where = {"method": "registerUser"}
        form = self.setting("Accounts_RegistrationForm")
        if form == "Disabled":
            raise MeteorError("error-user-registration-disabled", "User registration is disabled", where)
        if form == "Secret URL" and data.get("secret") != self.setting("Accounts_RegistrationForm_SecretURL"):
            raise MeteorError(
                "error-user-registration-secret", "User registration is only allowed via Secret URL", where
            )
        if not isinstance(data.get("name"), str):
            raise MeteorError(400, "Match failed")  # check(formData, {name: String, ...})
        email = str(data["email"]).strip().lower()
        if any(u.email() == email for u in self.users.values()):
            raise MeteorError(403, "Email already exists.")
        approve = bool(self.setting("Accounts_ManuallyApproveNewUsers"))
        user = self.create_user(str(data["username"]), str(data["pass"]), ["user"])
        user.name = data["name"].strip()  # Users.setName, even to "" (no username fallback)
        user.mail = email
        user.email2fa = bool(self.setting("Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In"))
        user.active = not approve
        reason = str(data.get("reason") or "").strip()
        if approve and reason:
            user.reason = reason
        for room in list(self.rooms.values()):
            if room.get("default") and room["t"] in ("c", "p"):
                self.add_user_to_room(room, user, None)
        return user

    def save_user_identity(self, uid: str, *, name: str | None = None, username: str | None = None) -> User:
        """saveUserProfile's identity part (users.updateOwnBasicInfo): setRealName and
        setUsername. A new username is written everywhere the server copies it (messages,
        subscriptions, direct rooms, mute lists). Both broadcast ``Users:NameChanged`` on
        ``stream-notify-logged`` — the display name only when ``UI_Use_Real_Name`` is on; this
        sandbox emits nothing there (the bot does not subscribe to it)."""
        where = {"method": "saveUserProfile"}
        user = self.require_user(uid, "saveUserProfile")
        if name is not None and name.strip() != user.name:
            if not self.setting("Accounts_AllowRealNameChange"):
                raise MeteorError("error-action-not-allowed", "Editing user real name is not allowed", where)
            if NAME_FORBIDDEN_CHARS.search(name):
                raise MeteorError("error-could-not-save-identity", "Could not save user identity", where)
        if username is not None and username != user.username:
            if not self.setting("Accounts_AllowUsernameChange"):
                raise MeteorError("error-action-not-allowed", "Editing username is not allowed", where)
            taken = self.user_by_username(username) or self.room_by_id_or_name(name=username)
            if not USERNAME_PATTERN.fullmatch(username) or (taken is not None and taken is not user):
                raise MeteorError("error-could-not-save-identity", "Could not save user identity", where)
        if name is not None and name.strip() != user.name:
            user.name = name.strip()
        if username is not None and username != user.username:
            self._rename_user(user, username)
        user.updated_at = self.now()
        return user

    def save_user(self, uid: str, target_uid: str, data: Doc) -> User:
        """saveUser for an existing account (users.update): validateUserData, then
        validateUserEditing, then the identity, e-mail and roles. ``active`` is not handled here:
        the route calls setUserActiveStatus afterwards, as the server does."""
        where = {"method": "insertOrUpdateUser"}
        editing_myself = uid == target_uid
        if data.get("verified") and editing_myself:
            raise MeteorError(
                "error-action-not-allowed",
                "Editing email verification is not allowed",
                {**where, "action": "Editing_user"},
            )
        can_edit_other = self.has_permission(uid, "edit-other-user-info")
        if not editing_myself and not can_edit_other:
            raise MeteorError(
                "error-action-not-allowed", "Editing user is not allowed", {**where, "action": "Editing_user"}
            )
        roles = data.get("roles")
        if roles is not None:
            if any(role not in self.roles for role in roles):
                raise MeteorError(
                    "error-action-not-allowed",
                    "The field Roles consist invalid role id",
                    {**where, "action": "Assign_role"},
                )
            if "admin" in roles and not self.has_permission(uid, "assign-admin-role"):
                raise MeteorError(
                    "error-action-not-allowed",
                    "Assigning admin is not allowed",
                    {**where, "action": "Assign_admin"},
                )
        username, name, email = data.get("username"), data.get("name"), data.get("email")
        if username and not USERNAME_PATTERN.fullmatch(username):
            raise MeteorError(
                "error-input-is-not-a-valid-field",
                f"{username} is not a valid username",
                {**where, "input": username, "field": "Username"},
            )
        target = self.users.get(target_uid)
        if target is None:
            raise MeteorError("error-invalid-user", "Invalid user")
        # validateUserEditing, in its order.
        if (
            roles is not None
            and set(roles) != set(target.roles)
            and not self.has_permission(uid, "assign-roles")
        ):
            raise MeteorError(
                "error-action-not-allowed", "Assign roles is not allowed", {**where, "action": "Assign_role"}
            )
        update = {**where, "action": "Update_user"}
        if not self.setting("Accounts_AllowUserProfileChange") and not can_edit_other:
            raise MeteorError("error-action-not-allowed", "Edit user profile is not allowed", update)
        others_editor = can_edit_other and not editing_myself
        edits = (
            ("Accounts_AllowUsernameChange", username, target.username, "Edit username is not allowed"),
            ("Accounts_AllowRealNameChange", name, target.name, "Edit user real name is not allowed"),
            ("Accounts_AllowEmailChange", email, target.email(), "Edit user email is not allowed"),
        )
        for setting, new, old, refusal in edits:
            if new is not None and new != old and not self.setting(setting) and not others_editor:
                raise MeteorError("error-action-not-allowed", refusal, update)
        if username is not None or name is not None:
            taken = self.user_by_username(username) if username else None
            if (username is not None and not username) or (taken is not None and taken is not target):
                raise MeteorError(
                    "error-could-not-save-identity", "Could not save user identity", {"method": "saveUser"}
                )
            if name is not None:
                target.name = name.strip()
            if username and username != target.username:
                self._rename_user(target, username)
        if email:
            self._set_email(target, email)
        if roles is not None:
            target.roles = list(roles)
        target.updated_at = self.now()
        return target

    def _set_email(self, user: User, email: str) -> None:
        """setEmail: a syntactically valid address no other account has."""
        address = email.strip().lower()
        if not _EMAIL.fullmatch(address):
            raise MeteorError(
                "error-invalid-email", f"Invalid email {email}", {"function": "RocketChat.setEmail"}
            )
        if any(u.email() == address for u in self.users.values() if u is not user):
            raise MeteorError(
                "error-field-unavailable",
                f"{address} is already in use :(",
                {"function": "RocketChat.setEmail", "field": address},
            )
        user.mail = address

    def _rename_user(self, user: User, username: str) -> None:
        old = user.username
        user.username = username
        for message in self.messages.values():
            if message["u"]["_id"] == user.id:
                message["u"]["username"] = username
        for (rid, member), sub in self.subscriptions.items():
            if member == user.id:
                sub["u"]["username"] = username
            room = self.rooms[rid]
            if room["t"] == "d" and member != user.id and sub.get("name") == old:
                sub["name"] = sub["fname"] = username
        for room in self.rooms.values():
            for key in ("usernames", "muted", "unmuted"):
                if old in room.get(key, []):
                    room[key] = [username if u == old else u for u in room[key]]

    def mark_logged_in(self, user: User) -> None:
        """Users.updateLastLoginById, run by validateLoginAttempt for every login that succeeds."""
        user.last_login = self.now()

    def delete_user(self, uid: str, target_uid: str) -> None:
        """deleteUser (``delete-user`` is checked by the route): subscriptions go with the user."""
        target = self.users.get(target_uid)
        if target is None:
            raise MeteorError("error-invalid-user", "Invalid user", {"method": "deleteUser"})
        for rid, member in list(self.subscriptions):
            if member == target_uid:
                room = self.rooms[rid]
                self._drop_subscription(rid, member)
                room["usersCount"] = max(0, room.get("usersCount", 1) - 1)
        del self.users[target_uid]

    def check_two_factor(self, user: User, token: str, code: str | None, method: str | None) -> None:
        """checkCodeForUser for a user with no TOTP or e-mail 2FA: the password fallback.

        Skipped when 2FA is off, for a personal access token made with ``bypassTwoFactor``, and
        for ``RememberFor`` seconds after the user was created, as the server does."""
        if not self.setting("Accounts_TwoFactorAuthentication_Enabled"):
            return
        if any(t["token"] == token and t["bypassTwoFactor"] for t in user.personal_tokens.values()):
            return
        remember = int(self.setting("Accounts_TwoFactorAuthentication_RememberFor") or 0)
        if remember > 0 and user.created_at + timedelta(seconds=remember) >= self.now():
            return
        if self.email_two_factor_enabled(user):
            # getSecondFactorMethod: "password" is no check method by name, so the first enabled
            # one (e-mail) is chosen even when the caller says x-2fa-method: password.
            self._check_email_code(user, code)
            return
        if not self.setting("Accounts_TwoFactorAuthentication_Enforce_Password_Fallback"):
            return
        details: Doc = {"method": "password", "codeGenerated": False, "availableMethods": []}
        if not code:
            raise MeteorError("totp-required", "TOTP Required", details)
        digest = hashlib.sha256(user.password.encode()).hexdigest()
        if method not in (None, "password") or code.lower() != digest:
            raise MeteorError("totp-invalid", "TOTP Invalid", details)

    def email_two_factor_enabled(self, user: User) -> bool:
        """EmailCheck.isEnabled: the setting, the user's email2fa flag, and a verified address."""
        return bool(
            self.setting("Accounts_TwoFactorAuthentication_By_Email_Enabled")
            and user.email2fa
            and user.mail is not None
            and user.mail_verified
        )

    def login_two_factor(self, user: User, code: str | None) -> None:
        """The ``onValidateLogin`` 2FA hook (app/2fa/server/loginHandler.ts): checkCodeForUser with
        the password fallback disabled, so only a user with e-mail (or TOTP) 2FA is asked."""
        if not self.setting("Accounts_TwoFactorAuthentication_Enabled"):
            return
        if self.email_two_factor_enabled(user):
            self._check_email_code(user, code)

    def _check_email_code(self, user: User, code: str | None) -> None:
        """checkCodeForUser with EmailCheck selected: processInvalidCode (e-mail a code unless a
        live one exists) before looking at the code, then verify it."""
        now = self.now()
        limit = self.setting("Accounts_TwoFactorAuthentication_Max_Invalid_Email_Code_Attempts")
        max_attempts = int(limit or 0)
        if user.email_code is not None and user.email_code["expire"] < now:
            user.email_code = None  # removeExpiredEmailCodeOfUserId
        live = user.email_code
        details: Doc
        # "a code with more than 5 minutes to expire", as the server computes it (now - 5 min).
        fresh = live is not None and live["expire"] > now - timedelta(minutes=5)
        if live is not None and fresh and live["attempts"] < max_attempts:
            details = {"emailOrUsername": user.username, "codeGenerated": False}
            details["codeExpires"] = live["expire"]
        else:
            self._send_email_code(user)
            details = {"codeGenerated": True, "emailOrUsername": user.username}
        details = {"method": "email", **details, "availableMethods": ["email"]}
        if not code:
            raise MeteorError("totp-required", "TOTP Required", details)
        digits = re.sub(r"\D", "", code)
        stored = user.email_code
        if stored is not None and stored["expire"] >= now and digits == stored["code"]:
            user.email_code = None  # removeEmailCodeOfUserId: a code works once
            return
        if stored is not None:
            stored["attempts"] += 1
        if stored is not None and stored["attempts"] >= max_attempts:
            raise MeteorError("totp-max-attempts", "TOTP Maximun Failed Attempts Reached", details)
        raise MeteorError("totp-invalid", "TOTP Invalid", details)

    def _send_email_code(self, user: User) -> None:
        """EmailCheck.sendEmailCode: six digits, stored (hashed, on the server) with its expiry and
        zero attempts, mailed to every verified address."""
        code = self.ids.digits(6)
        seconds = int(self.setting("Accounts_TwoFactorAuthentication_By_Email_Code_Expiration") or 3600)
        user.email_code = {"code": code, "expire": self.now() + timedelta(seconds=seconds), "attempts": 0}
        self.mailbox.append(
            {
                "to": user.mail,
                "username": user.username,
                "subject": "Authentication code",
                "code": f"{code[:3]}-{code[3:]}",  # the mail shows it as 123-456
                "at": self.now(),
            }
        )

    def email_codes_for(self, username: str) -> list[str]:
        """The 2FA codes e-mailed to this user so far, oldest first, as the mail shows them."""
        return [str(m["code"]) for m in self.mailbox if m["username"] == username]

    def generate_personal_access_token(self, uid: str, name: str, bypass_two_factor: bool) -> str:
        """personalAccessTokens:generateToken."""
        where = {"method": "personalAccessTokens:generateToken"}
        if not self.has_permission(uid, "create-personal-access-tokens"):
            raise MeteorError("not-authorized", "Not Authorized", where)
        user = self.require_user(uid, "personalAccessTokens:generateToken")
        if name in user.personal_tokens:
            raise MeteorError("error-token-already-exists", "A token with this name already exists", where)
        token = self.create_personal_access_token(uid)
        user.personal_tokens[name] = {
            "token": token,
            "bypassTwoFactor": bypass_two_factor,
            "createdAt": self.now(),
        }
        return token

    def set_permission_roles(self, permission: str, roles: list[str]) -> None:
        """Permissions.setRoles: what permissions.update does for each entry (it overwrites)."""
        entry = self.permissions[permission]
        entry["roles"] = list(dict.fromkeys(roles))
        entry["_updatedAt"] = self.now()

    def add_users_to_room(self, uid: str, rid: str, target_uids: list[str]) -> None:
        """addUsersToRoom: who may invite whom (channels.invite / groups.invite)."""
        inviter = self.require_user(uid, "addUsersToRoom")
        room = self.rooms.get(rid)
        if room is None:
            raise MeteorError("error-invalid-room", "Invalid room", {"method": "addUsersToRoom"})
        if room["t"] == "d":
            raise MeteorError(
                "error-cant-invite-for-direct-room",
                "Can't invite user to direct rooms",
                {"method": "addUsersToRoom"},
            )
        in_room = (rid, uid) in self.subscriptions
        allowed = (
            (in_room and self.has_permission(uid, "add-user-to-joined-room", rid))
            or (room["t"] == "c" and self.has_permission(uid, "add-user-to-any-c-room"))
            or (room["t"] == "p" and self.has_permission(uid, "add-user-to-any-p-room"))
        )
        if not allowed:
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "addUsersToRoom"})
        for target_uid in target_uids:
            target = self.users.get(target_uid)
            if target is None:
                raise MeteorError("error-invalid-user", "Invalid user", {"method": "addUsersToRoom"})
            if (rid, target_uid) in self.banned:
                # 8.3+: an invitation does not lift a ban; the inviter must unban first.
                raise MeteorError(
                    "error-user-is-banned", "User is banned from this room", {"method": "addUsersToRoom"}
                )
            # Someone already in the room is skipped (the server tells the inviter ephemerally).
            self.add_user_to_room(room, target, inviter)

    def user_by_username(self, username: str) -> User | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def user_by_username_ignoring_case(self, username: str) -> User | None:
        """Users.findOneByUsernameIgnoringCase."""
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def user_by_token(self, uid: str | None, token: str | None) -> User | None:
        """REST auth: ``X-User-Id`` must own ``X-Auth-Token`` and the token must be live."""
        if not uid or not token:
            return None
        user = self.users.get(uid)
        if user is None or not self._token_live(user, token):
            return None
        return user

    def user_by_resume(self, token: str) -> User | None:
        # Whose token it was last time is only a hint, checked again: a thousand members logging
        # in need not each scan every account.
        hinted = self.users.get(self._token_owner.get(token, ""))
        if hinted is not None and self._token_live(hinted, token):
            return hinted
        user = next((u for u in self.users.values() if self._token_live(u, token)), None)
        if user is not None:
            self._token_owner[token] = user.id
        return user

    def _token_live(self, user: User, token: str) -> bool:
        if token not in user.tokens:
            return False
        expires = user.tokens[token]
        return expires is None or expires > self.now()

    def login_with_password(self, login: str, password: str | None = None, digest: str | None = None) -> User:
        """Password check as Meteor's accounts-password does it; errors per A.7 / C.5."""
        user = next((u for u in self.users.values() if login in (u.username, u.email())), None)
        if user is None:
            raise MeteorError(403, "User not found")
        if digest is None:
            digest = hashlib.sha256((password or "").encode()).hexdigest()
        if digest.lower() != hashlib.sha256(user.password.encode()).hexdigest():
            raise MeteorError(403, "Incorrect password")
        if not user.active:
            raise MeteorError("error-user-is-not-activated", "User is not activated")
        return user

    def validate_password_login(self, user: User, code: str | None) -> None:
        """validateLoginAttempt after the password matched: the e-mail verification rule for
        non-admins (only with Accounts_EmailVerification on), then the 2FA hook."""
        if (
            "admin" not in user.roles
            and self.setting("Accounts_EmailVerification") is True
            and not user.mail_verified
        ):
            raise MeteorError("error-invalid-email", "Invalid email __email__")
        self.login_two_factor(user, code)

    def new_login_token(self, user: User) -> tuple[str, datetime]:
        token = self.ids.secret()
        expires = self.now() + _TOKEN_LIFETIME
        user.tokens[token] = expires
        return token, expires

    def require_user(self, uid: str, method: str) -> User:
        user = self.users.get(uid)
        if user is None:
            raise MeteorError("error-invalid-user", "Invalid user", {"method": method})
        return user

    # ---------------------------------------------------------------- permissions and access

    def user_roles(self, uid: str, rid: str | None = None) -> set[str]:
        user = self.users.get(uid)
        roles = set(user.roles) if user else set()
        if rid is not None:
            sub = self.subscriptions.get((rid, uid))
            if sub is not None:
                roles |= set(sub.get("roles", []))
        return roles

    def has_permission(self, uid: str, permission: str, rid: str | None = None) -> bool:
        """Global roles, plus room-scoped roles (owner/moderator) only inside ``rid`` (C.6)."""
        entry = self.permissions.get(permission)
        if entry is None:
            return False
        return bool(self.user_roles(uid, rid) & set(entry["roles"]))

    def grant_permission_to_role(self, permission: str, role: str) -> None:
        """What ``permissions.update`` does when ``rcmod setup`` grants the bot role a permission."""
        entry = self.permissions.setdefault(permission, {"_id": permission, "roles": []})
        if role not in entry["roles"]:
            entry["roles"].append(role)
        entry["_updatedAt"] = self.now()

    def can_access_room(self, uid: str, room: Doc) -> bool:
        """canAccessRoom (B.2): public channels with ``view-c-room``, otherwise a subscription.
        A user banned from the room has no access to it (8.3+ validators), public or not."""
        if (room["_id"], uid) in self.banned:
            return False
        if room["t"] == "c" and self.has_permission(uid, "view-c-room"):
            return True
        return (room["_id"], uid) in self.subscriptions

    def room_by_id_or_name(self, rid: str | None = None, name: str | None = None) -> Doc | None:
        if rid:
            return self.rooms.get(rid)
        if name:
            return next((r for r in self.rooms.values() if r.get("name") == name), None)
        return None

    def subscriptions_of(self, uid: str) -> list[Doc]:
        return [s for (rid, u), s in self.subscriptions.items() if u == uid]

    def members_of(self, rid: str) -> list[str]:
        return [u for u in self._room_members.get(rid, ()) if (rid, u) in self.subscriptions]

    def _drop_subscription(self, rid: str, uid: str) -> Doc | None:
        self._room_members.get(rid, {}).pop(uid, None)
        return self.subscriptions.pop((rid, uid), None)

    # ---------------------------------------------------------------- rooms and subscriptions

    def create_room(
        self,
        t: Literal["c", "p"],
        name: str,
        owner: User | None,
        members: Iterable[str],
        *,
        rid: str | None = None,
    ) -> Doc:
        """A seeded room (``rid`` fixes its id, as the server's startup does for ``GENERAL``)."""
        now = self.now()
        room: Doc = {
            "_id": rid or self.ids.id(),
            "t": t,
            "name": name,
            "fname": name,
            "msgs": 0,
            "usersCount": 0,
            "customFields": {},
            "broadcast": False,
            "encrypted": False,
            "ts": now,
            "ro": False,
            "default": name == "general",
            "sysMes": True,
            "_updatedAt": now,
        }
        if owner is not None:
            room["u"] = {"_id": owner.id, "username": owner.username}
        self.rooms[room["_id"]] = room
        for uid in members:
            roles = ["owner"] if owner is not None and uid == owner.id else []
            self._subscribe(room, self.users[uid], roles=roles, notify=False)
        return room

    def _subscribe(
        self,
        room: Doc,
        user: User,
        roles: list[str] | None = None,
        notify: bool = True,
        name: str | None = None,
    ) -> Doc:
        now = self.now()
        sub: Doc = {
            "_id": self.ids.id(),
            "open": True,
            "alert": False,
            "unread": 0,
            "userMentions": 0,
            "groupMentions": 0,
            "ts": now,
            "rid": room["_id"],
            # A DM subscription is named after the other member.
            "name": name or room.get("name", ""),
            "fname": name or room.get("fname", room.get("name", "")),
            "t": room["t"],
            "u": {"_id": user.id, "username": user.username, "name": user.name},
            "ls": now,
            "_updatedAt": now,
        }
        if roles:
            sub["roles"] = list(roles)
        self.subscriptions[(room["_id"], user.id)] = sub
        self._room_members.setdefault(room["_id"], {})[user.id] = None
        room["usersCount"] = room.get("usersCount", 0) + 1
        room["_updatedAt"] = now
        if notify:
            self._emit(UserNotify(user.id, "subscriptions-changed", ["inserted", copy.deepcopy(sub)]))
            self._emit(UserNotify(user.id, "rooms-changed", ["inserted", copy.deepcopy(room)]))
        return sub

    def create_channel(
        self,
        uid: str,
        t: Literal["c", "p"],
        name: str,
        members: list[str],
        *,
        read_only: bool = False,
        exclude_self: bool = False,
        extra: Doc | None = None,
    ) -> Doc:
        """createChannelMethod / createPrivateGroupMethod and then createRoom: ``members`` are
        usernames (unknown ones are skipped, as Users.findUsersByUsernames skips them); the
        creator joins as owner unless ``exclude_self``. No system message is posted: createRoom
        only inserts subscriptions and announces them."""
        method = "createChannel" if t == "c" else "createPrivateGroup"
        owner = self.require_user(uid, method)
        if not self.has_permission(uid, "create-c" if t == "c" else "create-p"):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": method})
        if not name.strip():
            raise MeteorError("error-invalid-name", "Invalid name", {"function": "RocketChat.createRoom"})
        valid_name = self._valid_room_name(name.strip())
        usernames = list(dict.fromkeys(members))
        if not exclude_self and owner.username not in usernames:
            usernames.append(owner.username)
        extra = dict(extra or {})
        if extra.get("broadcast"):
            read_only = True
            extra.pop("reactWhenReadOnly", None)
        now = self.now()
        room: Doc = {
            "_id": self.ids.id(),
            "fname": name,
            "_updatedAt": now,
            **extra,
            "name": valid_name,
            "t": t,
            "msgs": 0,
            "usersCount": 0,
            "u": {"_id": owner.id, "username": owner.username, "name": owner.name},
            "ts": now,
            "ro": read_only is True,
        }
        self.rooms[room["_id"]] = room
        for username in usernames:
            member = self.user_by_username(username)
            if member is None:
                continue
            roles = ["owner"] if member.id == owner.id else None
            self._subscribe(room, member, roles=roles)
        return room

    def _valid_room_name(self, name: str) -> str:
        """getValidRoomName with special characters off: the channel pattern, then uniqueness."""
        where = {"function": "RocketChat.getValidRoomName", "channel_name": name}
        if not ROOM_NAME_PATTERN.match(name):
            raise MeteorError("error-invalid-room-name", f"{name} is not a valid room name.", where)
        if self.room_by_id_or_name(name=name) is not None:
            raise MeteorError("error-duplicate-channel-name", f"A channel with name '{name}' exists", where)
        return name

    def add_user_to_room(self, room: Doc, user: User, inviter: User | None) -> None:
        """addUserToRoom: subscription (+ stream notices) and an ``au``/``uj`` system message (B.7)."""
        if (room["_id"], user.id) in self.subscriptions:
            return
        self._subscribe(room, user)
        if inviter is not None and inviter.id != user.id:
            self._system_message("au", room, inviter, user.username)
        else:
            self._system_message("uj", room, user, user.username)

    def join_room(self, uid: str, rid: str, join_code: str | None = None) -> Doc:
        user = self.require_user(uid, "joinRoom")
        room = self.rooms.get(rid)
        if room is None:
            raise MeteorError("error-invalid-room", "Invalid room", {"method": "joinRoom"})
        if room["t"] != "c" or not self.can_access_room(uid, room):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "joinRoom"})
        code = room.get("joinCode")
        if code and code != join_code and not self.has_permission(uid, "join-without-join-code"):
            raise MeteorError("error-code-invalid", "Invalid Room Password", {"method": "joinRoom"})
        self.add_user_to_room(room, user, None)
        return room

    def create_direct(self, uid: str, usernames: list[str], exclude_self: bool = False) -> Doc:
        """createDirectMessage: rid is the sorted uids concatenated, as Rocket.Chat does. With
        ``exclude_self`` the caller only opens the room for the others (an admin creating a DM
        between two users): the caller is neither a member nor subscribed."""
        me = self.require_user(uid, "createDirectMessage")
        if not self.has_permission(uid, "create-d"):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "createDirectMessage"})
        others: list[User] = []
        for name in usernames:
            other = self.user_by_username(name)
            if other is None:
                raise MeteorError("error-invalid-user", "Invalid user", {"method": "createDirectMessage"})
            if other.id != me.id:
                others.append(other)
        if exclude_self and not others:
            raise MeteorError("error-invalid-user", "Invalid user", {"method": "createDirectMessage"})
        member_ids = {o.id for o in others} if exclude_self else {me.id, *(o.id for o in others)}
        members = sorted(member_ids, key=lambda i: self.users[i].username)
        rid = "".join(sorted(members))
        room = self.rooms.get(rid)
        if room is None:
            now = self.now()
            room = {
                "_id": rid,
                "t": "d",
                "usernames": [self.users[m].username for m in members],
                "uids": members,
                "msgs": 0,
                "usersCount": 0,  # counted by _subscribe
                "ts": now,
                "_updatedAt": now,
            }
            self.rooms[rid] = room
            for member in members:
                others_names = ", ".join(self.users[m].username for m in members if m != member)
                self._subscribe(room, self.users[member], name=others_names or self.users[member].username)
        return room

    def save_room_settings(self, uid: str, rid: str, changes: dict[str, Any]) -> None:
        """saveRoomSettings for the settings a moderation bot uses (F.2, C.4)."""
        user = self.require_user(uid, "saveRoomSettings")
        room = self.rooms.get(rid)
        if room is None:
            raise MeteorError("error-invalid-room", "Invalid room", {"method": "saveRoomSettings"})
        if not self.has_permission(uid, "edit-room", rid):
            raise MeteorError(
                "error-action-not-allowed",
                "Editing room is not allowed",
                {"method": "saveRoomSettings", "action": "Editing_room"},
            )
        known = {
            "roomName",
            "roomAnnouncement",
            "roomTopic",
            "roomDescription",
            "readOnly",
            "systemMessages",
            "default",
        }
        unknown = [k for k in changes if k not in known]
        if unknown or not changes:
            raise MeteorError(
                "error-invalid-settings", "Invalid settings provided", {"method": "saveRoomSettings"}
            )
        if room.get("broadcast") and changes.get("readOnly"):
            raise MeteorError(
                "error-action-not-allowed",
                "Editing readOnly/reactWhenReadOnly are not allowed for broadcast rooms",
                {"method": "saveRoomSettings", "action": "Editing_room"},
            )
        for key, value in changes.items():
            if key == "roomName":
                self._rename_room(room, user, str(value))
            elif key == "roomAnnouncement":
                room["announcement"] = value
                self._system_message("room_changed_announcement", room, user, str(value))
            elif key == "roomTopic":
                room["topic"] = value
                self._system_message("room_changed_topic", room, user, str(value))
            elif key == "roomDescription":
                room["description"] = value
                self._system_message("room_changed_description", room, user, str(value))
            elif key == "readOnly":
                # The saver runs only on a change (value !== room.ro); saveRoomReadOnly then posts
                # `room-set-read-only` / `room-removed-read-only` with an empty msg.
                if bool(value) != bool(room.get("ro")):
                    room["ro"] = bool(value)
                    kind = "room-set-read-only" if value else "room-removed-read-only"
                    self._system_message(kind, room, user, "")
            elif key == "systemMessages":
                room["sysMes"] = value
            elif key == "default":
                room["default"] = bool(value)
        room["_updatedAt"] = self.now()
        self._room_changed(room)

    def _rename_room(self, room: Doc, user: User, display_name: str) -> None:
        """saveRoomName: a channel or group takes the name as both handle and display name
        (getValidRoomName, special characters off); a discussion changes its display name only.
        Subscriptions follow, and an ``r`` system message carries the new display name."""
        where = {"function": "RocketChat.saveRoomdisplayName"}
        if room["t"] not in ("c", "p"):  # roomDirectives.preventRenaming for DMs and livechat
            raise MeteorError("error-not-allowed", "Not allowed", where)
        if display_name == room.get("name") or not display_name.strip():
            return
        subs = [s for (rid, _u), s in self.subscriptions.items() if rid == room["_id"]]
        if room.get("prid"):
            room["fname"] = display_name
            for sub in subs:
                sub["fname"] = display_name
        else:
            if not ROOM_NAME_PATTERN.match(display_name):
                raise MeteorError(
                    "error-invalid-room-name",
                    f"{display_name} is not a valid room name.",
                    {"function": "RocketChat.getValidRoomName", "channel_name": display_name},
                )
            other = self.room_by_id_or_name(name=display_name)
            if other is not None and other["_id"] != room["_id"]:
                raise MeteorError(
                    "error-duplicate-channel-name",
                    f"A channel with name '{display_name}' exists",
                    {"function": "RocketChat.getValidRoomName", "channel_name": display_name},
                )
            if self.user_by_username(display_name) is not None:
                raise MeteorError(
                    "error-duplicate-handle",
                    f"A room, team or user with name '{display_name}' already exists",
                    {"function": "RocketChat.updateRoomName", "handle": display_name},
                )
            room["name"] = room["fname"] = display_name
            for sub in subs:
                sub["name"] = sub["fname"] = display_name
                sub["alert"] = True
        for sub in subs:  # notifyOnSubscriptionChangedByRoomId
            sub["_updatedAt"] = self.now()
            self._emit(UserNotify(sub["u"]["_id"], "subscriptions-changed", ["updated", copy.deepcopy(sub)]))
        self._system_message("r", room, user, display_name)

    def _room_changed(self, room: Doc) -> None:
        """notifyOnRoomChanged: every member's client hears ``rooms-changed`` ``updated``."""
        for member in self.members_of(room["_id"]):
            self._emit(UserNotify(member, "rooms-changed", ["updated", copy.deepcopy(room)]))

    def mute_user(self, uid: str, rid: str, username: str) -> None:
        """muteUserInRoom (rooms.muteUser, 6.8+). In a read-only room the user only loses an
        earlier unmute (``unmuted``); elsewhere the username joins the room's ``muted`` list."""
        room, target, actor = self._mute_checks(uid, rid, username, "muteUserInRoom")
        if room.get("ro"):
            _pull(room, "unmuted", target.username)  # Rooms.muteReadOnlyUsernameByRoomId
        else:
            _add_to_set(room, "muted", target.username)  # Rooms.muteUsernameByRoomId
            _pull(room, "unmuted", target.username)
        self._after_mute("user-muted", room, target, actor)

    def unmute_user(self, uid: str, rid: str, username: str) -> None:
        """unmuteUserInRoom (rooms.unmuteUser). Unmuting someone who is not muted still succeeds
        and still posts ``user-unmuted``; in a read-only room it lets the user post (``unmuted``)."""
        room, target, actor = self._mute_checks(uid, rid, username, "unmuteUserInRoom")
        _pull(room, "muted", target.username)
        if room.get("ro"):
            _add_to_set(room, "unmuted", target.username)  # Rooms.unmuteReadOnlyUsernameByRoomId
        self._after_mute("user-unmuted", room, target, actor)

    def _mute_checks(self, uid: str, rid: str, username: str, method: str) -> tuple[Doc, User, User]:
        """The checks of (un)muteUserInRoom, in the server's order: the permission comes first,
        so someone without ``mute-user`` learns nothing about the room."""
        where = {"method": method}
        if not self.has_permission(uid, "mute-user", rid):
            raise MeteorError("error-not-allowed", "Not allowed", where)
        room = self.rooms.get(rid)
        if room is None:
            raise MeteorError("error-invalid-room", "Invalid room", where)
        if room["t"] not in ("c", "p"):  # allowMemberAction(room, MUTE) is false for direct rooms
            raise MeteorError(
                "error-invalid-room-type",
                f"{room['t']} is not a valid room type",
                {**where, "type": room["t"]},
            )
        target = self.user_by_username(username)
        # Subscriptions.findOneByRoomIdAndUsername comes before the user lookup.
        if target is None or (rid, target.id) not in self.subscriptions:
            raise MeteorError("error-user-not-in-room", "User is not in this room", where)
        actor = self.require_user(uid, method)
        return room, target, actor

    def _after_mute(self, kind: str, room: Doc, target: User, actor: User) -> None:
        room["_updatedAt"] = self.now()
        self._system_message(kind, room, actor, target.username)
        self._room_changed(room)

    def add_room_moderator(self, uid: str, rid: str, target_uid: str) -> None:
        """addRoomModerator (C.4)."""
        actor = self.require_user(uid, "addRoomModerator")
        if not self.has_permission(uid, "set-moderator", rid):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "addRoomModerator"})
        room = self.rooms.get(rid)
        if room is None:
            raise MeteorError("error-invalid-room", "Invalid room", {"method": "addRoomModerator"})
        target = self.users.get(target_uid)
        if target is None:
            raise MeteorError("error-invalid-user", "Invalid user", {"method": "addRoomModerator"})
        sub = self.subscriptions.get((rid, target_uid))
        if sub is None:
            raise MeteorError(
                "error-user-not-in-room", "User is not in this room", {"method": "addRoomModerator"}
            )
        if "moderator" in sub.get("roles", []):
            raise MeteorError(
                "error-user-already-moderator", "User is already a moderator", {"method": "addRoomModerator"}
            )
        sub.setdefault("roles", []).append("moderator")
        sub["_updatedAt"] = self.now()
        self._system_message("subscription-role-added", room, actor, target.username, role="moderator")
        self._emit(UserNotify(target_uid, "subscriptions-changed", ["updated", copy.deepcopy(sub)]))

    def remove_user_from_room(self, room: Doc, user: User, remover: User | None) -> None:
        """removeUserFromRoom: ``removed`` subscription notice and a ``ru``/``ul`` system message."""
        if not self._unsubscribe(room, user):
            return
        if remover is not None and remover.id != user.id:
            self._system_message("ru", room, remover, user.username)
        else:
            self._system_message("ul", room, user, user.username)

    def _unsubscribe(self, room: Doc, user: User) -> bool:
        """Drop the user's subscription (its room roles go with it) and tell their clients."""
        sub = self._drop_subscription(room["_id"], user.id)
        if sub is None:
            return False
        room["usersCount"] = max(0, room.get("usersCount", 1) - 1)
        removed = {"_id": sub["_id"], "u": {"_id": user.id, "username": user.username}, "rid": room["_id"]}
        removed["t"] = room["t"]
        self._emit(UserNotify(user.id, "subscriptions-changed", ["removed", removed]))
        self._emit(UserNotify(user.id, "rooms-changed", ["removed", {"_id": room["_id"]}]))
        return True

    def kick_user(self, uid: str, rid: str, username: str) -> None:
        """removeUserFromRoomMethod behind channels.kick / groups.kick (7.x), in the server's order."""
        where = {"method": "removeUserFromRoom"}
        if not self.has_permission(uid, "remove-user", rid):
            raise MeteorError("error-not-allowed", "Not allowed", where)
        room = self.rooms.get(rid)
        if room is None or room["t"] not in ("c", "p"):  # allowMemberAction(REMOVE_USER): not in DMs
            raise MeteorError("error-not-allowed", "Not allowed", where)
        actor = self.require_user(uid, "removeUserFromRoom")
        kick_any = "kick-user-from-any-c-room" if room["t"] == "c" else "kick-user-from-any-p-room"
        can_kick_any = self.has_permission(uid, kick_any)
        if not can_kick_any and not self.can_access_room(uid, room):
            raise MeteorError(
                "error-room-not-found",
                'The required "roomId" or "roomName" param provided does not match any group',
            )
        target = self.user_by_username(username)
        if target is None:
            raise MeteorError("error-invalid-user", "Invalid user", where)
        sub = self.subscriptions.get((rid, target.id))
        if sub is None and not can_kick_any:
            raise MeteorError("error-user-not-in-room", "User is not in this room", where)
        owners = [
            s for (r, _u), s in self.subscriptions.items() if r == rid and "owner" in s.get("roles", [])
        ]
        if sub is not None and "owner" in sub.get("roles", []) and len(owners) == 1:
            raise MeteorError(
                "error-you-are-last-owner",
                "You are the last owner. Please set new owner before leaving the room.",
                where,
            )
        self._unsubscribe(room, target)
        # `ru` is posted even for a user who was not subscribed (a kick-user-from-any-* holder),
        # and even when someone removes themselves: no `ul` here, unlike leaving.
        self._system_message("ru", room, actor, target.username)
        self._room_changed(room)

    def ban_user(self, uid: str, rid: str, username: str) -> None:
        """banUserFromRoomMethod (rooms.banUser, 8.3+), its checks in the server's order. The
        subscription is kept as BANNED (here: moved to ``banned``), its room roles dropped, the
        member count lowered, and a ``user-banned`` system message posted by the banning user."""
        where = {"method": "banUserFromRoom"}
        room, actor = self._ban_checks(uid, rid, where)
        target = self.user_by_username_ignoring_case(username)
        if target is None:
            raise MeteorError("error-user-not-found", "User not found", where)
        if (rid, target.id) in self.banned:
            raise MeteorError("error-user-already-banned", "User is already banned from this room", where)
        sub = self.subscriptions.get((rid, target.id))
        if sub is None:
            raise MeteorError("error-user-not-in-room", "User is not in this room", where)
        owners = [
            s for (r, _u), s in self.subscriptions.items() if r == rid and "owner" in s.get("roles", [])
        ]
        if "owner" in sub.get("roles", []) and len(owners) == 1:
            raise MeteorError(
                "error-you-are-last-owner",
                "You are the last owner. Please set new owner before banning the user.",
                where,
            )
        self._drop_subscription(rid, target.id)
        sub["status"] = "BANNED"
        sub["roles"] = [r for r in sub.get("roles", []) if r not in ("moderator", "owner", "leader")]
        sub["_updatedAt"] = self.now()
        self.banned[(rid, target.id)] = sub
        room["usersCount"] = max(0, room.get("usersCount", 1) - 1)
        self._system_message("user-banned", room, actor, target.username)
        self._emit(UserNotify(target.id, "subscriptions-changed", ["updated", copy.deepcopy(sub)]))
        self._room_changed(room)

    def unban_user(self, uid: str, rid: str, username: str) -> None:
        """unbanUserFromRoom (rooms.unbanUser, 8.3+): the banned subscription is deleted, so the
        user is no longer banned but not a member either (they may join or be invited again)."""
        where = {"method": "unbanUserFromRoom"}
        room, actor = self._ban_checks(uid, rid, where)
        target = self.user_by_username_ignoring_case(username)
        if target is None:
            raise MeteorError("error-user-not-found", "User not found", where)
        sub = self.banned.pop((rid, target.id), None)
        if sub is None:
            raise MeteorError("error-user-not-banned", "User is not banned from this room", where)
        self._system_message("user-unbanned", room, actor, target.username)
        removed = {"_id": sub["_id"], "u": {"_id": target.id, "username": target.username}, "rid": rid}
        self._emit(UserNotify(target.id, "subscriptions-changed", ["removed", removed]))
        self._room_changed(room)

    def banned_users(self, rid: str) -> list[User]:
        """The users banned from ``rid``, earliest ban first (rooms.bannedUsers sorts by ``ts``)."""
        subs = sorted((s for (r, _u), s in self.banned.items() if r == rid), key=lambda s: s["ts"])
        return [self.users[s["u"]["_id"]] for s in subs if s["u"]["_id"] in self.users]

    def _ban_checks(self, uid: str, rid: str, where: Doc) -> tuple[Doc, User]:
        """The checks both ban methods make before looking at the target: ``ban-user`` in the
        room first (so an outsider learns nothing), a channel or group, access to it."""
        if not self.has_permission(uid, "ban-user", rid):
            raise MeteorError("error-not-allowed", "Not allowed", where)
        room = self.rooms.get(rid)
        if room is None or room["t"] not in ("c", "p"):  # allowMemberAction(BAN): not in DMs
            raise MeteorError("error-not-allowed", "Not allowed", where)
        actor = self.users.get(uid)
        if actor is None:
            raise MeteorError("error-invalid-user", "Invalid user", where)
        if not self.can_access_room(uid, room):
            raise MeteorError(
                "error-room-not-found",
                'The required "roomId" or "roomName" param provided does not match any group',
            )
        return room, actor

    # ---------------------------------------------------------------- messages

    def _insert(self, message: Doc, room: Doc) -> None:
        self.messages[message["_id"]] = message
        self._room_messages.setdefault(message["rid"], {})[message["_id"]] = message
        # notifyUsersOnMessage: every new message writes the room (msgs), so the room's
        # _updatedAt moves (BaseRaw.updateOne); a reply only in its thread leaves lm and
        # lastMessage alone.
        room["msgs"] = room.get("msgs", 0) + 1
        room["_updatedAt"] = message["ts"]
        if not message.get("tmid") or message.get("tshow"):
            room["lm"] = message["ts"]
            room["lastMessage"] = _last_message(message)
        rid = room["_id"]
        for member in self._room_members.get(rid, ()):
            sub = self.subscriptions.get((rid, member))
            if sub is not None and member != message["u"]["_id"]:
                sub["unread"] = sub.get("unread", 0) + 1
                sub["alert"] = True
        self._emit_message(message)

    def _system_message(self, t: str, room: Doc, user: User, msg: str = "", **extra: Any) -> Doc:
        now = self.now()
        message: Doc = {
            "_id": self.ids.id(),
            "t": t,
            "rid": room["_id"],
            "ts": now,
            "msg": msg,
            "u": {"_id": user.id, "username": user.username, "name": user.name},
            "groupable": False,
            "_updatedAt": now,
            **extra,
        }
        self._insert(message, room)
        return message

    def _mentions(self, text: str, uid: str, rid: str) -> tuple[list[Doc], list[Doc]]:
        mentions: list[Doc] = []
        for name in dict.fromkeys(_MENTION.findall(text)):
            if name in ("all", "here"):
                permission = "mention-all" if name == "all" else "mention-here"
                if not self.has_permission(uid, permission, rid):
                    # send_message() tells the sender with an ephemeral message (RC-ATALL).
                    raise MeteorError("error-action-not-allowed", "Notify all in this room not allowed")
                mentions.append({"_id": name, "username": name})
                continue
            user = self.user_by_username(name)
            if user is not None:
                mentions.append(
                    {"_id": user.id, "username": user.username, "name": user.name, "type": "user"}
                )
        channels: list[Doc] = []
        for name in dict.fromkeys(_CHANNEL.findall(text)):
            room = self.room_by_id_or_name(name=name)
            if room is not None and room["t"] in ("c", "p"):
                channels.append({"_id": room["_id"], "name": room["name"]})
        return mentions, channels

    def send_message(
        self,
        uid: str,
        rid: str,
        text: str,
        *,
        tmid: str | None = None,
        tshow: bool | None = None,
        mid: str | None = None,
        alias: str | None = None,
        emoji: str | None = None,
        avatar: str | None = None,
        attachments: list[Doc] | None = None,
        files: list[Doc] | None = None,
        groupable: bool | None = None,
    ) -> Doc:
        """sendMessage / executeSendMessage (C.1, RC-SENDMSG). ``files`` (with ``groupable``)
        come from sendFileMessage only: the message's ``file`` is the first of them.

        Like the server, a failure is also reported to the sender as an ephemeral message on
        ``<uid>/message``."""
        try:
            message = self._send_message(
                uid, rid, text, tmid, tshow, mid, alias, emoji, avatar, attachments, files, groupable
            )
            return message
        except MeteorError as exc:
            self._ephemeral(uid, rid, exc.reason or str(exc.error))
            raise
        except PlainError as exc:
            self._ephemeral(uid, rid, exc.notice or exc.message)
            raise

    def _ephemeral(self, uid: str, rid: str, text: str) -> None:
        notice = {
            "_id": self.ids.id(),
            "rid": rid,
            "ts": self.now(),
            "msg": text,
            "u": {"_id": "rocket.cat", "username": "rocket.cat"},
            "private": True,
        }
        self._emit(UserNotify(uid, "message", [notice]))

    def _send_message(
        self,
        uid: str,
        rid: str,
        text: str,
        tmid: str | None,
        tshow: bool | None,
        mid: str | None,
        alias: str | None,
        emoji: str | None,
        avatar: str | None,
        attachments: list[Doc] | None,
        files: list[Doc] | None = None,
        groupable: bool | None = None,
    ) -> Doc:
        if tshow and not tmid:
            raise MeteorError("invalid-params", "tshow provided but missing tmid", {"method": "sendMessage"})
        user = self.require_user(uid, "sendMessage")
        room = self.rooms.get(rid)
        if room is None:
            raise MeteorError("error-invalid-room", "Invalid room", {"method": "sendMessage"})
        if not self.can_access_room(uid, room):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "sendMessage"})
        self._can_send_message(user, room)
        max_size = self.setting("Message_MaxAllowedSize")
        if isinstance(max_size, int) and len(text) > max_size:
            raise MeteorError("error-message-size-exceeded", "Message size exceeds Message_MaxAllowedSize")
        if (alias or avatar or emoji) and not self.has_permission(uid, "message-impersonate", rid):
            raise MeteorError("error-action-not-allowed", "Not allowed", {"method": "sendMessage"})
        if mid is not None and mid in self.messages:
            # Mongo's duplicate-key error on insert (exact server text UNCONFIRMED).
            raise MeteorError("error-duplicate-id", "Message with this id already exists")
        parent: Doc | None = None
        if tmid:
            parent = self.messages.get(tmid)
            if parent is not None and parent.get("tmid"):
                parent = self.messages.get(parent["tmid"])  # no nested threads: attach to the root
            if parent is None or parent["rid"] != rid:
                raise MeteorError("error-invalid-message", "Invalid message", {"method": "sendMessage"})
        mentions, channels = self._mentions(text, uid, rid)
        now = self.now()
        message: Doc = {
            "_id": mid or self.ids.id(),
            "rid": rid,
            "msg": text,
            "ts": now,
            "u": user.ref(),
            "_updatedAt": now,
            "urls": [],
            "mentions": mentions,
            "channels": channels,
            "md": _md(text),
        }
        if alias:
            message["alias"] = alias
        if emoji:
            message["emoji"] = emoji
        if avatar:
            message["avatar"] = avatar
        if attachments:
            message["attachments"] = attachments
        if files:
            message["file"] = files[0]
            message["files"] = files
        if groupable is not None:
            message["groupable"] = groupable
        if parent is not None:
            message["tmid"] = parent["_id"]
            message["tshow"] = bool(tshow)
        self._insert(message, room)
        if parent is not None:
            parent["tcount"] = parent.get("tcount", 0) + 1
            parent["tlm"] = now
            replies = parent.setdefault("replies", [])
            if uid not in replies:
                replies.append(uid)
            parent["_updatedAt"] = now
            self._emit_message(parent)
        return message

    # ---------------------------------------------------------------- uploads

    def insert_upload(
        self,
        uid: str,
        rid: str,
        *,
        name: str,
        declared_type: str | None,
        data: bytes,
        content: Doc | None = None,
        temporary: bool = True,
    ) -> Doc:
        """The Uploads store's insert after a form was read (rooms.media, rooms.upload): the
        filter's validateFileUpload, then the record. ``temporary`` files (rooms.media) expire a
        day later unless rooms.mediaConfirm posts them."""
        room = self.rooms.get(rid)
        if room is None or uid not in self.users or not self.can_access_room(uid, room):
            # validateFileUpload answers false and the UploadFS filter refuses (text unconfirmed).
            raise MeteorError("invalid-file", "File does not match filter")
        if not self.setting("FileUpload_Enabled"):
            raise MeteorError("error-file-upload-disabled", "File upload is disabled")
        if room["t"] == "d" and not self.setting("FileUpload_Enabled_Direct"):
            raise MeteorError(
                "error-direct-message-file-upload-not-allowed", "File sharing not allowed in direct messages"
            )
        max_size = self.setting("FileUpload_MaxFileSize")
        if isinstance(max_size, int) and max_size > -1 and len(data) > max_size:
            raise MeteorError("error-file-too-large", f"File exceeds allowed size of {max_size} bytes")
        encrypted = isinstance(content, dict) and bool(content.get("algorithm") and content.get("ciphertext"))
        if encrypted and not self.setting("E2E_Enable_Encrypt_Files"):
            raise MeteorError("error-invalid-file-type", "Encrypted files are not allowed")
        # An end-to-end file says nothing about itself: its type is always the generic one.
        kind = "application/octet-stream" if encrypted else mime_type(declared_type, name)
        white = "application/octet-stream" if encrypted else self.setting("FileUpload_MediaTypeWhiteList")
        if not is_valid_content_type(kind, white, self.setting("FileUpload_MediaTypeBlackList")):
            raise MeteorError("error-invalid-file-type", "File type is not accepted.")
        held = sum(len(b) for b in self.upload_data.values())
        if held + len(data) > self.upload_store_bytes:
            raise PlainError("sandbox: the in-memory upload store is full")
        return self._store_upload(uid, rid, name, kind, bytes(data), content, temporary)

    def _store_upload(
        self, uid: str, rid: str, name: str, kind: str, data: bytes, content: Doc | None, temporary: bool
    ) -> Doc:
        now = self.now()
        fid = self.ids.id()
        doc: Doc = {
            "_id": fid,
            "name": name,
            "size": len(data),
            "type": kind,
            "rid": rid,
            "userId": uid,
            "store": "GridFS:Uploads",
            "complete": True,
            "uploading": False,
            "progress": 1,
            "extension": name.rsplit(".", 1)[-1].lower() if "." in name else "",
            "uploadedAt": now,
            "_updatedAt": now,
            "path": f"{FILE_UPLOAD_PREFIX}{fid}/{encode_uri(name)}",
        }
        if content is not None:
            doc["content"] = content
        if temporary:
            doc["expiresAt"] = now + _UPLOAD_EXPIRY
        # uploadsOnValidate measures bmp/jpeg/png/gif/webp with sharp; here PNG, GIF and JPEG.
        size = (
            image_size(data) if re.fullmatch(r"image/((x-windows-)?bmp|p?jpeg|png|gif|webp)", kind) else None
        )
        if size is not None:
            doc["identify"] = {"format": kind.split("/", 1)[1], "size": {"width": size[0], "height": size[1]}}
        self.uploads[fid] = doc
        self.upload_data[fid] = data
        return doc

    def send_file_message(
        self,
        uid: str,
        rid: str,
        file_id: str,
        msg_data: Doc,
        description: str | None,
        file_name: str | None = None,
    ) -> Doc | None:
        """rooms.mediaConfirm: sendFileMessage with the upload ``file_id``, which must be the
        caller's and sent to ``rid`` (Uploads.findOneByIdAndUserIdAndRoomId; older 7.x source
        looked it up by id alone), optionally renamed to ``file_name``; then the file is no longer
        temporary. None where sendFileMessage answers false (no such room, or no access)."""
        upload = self.uploads.get(file_id)
        if (
            upload is None
            or upload["userId"] != uid
            or upload["rid"] != rid
            or upload.get("typeGroup") == "thumb"
        ):
            raise MeteorError("invalid-file")
        max_size = self.setting("Message_MaxAllowedSize")
        if description is not None and isinstance(max_size, int) and len(description) > max_size:
            raise MeteorError("error-message-size-exceeded")
        self.require_user(uid, "sendFileMessage")
        room = self.rooms.get(rid)
        if room is None or not self.can_access_room(uid, room):
            return None
        for key in msg_data:
            if key not in _FILE_MESSAGE_KEYS:
                raise PlainError(f"Match error: Unknown key in field {key}")
        if description is not None:
            upload["description"] = description
        if file_name:
            upload["name"] = file_name
            upload["path"] = f"{FILE_UPLOAD_PREFIX}{upload['_id']}/{encode_uri(file_name)}"
        files, attachments = self._file_attachments(upload, uid)
        message = self.send_message(
            uid,
            rid,
            str(msg_data.get("msg") or ""),
            tmid=msg_data.get("tmid"),
            alias=msg_data.get("alias"),
            emoji=msg_data.get("emoji"),
            avatar=msg_data.get("avatar"),
            attachments=attachments,
            files=files,
            groupable=bool(msg_data.get("groupable", False)),
        )
        upload.pop("expiresAt", None)  # Uploads.confirmTemporaryFile
        return message

    def _file_attachments(self, upload: Doc, uid: str) -> tuple[list[Doc], list[Doc]]:
        """parseFileIntoMessageAttachments: ``files`` (the upload, then its thumbnail) and one
        attachment. Links are server-relative (``/file-upload/<id>/<encodeURI(name)>``)."""
        kind, name = upload["type"], upload["name"]
        url = upload["path"]
        files: list[Doc] = [
            {
                "_id": upload["_id"],
                "name": name,
                "type": kind or "file",
                "size": upload["size"],
                "format": (upload.get("identify") or {}).get("format", ""),
            }
        ]
        attachment: Doc = {"title": name, "type": "file"}
        if upload.get("description") is not None:
            attachment["description"] = upload["description"]
        attachment |= {"title_link": url, "title_link_download": True}
        group = kind.split("/", 1)[0] if "/" in kind else ""
        if group == "image":
            attachment |= {
                "image_url": url,
                "image_type": kind,
                "image_size": upload["size"],
                "fileId": upload["_id"],
            }
            size = (upload.get("identify") or {}).get("size")
            if size:
                attachment["image_dimensions"] = dict(size)
            thumb = self._thumbnail(upload, uid)
            if thumb is not None:
                # The picture shown in the room is the thumbnail; the original stays at title_link.
                attachment["image_url"] = thumb["path"]
                attachment["image_type"] = thumb["type"]
                attachment["image_dimensions"] = dict(thumb["identify"]["size"])
                files.append(
                    {
                        "_id": thumb["_id"],
                        "name": thumb["name"],
                        "type": thumb["type"],
                        "size": thumb["size"],
                        "format": thumb["identify"]["format"],
                        "typeGroup": "thumb",
                    }
                )
        elif group in ("audio", "video"):
            attachment |= {
                f"{group}_url": url,
                f"{group}_type": kind,
                f"{group}_size": upload["size"],
                "fileId": upload["_id"],
            }
        else:
            attachment |= {
                "format": name.rsplit(".", 1)[-1].upper() if "." in name else "",
                "size": upload["size"],
            }
            attachment["fileId"] = upload["_id"]
        return files, [attachment]

    def _thumbnail(self, upload: Doc, uid: str) -> Doc | None:
        """createImageThumbnail: only with thumbnails on, for a picture not smaller than the
        thumbnail box in both sides. The server resizes with sharp; the sandbox keeps the
        original's bytes in a separate upload (its own id, ``thumb-<name>``) and states the size a
        fit inside the box would have, so a client can tell the thumbnail from the original."""
        if not self.setting("Message_Attachments_Thumbnails_Enabled"):
            return None
        size = (upload.get("identify") or {}).get("size")
        if not size:
            return None  # not measured here; the server's sharp would try (unmodelled)
        box_w = int(self.setting("Message_Attachments_Thumbnails_Width") or 480)
        box_h = int(self.setting("Message_Attachments_Thumbnails_Height") or 360)
        width, height = int(size["width"]), int(size["height"])
        if width < box_w and height < box_h:
            return None
        scale = min(box_w / max(width, 1), box_h / max(height, 1))
        thumb_size = {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}
        kind = "image/png" if upload["type"] == "image/svg+xml" else upload["type"]
        data = self.upload_data[upload["_id"]]
        thumb = self._store_upload(uid, upload["rid"], f"thumb-{upload['name']}", kind, data, None, False)
        thumb["typeGroup"] = "thumb"
        thumb["originalFileId"] = upload["_id"]
        thumb["identify"] = {"format": kind.split("/", 1)[1], "size": thumb_size}
        # The server links the thumbnail under the original's name (sendFileMessage.ts).
        thumb["path"] = f"{FILE_UPLOAD_PREFIX}{thumb['_id']}/{encode_uri(upload['name'])}"
        return thumb

    def can_read_file(self, upload: Doc, uid: str | None, token: str | None) -> bool:
        """requestCanAccessFiles for a caller naming a user (rc_uid/rc_token query or cookies, else
        the X-User-Id/X-Auth-Token headers), FileUpload_ProtectFiles being on."""
        user = self.user_by_token(uid, token)
        if user is None:
            return False
        members_only = bool(self.setting("FileUpload_Restrict_to_room_members"))
        who_can_access = bool(self.setting("FileUpload_Restrict_to_users_who_can_access_room"))
        if not members_only and not who_can_access:
            return True
        if members_only and not who_can_access:
            return (upload["rid"], user.id) in self.subscriptions
        if who_can_access and not members_only:
            room = self.rooms.get(upload["rid"])
            return room is not None and self.can_access_room(user.id, room)
        return False  # both on: the server's own code lets nobody through

    def get_message(self, uid: str, mid: str) -> Doc:
        message = self.messages.get(mid)
        if message is None:
            raise MeteorError("error-invalid-message", "Invalid message", {"method": "getSingleMessage"})
        room = self.rooms[message["rid"]]
        if not self.can_access_room(uid, room):
            raise MeteorError("error-action-not-allowed", "Not allowed", {"method": "getSingleMessage"})
        return message

    def _can_send_message(self, user: User, room: Doc) -> None:
        """validateRoomMessagePermissions' read-only and mute checks (canSendMessage.ts), which
        sendMessage and updateMessage both run for the acting user. Both throw plain Errors: REST
        answers ``{"success": false, "error": <text>}`` without an errorType, DDP a 500."""
        if (
            room.get("ro")
            and not self.has_permission(user.id, "post-readonly", room["_id"])
            and user.username not in room.get("unmuted", [])
        ):
            text = "You can't send messages because the room is readonly."
            raise PlainError(text, text)
        if user.username in room.get("muted", []):
            raise PlainError("You_have_been_muted", "You have been muted and cannot speak in this room")

    def update_message(self, uid: str, mid: str, text: str, attachments: list[Any] | None = None) -> Doc:
        """updateMessage (C.1): ``edit-message`` in the room, or own message with editing allowed.
        ``attachments`` (the DDP method only) replace the message's own; [] removes them."""
        user = self.require_user(uid, "updateMessage")
        message = self.messages.get(mid)
        if message is None:
            raise MeteorError("error-invalid-message", "Invalid message", {"method": "updateMessage"})
        room = self.rooms[message["rid"]]
        if not self.can_access_room(uid, room):
            raise MeteorError("error-action-not-allowed", "Not allowed", {"method": "updateMessage"})
        can_edit = self.has_permission(uid, "edit-message", room["_id"])
        own = message["u"]["_id"] == uid
        if not can_edit and not (self.setting("Message_AllowEditing") and own):
            raise MeteorError(
                "error-action-not-allowed",
                "Message editing not allowed",
                {"method": "updateMessage", "action": "Message_editing"},
            )
        if message.get("t") and message.get("t") != "e2e":
            raise MeteorError("error-invalid-message", "Invalid message", {"method": "updateMessage"})
        # executeUpdateMessage runs canSendMessage for the editor after the edit permission: in a
        # read-only room even a holder of edit-message needs post-readonly (or an unmute).
        self._can_send_message(user, room)
        max_size = self.setting("Message_MaxAllowedSize")
        if isinstance(max_size, int) and len(text) > max_size:
            raise MeteorError("error-message-size-exceeded", "Message size exceeds Message_MaxAllowedSize")
        mentions, channels = self._mentions(text, uid, room["_id"])
        now = self.now()
        message.update(
            msg=text,
            md=_md(text),
            mentions=mentions,
            channels=channels,
            editedAt=now,
            editedBy={"_id": user.id, "username": user.username},
            _updatedAt=now,
        )
        if attachments is not None:
            message["attachments"] = attachments
        # notifyUsersOnMessage on an edit: the room is written (and its _updatedAt moves) only
        # when the edited message is its lastMessage; an edit of an older one leaves the room be.
        last = room.get("lastMessage")
        if (not message.get("tmid") or message.get("tshow")) and (not last or last.get("_id") == mid):
            room["lastMessage"] = _last_message(message)
            room["_updatedAt"] = now
        self._emit_message(message)
        return message

    def can_delete_message(self, uid: str, message: Doc) -> bool:
        """canDeleteMessage (RC-CANDELETE)."""
        rid = message["rid"]
        if self.has_permission(uid, "force-delete-message", rid):
            return True
        if not self.setting("Message_AllowDeleting"):
            return False
        allowed = self.has_permission(uid, "delete-message", rid)
        own = message["u"]["_id"] == uid and self.has_permission(uid, "delete-own-message")
        if not allowed and not own:
            return False
        # Last, and a plain Error rather than false: in a read-only room the deleting user needs
        # post-readonly or an explicit unmute (force-delete-message returned true above already).
        room = self.rooms[rid]
        user = self.users.get(uid)
        username = user.username if user is not None else None
        if (
            room.get("ro")
            and not self.has_permission(uid, "post-readonly", rid)
            and username
            and username not in room.get("unmuted", [])
        ):
            raise PlainError("You can't delete messages because the room is readonly.")
        return True

    def delete_message(self, uid: str, mid: str) -> Doc:
        """deleteMessage (B.5): notify ``deleteMessage``, or a ``t:"rm"`` tombstone when
        ``Message_ShowDeletedStatus`` is on or the message is a thread parent."""
        user = self.require_user(uid, "deleteMessage")
        message = self.messages.get(mid)
        if message is None:
            raise MeteorError(
                "error-action-not-allowed",
                "Not allowed",
                {"method": "deleteMessage", "action": "Delete_message"},
            )
        if not self.can_delete_message(uid, message):
            raise MeteorError(
                "error-action-not-allowed",
                "Not allowed",
                {"method": "deleteMessage", "action": "Delete_message"},
            )
        now = self.now()
        self._to_trash({**copy.deepcopy(message), "_deletedAt": now})
        if self.setting("Message_ShowDeletedStatus") or message.get("tcount", 0) > 0:
            for key in ("md", "blocks", "tshow"):
                message.pop(key, None)
            message.update(
                msg="",
                t="rm",
                urls=[],
                mentions=[],
                attachments=[],
                reactions={},
                editedAt=now,
                editedBy={"_id": user.id, "username": user.username},
                _updatedAt=now,
            )
            self._emit_message(message)
        else:
            self._remove(mid)
            self._emit(RoomNotify(message["rid"], "deleteMessage", [{"_id": mid}]))
        self._after_removal(message, now)
        return message

    def _remove(self, mid: str) -> Doc:
        message = self.messages.pop(mid)
        self._room_messages.get(message["rid"], {}).pop(mid, None)
        return message

    def _to_trash(self, doc: Doc) -> None:
        self.trash[doc["_id"]] = doc
        self._room_trash.setdefault(doc["rid"], {})[doc["_id"]] = doc

    def _in_room(self, rid: str) -> Iterable[Doc]:
        return self._room_messages.get(rid, {}).values()

    def _after_removal(self, message: Doc, now: datetime) -> None:
        # deleteMessage: the room's lastMessage is reset when it was this one, and the message
        # count is decreased either way, so every deletion moves the room's _updatedAt.
        room = self.rooms[message["rid"]]
        room["msgs"] = max(0, room.get("msgs", 0) - 1)
        room["_updatedAt"] = now
        last = room.get("lastMessage")
        if not last or last.get("_id") == message["_id"]:
            visible = [
                m
                for m in self._in_room(room["_id"])
                if not m.get("t") and (not m.get("tmid") or m.get("tshow"))
            ]
            newest = max(visible, key=lambda m: m["ts"], default=None)
            if newest is None:
                room.pop("lastMessage", None)
            else:
                room["lastMessage"] = _last_message(newest)
        tmid = message.get("tmid")
        parent = self.messages.get(tmid) if tmid else None
        if parent is not None and parent.get("tcount", 0) > 0:
            parent["tcount"] -= 1
            parent["_updatedAt"] = now
            self._emit_message(parent)

    def set_reaction(self, uid: str, mid: str, emoji: str, should_react: bool | None = None) -> Doc:
        """setReaction: toggles (or sets) the user's reaction; the message is re-emitted with
        its ``editedAt`` untouched (B.2)."""
        user = self.require_user(uid, "setReaction")
        message = self.messages.get(mid)
        if message is None:
            # executeSetReaction answers an unknown message like a refusal.
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "setReaction"})
        room = self.rooms[message["rid"]]
        if not self.can_access_room(uid, room):
            raise MeteorError("not-authorized", "Not Authorized", {"method": "setReaction"})
        name = emoji if emoji.startswith(":") else f":{emoji}:"
        reactions: Doc = message.setdefault("reactions", {})
        usernames: list[str] = reactions.setdefault(name, {"usernames": []})["usernames"]
        reacted = user.username in usernames
        want = not reacted if should_react is None else should_react
        if want and not reacted:
            usernames.append(user.username)
        elif not want and reacted:
            usernames.remove(user.username)
        if not usernames:
            del reactions[name]
        if not reactions:
            del message["reactions"]
        message["_updatedAt"] = self.now()
        self._emit_message(message)
        return message

    def pin_message(self, uid: str, mid: str) -> Doc:
        """pinMessage (F.1, RC-PIN): returns the ``message_pinned`` system message, or the
        original if it was already pinned. Checks in the server's order."""
        message = self.messages.get(mid)
        if message is None or not message.get("rid"):
            raise MeteorError("error-invalid-message", "Message you are pinning was not found", dict(_PIN))
        if not self.setting("Message_AllowPinning"):
            raise MeteorError("error-action-not-allowed", "Message pinning not allowed", dict(_PIN))
        room = self.rooms[message["rid"]]
        if not self.has_permission(uid, "pin-message", room["_id"]) or not self.can_access_room(uid, room):
            raise MeteorError("not-authorized", "Not Authorized", {"method": "pinMessage"})
        if message.get("pinned"):
            return message
        user = self.require_user(uid, "pinMessage")
        now = self.now()
        message.update(pinned=True, pinnedAt=now, pinnedBy={"_id": user.id, "username": user.username})
        message["_updatedAt"] = now
        self._emit_message(message)
        author = message["u"]["username"]
        attachment: Doc = {
            "text": message.get("msg", ""),
            "author_name": author,
            "author_icon": f"/avatar/{author}",
            "ts": message["ts"],
            "attachments": copy.deepcopy(message.get("attachments", [])),
        }
        kind = "message_pinned_e2e" if message.get("t") == "e2e" else "message_pinned"
        return self._system_message(kind, room, user, "", attachments=[attachment])

    def unpin_message(self, uid: str, mid: str) -> Doc:
        """unpinMessage (F.1, RC-PIN): the caller must also be subscribed; a message in a room
        they are not subscribed to is reported as not found."""
        unpin = {"method": "unpinMessage", "action": "Message_pinning"}
        if not self.setting("Message_AllowPinning"):
            raise MeteorError("error-action-not-allowed", "Message pinning not allowed", unpin)
        message = self.messages.get(mid)
        if message is None or (message["rid"], uid) not in self.subscriptions:
            raise MeteorError("error-invalid-message", "Message you are unpinning was not found", unpin)
        rid = message["rid"]
        if not self.has_permission(uid, "pin-message", rid):
            raise MeteorError("not-authorized", "Not Authorized", {"method": "unpinMessage"})
        user = self.require_user(uid, "unpinMessage")
        # pinnedAt is left as it was; pinnedBy names who unpinned (F.1).
        message.update(pinned=False, pinnedBy={"_id": user.id, "username": user.username})
        message["_updatedAt"] = self.now()
        self._emit_message(message)
        return message

    def clean_history(
        self,
        uid: str,
        rid: str,
        *,
        latest: datetime,
        oldest: datetime,
        inclusive: bool = False,
        limit: int = 0,
        exclude_pinned: bool = False,
        files_only: bool = False,
        ignore_threads: bool = False,
        ignore_discussion: bool = False,
        users: list[str] | None = None,
    ) -> int:
        """cleanRoomHistory (C.3, B.5): ``users`` are usernames; emits ``deleteMessageBulk``."""
        if not self.has_permission(uid, "clean-channel-history", rid):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "cleanRoomHistory"})
        usernames = list(users or [])

        def in_range(m: Doc) -> bool:
            ts: datetime = m["ts"]
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        candidates = sorted((m for m in self._in_room(rid) if in_range(m)), key=lambda m: m["ts"])
        selected: list[Doc] = []
        for m in candidates:
            if exclude_pinned and m.get("pinned"):
                continue
            if usernames and m["u"]["username"] not in usernames:
                continue
            if ignore_threads and ("tmid" in m or "tcount" in m):
                continue
            if ignore_discussion and m.get("drid"):
                continue
            if files_only and not m.get("file"):
                continue
            selected.append(m)
        if limit:
            selected = selected[:limit]
        # Without ignoreThreads, thread parents and replies are pruned like any message in the
        # range (there is no cascade to replies outside it); with it, both are kept.
        ids = [m["_id"] for m in selected]
        now = self.now()
        for mid in ids:
            message = self._remove(mid)
            self._to_trash({**message, "_deletedAt": now})
        room = self.rooms[rid]
        room["msgs"] = max(0, room.get("msgs", 0) - len(ids))
        ts_range = {("$gte" if inclusive else "$gt"): oldest, ("$lte" if inclusive else "$lt"): latest}
        # notify.deleteMessageBulk as cleanRoomHistory broadcasts it; `ids` only with a limit.
        payload: Doc = {
            "rid": rid,
            "excludePinned": exclude_pinned,
            "ignoreDiscussion": ignore_discussion,
            "ts": ts_range,
            "users": usernames,
        }
        if limit:
            payload["ids"] = ids
        if ids:
            self._emit(RoomNotify(rid, "deleteMessageBulk", [payload]))
        return len(ids)

    def history(
        self,
        rid: str,
        *,
        latest: datetime | None = None,
        oldest: datetime | None = None,
        inclusive: bool = False,
        offset: int = 0,
        count: int = 20,
        show_thread_messages: bool = True,
    ) -> list[Doc]:
        """Messages newest first, the way getChannelHistory pages them (C.3)."""
        # No ``latest`` means "now" on the real server; with a frozen test clock a message can
        # share now's millisecond, so treat it as no upper bound rather than excluding it.

        def keep(m: Doc) -> bool:
            ts: datetime = m["ts"]
            if inclusive:
                if (latest is not None and ts > latest) or (oldest is not None and ts < oldest):
                    return False
            elif (latest is not None and ts >= latest) or (oldest is not None and ts <= oldest):
                return False
            return show_thread_messages or not m.get("tmid") or bool(m.get("tshow"))

        found = sorted(
            (m for m in self._in_room(rid) if keep(m)),
            key=lambda m: m["ts"],
            reverse=True,
        )
        return found[offset : offset + count] if count else found[offset:]

    def sync_messages(self, uid: str, rid: str, last_update: datetime) -> tuple[list[Doc], list[Doc]]:
        """messages/get behind chat.syncMessages: updated since, and deleted since (from trash)."""
        room = self.rooms.get(rid)
        if room is None or not self.can_access_room(uid, room):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "messages/get"})
        updated = sorted(
            (m for m in self._in_room(rid) if m["_updatedAt"] > last_update),
            key=lambda m: m["ts"],
            reverse=True,
        )
        deleted = [
            {"_id": d["_id"], "_deletedAt": d["_deletedAt"]}
            for d in self._room_trash.get(rid, {}).values()
            if d["_deletedAt"] > last_update and d["_id"] not in self.messages
        ]
        return updated, deleted

    # ---------------------------------------------------------------- moderation reports

    def report_message(self, uid: str, mid: str, description: str) -> Doc:
        """reportMessage (C.1): files a report into the moderation console."""
        user = self.require_user(uid, "reportMessage")
        if not description or not description.strip():
            raise MeteorError("error-invalid-description", "Invalid description", {"method": "reportMessage"})
        message = self.messages.get(mid)
        if message is None:
            raise MeteorError("error-invalid-message_id", "Invalid message id", {"method": "reportMessage"})
        room = self.rooms[message["rid"]]
        if not self.can_access_room(uid, room):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "reportMessage"})
        now = self.now()
        report: Doc = {
            "_id": self.ids.id(),
            "message": copy.deepcopy(message),
            "description": description,
            "ts": now,
            "reportedBy": _reporter(user),
            "room": {
                "_id": room["_id"],
                "name": room.get("name", ""),
                "fname": room.get("fname", ""),
                "t": room["t"],
            },
            "_hidden": False,
            "_updatedAt": now,
        }
        self.reports.append(report)
        return report

    def report_user(self, uid: str, target_uid: str, description: str) -> Doc:
        user = self.require_user(uid, "reportUser")
        target = self.users.get(target_uid)
        if target is None:
            raise MeteorError("error-invalid-user", "Invalid user id provided.")
        now = self.now()
        report: Doc = {
            "_id": self.ids.id(),
            "description": description,
            # moderation.reportUser's projection of the reported user: _id, name, username,
            # emails, createdAt (moderation.user.reportsByUserId gathers the e-mails from here).
            "reportedUser": {
                "_id": target.id,
                "username": target.username,
                "name": target.name,
                "emails": [{"address": target.email(), "verified": True}],
                "createdAt": target.created_at,
            },
            "reportedBy": _reporter(user),
            "ts": now,
            "_hidden": False,
            "_updatedAt": now,
        }
        self.user_reports.append(report)
        return report

    # The console's reads follow ModerationReports (packages/models): message reports and user
    # reports share one collection there (a user report has no ``message``); here they are two
    # lists, ``reports`` and ``user_reports``, each in insertion order, which is the collection's
    # natural order that an unsorted ``$group`` walks.

    def reports_by_users(
        self,
        latest: datetime | None,
        oldest: datetime | None,
        *,
        selector: str = "",
        sort: dict[str, int] | None = None,
    ) -> list[Doc]:
        """findMessageReportsGroupedByUser: open message reports in ``(oldest, latest)`` grouped by
        the reported message's author.

        The group takes ``$first`` with no sort before it, so ``message``, ``msgId`` and ``ts`` are
        those of the author's first report in natural order (the oldest filed), never "the newest
        message": further reported messages of a listed user are only counted. Groups are then
        sorted by ``sort`` (default: that first report's ``ts``, newest first).
        """
        groups = _open_grouped(
            self.reports,
            lambda r: _in_range(r["ts"], latest, oldest) and _message_report_matches(selector, r),
            lambda r: r["message"]["u"]["_id"],
        )
        docs = []
        for author, found in groups.items():
            rooms: list[Doc] = []
            for report in found:
                if report["room"] not in rooms:  # $addToSet
                    rooms.append(report["room"])
            docs.append({"_id": {"user": author}, "reports": found[0], "rooms": rooms, "count": len(found)})
        ordered = _mongo_sort(docs, sort or {"reports.ts": -1})
        out = []
        for group in ordered:
            first = group["reports"]
            u = first["message"]["u"]
            doc: Doc = {
                "message": first["message"].get("msg"),
                "msgId": first["message"]["_id"],
                "ts": first["ts"],
                "username": u.get("username"),
                "name": u.get("name"),
                "userId": u["_id"],
                "isUserDeleted": u["_id"] not in self.users,
                "count": group["count"],
                "rooms": group["rooms"],
            }
            out.append({k: v for k, v in doc.items() if v is not None})  # $project drops missing paths
        return out

    def user_reports_grouped(
        self,
        latest: datetime | None,
        oldest: datetime | None,
        *,
        selector: str = "",
        sort: dict[str, int] | None = None,
    ) -> list[Doc]:
        """findUserReports: open user reports in range, sorted newest first *before* grouping by
        the reported user, so each group carries that user's newest report."""
        groups = _open_grouped(
            sorted(self.user_reports, key=lambda r: r["ts"], reverse=True),
            lambda r: _in_range(r["ts"], latest, oldest) and _user_report_matches(selector, r),
            lambda r: r["reportedUser"]["_id"],
        )
        docs = [{"_id": uid, "reports": found[0], "count": len(found)} for uid, found in groups.items()]
        ordered = _mongo_sort(docs, sort or {"reports.ts": -1})
        return [
            {"reportedUser": g["reports"]["reportedUser"], "ts": g["reports"]["ts"], "count": g["count"]}
            for g in ordered
        ]

    def reported_messages_of(
        self, user_id: str, *, selector: str = "", sort: dict[str, int] | None = None
    ) -> list[Doc]:
        """findReportedMessagesByReportedUserId: the user's open message reports (one per report,
        not per message), newest first; the selector looks at the message text only."""
        found = _open_sorted(
            self.reports,
            lambda r: (
                r["message"]["u"]["_id"] == user_id
                and (not selector or _matches(selector, r["message"].get("msg")))
            ),
            sort,
        )
        return [{"_id": r["_id"], "message": r["message"], "ts": r["ts"], "room": r["room"]} for r in found]

    def user_reports_of(
        self, user_id: str, *, selector: str = "", sort: dict[str, int] | None = None
    ) -> list[Doc]:
        """findUserReportsByReportedUserId: the open reports about a user, newest first."""
        found = _open_sorted(
            self.user_reports,
            lambda r: r["reportedUser"]["_id"] == user_id and _user_report_matches(selector, r),
            sort,
        )
        keys = ("_id", "description", "ts", "reportedBy", "reportedUser")
        return [{k: r[k] for k in keys if k in r} for r in found]

    def reports_of_message(
        self, msg_id: str, *, selector: str = "", sort: dict[str, int] | None = None
    ) -> list[Doc]:
        """findReportsByMessageId: the open reports of one message, newest first."""
        found = _open_sorted(
            self.reports,
            lambda r: r["message"]["_id"] == msg_id and _message_report_matches(selector, r),
            sort,
        )
        keys = ("_id", "description", "reportedBy", "ts", "room")
        return [{k: r[k] for k in keys if k in r} for r in found]

    def has_open_message_report(self, *, user_id: str | None = None, msg_id: str | None = None) -> bool:
        return any(
            not r["_hidden"]
            and (
                (user_id is not None and r["message"]["u"]["_id"] == user_id) or r["message"]["_id"] == msg_id
            )
            for r in self.reports
        )

    def dismiss_reports(
        self, uid: str, *, user_id: str | None, msg_id: str | None, reason: str | None, action: str | None
    ) -> int:
        """hideMessageReportsByUserId / hideMessageReportsByMessageId: an updateMany with no
        ``_hidden`` filter, so reports hidden before get their moderationInfo overwritten too.
        Returns how many reports were open before."""
        moderator = self.require_user(uid, "dismissReports")
        return self._hide(
            self.reports,
            (lambda r: r["message"]["u"]["_id"] == user_id)
            if user_id
            else (lambda r: r["message"]["_id"] == msg_id),
            moderator.id,
            reason or "No reason provided",
            action or "None",
        )

    def dismiss_user_reports(self, uid: str, *, user_id: str, reason: str, action: str) -> int:
        """hideUserReportsByUserId: every report about the user, open or not."""
        moderator = self.require_user(uid, "dismissUserReports")
        return self._hide(
            self.user_reports, lambda r: r["reportedUser"]["_id"] == user_id, moderator.id, reason, action
        )

    def _hide(
        self, reports: list[Doc], which: Callable[[Doc], bool], moderator: str, reason: str, action: str
    ) -> int:
        now = self.now()
        was_open = 0
        for report in reports:
            if not which(report):
                continue
            was_open += not report["_hidden"]
            report["_hidden"] = True
            report["_updatedAt"] = now
            report["moderationInfo"] = {
                "hiddenAt": now,
                "moderatedBy": moderator,
                "reason": reason,
                "action": action,
            }
        return was_open

    # ---------------------------------------------------------------- users administration

    def set_active_status(self, uid: str, target_uid: str, active: bool) -> User:
        target = self.users.get(target_uid)
        if target is None:
            raise MeteorError("error-invalid-user", "Invalid user", {"method": "setUserActiveStatus"})
        target.active = active
        target.updated_at = self.now()
        if not active:
            # setUserActiveStatus unsets every login token, personal access tokens included.
            target.tokens.clear()
            self._emit(UserNotify(target_uid, "force_logout", []))
        return target


def message_options(body: Mapping[str, Any]) -> dict[str, Any]:
    """The optional fields of a message to send, as chat.postMessage, chat.sendMessage and the
    sendMessage method all take them (missing ones None)."""
    return {key: body.get(key) for key in ("tmid", "tshow", "alias", "emoji", "avatar", "attachments")}


def _reporter(user: User) -> Doc:
    """A report's ``reportedBy``: the reporter as both report methods store them."""
    return {"_id": user.id, "username": user.username, "name": user.name, "createdAt": user.created_at}


def _in_range(ts: datetime, latest: datetime | None, oldest: datetime | None) -> bool:
    """The console's ``ts: {$lt: latest, $gt: oldest}``. No ``latest`` means "now" on the server;
    with a frozen test clock a report can share now's millisecond, so it is no upper bound here."""
    return (latest is None or ts < latest) and (oldest is None or ts > oldest)


def _matches(selector: str, *fields: Any) -> bool:
    """The console's selector: the escaped text as a case-insensitive regex, so a substring."""
    needle = selector.lower()
    return any(isinstance(f, str) and needle in f.lower() for f in fields)


def _message_report_matches(selector: str, report: Doc) -> bool:
    """No selector, or one found in the message's text, the report's description or the
    author's username or name."""
    message = report["message"]
    return not selector or _matches(
        selector,
        message.get("msg"),
        report.get("description"),
        message["u"].get("username"),
        message["u"].get("name"),
    )


def _user_report_matches(selector: str, report: Doc) -> bool:
    """No selector, or one found in the reported user's username or name."""
    user = report["reportedUser"]
    return not selector or _matches(selector, user.get("username"), user.get("name"))


def _open_grouped(
    reports: Iterable[Doc], keep: Callable[[Doc], bool], key: Callable[[Doc], str]
) -> dict[str, list[Doc]]:
    """``$match`` and ``$group``: the open reports ``keep`` selects, by ``key``, each group in the
    order walked (its ``$first`` first)."""
    groups: dict[str, list[Doc]] = {}
    for report in reports:
        if not report["_hidden"] and keep(report):
            groups.setdefault(key(report), []).append(report)
    return groups


def _open_sorted(reports: list[Doc], keep: Callable[[Doc], bool], sort: dict[str, int] | None) -> list[Doc]:
    """The open reports ``keep`` selects, newest first unless ``sort`` says otherwise."""
    return _mongo_sort([r for r in reports if not r["_hidden"] and keep(r)], sort or {"ts": -1})


def _dotted(doc: Doc, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _mongo_sort(docs: list[Doc], sort: dict[str, int]) -> list[Doc]:
    """A stable sort by several dotted keys, missing values first when ascending (as MongoDB)."""
    out = list(docs)
    for path, direction in reversed(list(sort.items())):
        out.sort(
            key=lambda d: (_dotted(d, path) is not None, _sortable(_dotted(d, path))),
            reverse=direction == -1,
        )
    return out


def _sortable(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.timestamp()
    return value if isinstance(value, int | float | str) else str(value)
