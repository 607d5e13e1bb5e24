"""Upload messages in the shapes Rocket.Chat's sendFileMessage writes them
(apps/meteor/app/file-upload/server/methods/sendFileMessage.ts): ``file`` is ``files[0]``; an
image's ``files`` also lists the thumbnail the server made; its attachment's ``title_link`` and
``fileId`` name the upload and ``image_url`` the thumbnail."""

from __future__ import annotations

from typing import Any

ORIGINAL = "Xk3mQ7pL2nR8sT4vW"  # Random.id(): 17 characters
THUMB = "Yb5cD9eF2gH6jK8mN"


def _file(fid: str, name: str, mime: str, size: int, group: str) -> dict[str, Any]:
    return {
        "_id": fid,
        "name": name,
        "type": mime,
        "size": size,
        "format": mime.split("/")[-1],
        "typeGroup": group,
    }


def image_message(
    mid: str = "msgImage00000001",
    *,
    rid: str = "GENERAL",
    name: str = "holiday photo #1?.png",
    author: str = "alice-id",
    thumbnail: bool = True,
    size: int = 183_204,
) -> dict[str, Any]:
    original = _file(ORIGINAL, name, "image/png", size, "image")
    files = [original]
    link = f"/file-upload/{ORIGINAL}/holiday%20photo%20#1?.png"  # encodeURI leaves # and ? alone
    attachment: dict[str, Any] = {
        "title": name,
        "type": "file",
        "description": "",
        "title_link": link,
        "title_link_download": True,
        "image_url": link,
        "image_type": "image/png",
        "image_size": size,
        "fileId": ORIGINAL,
        "image_dimensions": {"width": 1024, "height": 768},
        "image_preview": "iVBORw0KGgo=",
    }
    if thumbnail:
        files.append(_file(THUMB, f"thumb-{name}", "image/png", 9_214, "image"))
        attachment["image_url"] = f"/file-upload/{THUMB}/holiday%20photo%20#1?.png"
        attachment["image_dimensions"] = {"width": 480, "height": 360}
    return {
        "_id": mid,
        "rid": rid,
        "msg": "",
        "ts": {"$date": 1_767_225_600_000},
        "u": {"_id": author, "username": "alice", "name": "Alice"},
        "_updatedAt": {"$date": 1_767_225_600_000},
        "groupable": False,
        "file": original,
        "files": files,
        "attachments": [attachment],
    }


def pdf_message(mid: str = "msgPdf0000000001", *, rid: str = "GENERAL") -> dict[str, Any]:
    doc = _file("PdfUpload00000001", "minutes.pdf", "application/pdf", 52_000, "application")
    return {
        "_id": mid,
        "rid": rid,
        "msg": "",
        "ts": {"$date": 1_767_225_600_000},
        "u": {"_id": "bob-id", "username": "bob"},
        "file": doc,
        "files": [doc],
        "attachments": [
            {
                "title": "minutes.pdf",
                "type": "file",
                "format": "pdf",
                "description": "",
                "title_link": "/file-upload/PdfUpload00000001/minutes.pdf",
                "title_link_download": True,
                "size": 52_000,
                "fileId": "PdfUpload00000001",
            }
        ],
    }


def e2e_message(mid: str = "msgE2e0000000001", *, rid: str = "SECRET") -> dict[str, Any]:
    """An end-to-end room's upload: the client sends the file encrypted and the message as
    ciphertext (t: e2e); the server keeps the file fields the client gave."""
    enc = _file("EncUpload00000001", "file", "application/octet-stream", 40_000, "")
    return {
        "_id": mid,
        "rid": rid,
        "msg": "",
        "t": "e2e",
        "e2e": "pending",
        "content": {"algorithm": "rc.v1.aes-sha2", "ciphertext": "AAAA"},
        "ts": {"$date": 1_767_225_600_000},
        "u": {"_id": "carol-id", "username": "carol"},
        "file": enc,
        "files": [enc],
    }
