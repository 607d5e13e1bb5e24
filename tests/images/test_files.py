"""Uploads as the server writes them, parsed into FileRef: thumbnails once, links checked."""

from __future__ import annotations

from typing import Any

import pytest

from bot.models import FileRef, Message, files_of, upload_id
from tests.images.shapes import ORIGINAL, THUMB, e2e_message, image_message, pdf_message


def test_an_image_upload_is_one_file_and_its_thumbnail_is_not_fetched_again() -> None:
    message = Message.from_wire(image_message())
    assert [f.id for f in message.files] == [ORIGINAL]
    f = message.files[0]
    assert f.is_image and f.type == "image/png" and f.size == 183_204
    # Built from the id, the name encoded whole: `#` and `?` cannot start a fragment or a query.
    assert f.path == f"/file-upload/{ORIGINAL}/holiday%20photo%20%231%3F.png"
    assert THUMB not in {x.id for x in message.files}


def test_an_image_without_a_thumbnail_and_a_document() -> None:
    assert [f.id for f in Message.from_wire(image_message(thumbnail=False)).files] == [ORIGINAL]
    (doc,) = Message.from_wire(pdf_message()).files
    assert not doc.is_image and doc.type == "application/pdf"


def test_an_encrypted_upload_is_seen_but_the_message_says_encrypted() -> None:
    message = Message.from_wire(e2e_message())
    assert message.is_encrypted and [f.id for f in message.files] == ["EncUpload00000001"]


def test_a_message_without_uploads_has_none() -> None:
    raw = {"_id": "m", "rid": "r", "msg": "hi", "ts": {"$date": 1}, "u": {"_id": "u", "username": "u"}}
    assert Message.from_wire(raw).files == ()


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/file-upload/Xk3mQ7pL2nR8sT4vW/a.png",
        "//evil.example/file-upload/Xk3mQ7pL2nR8sT4vW/a.png",
        "/file-upload/../api/v1/me/a.png",
        "/file-upload/%2e%2e/a.png",
        "/file-upload/Xk3m%2FQ7/a.png",
        "/file-upload/Xk3mQ7pL2nR8sT4vW",
        "/file-upload//a.png",
        "/file-upload/ab?c/a.png",
        "/file-upload/Xk3mQ7pL2nR8sT4vW\\a.png",
        "/avatar/alice",
        "",
        None,
        42,
    ],
)
def test_links_that_are_not_same_origin_uploads_are_refused(link: Any) -> None:
    assert upload_id(link) is None
    raw = {"attachments": [{"image_url": link, "image_type": "image/png"}]}
    assert files_of(raw) == ()


def test_the_path_fetched_is_built_from_the_id_whatever_the_link_carries() -> None:
    raw = {"attachments": [{"title_link": "/file-upload/AbCdEf123/a.png?x=1#f", "image_type": "image/png"}]}
    (f,) = files_of(raw)
    assert f.path == "/file-upload/AbCdEf123/a.png%3Fx%3D1%23f"


def test_an_attachment_only_upload_counts_with_what_it_claims() -> None:
    raw = {
        "attachments": [
            {"title_link": "/file-upload/AbCdEf123/x.jpg", "image_type": "image/jpeg", "image_size": 10}
        ]
    }
    (f,) = files_of(raw)
    assert (f.id, f.type, f.size, f.path) == ("AbCdEf123", "image/jpeg", 10, "/file-upload/AbCdEf123/x.jpg")


def test_hostile_fields_are_dropped_or_bounded() -> None:
    raw = {
        "files": [
            {"_id": "../../etc", "name": "x", "type": "image/png", "size": 1},
            {"_id": "ok1", "name": ["not", "a", "name"], "type": 7, "size": -5},
            {"_id": "ok2", "name": "n", "type": "image/png", "size": float("nan")},
            {"_id": "ok3", "name": "n", "type": "image/png", "size": True},
            "not an object",
        ]
    }
    files = files_of(raw)
    assert [f.id for f in files] == ["ok1", "ok2", "ok3"]
    assert files[0].name == "" and files[0].type == "" and files[0].size == 0
    assert files[1].size == 0 and files[2].size == 0


def test_a_member_cannot_hide_the_upload_as_a_thumbnail() -> None:
    # An attachment claiming the upload is another's thumbnail: `file` is the upload itself.
    raw = image_message(thumbnail=False)
    raw["attachments"][0]["fileId"] = "SomethingElse0001"
    raw["attachments"][0]["image_url"] = f"/file-upload/{ORIGINAL}/x.png"
    assert [f.id for f in files_of(raw)] == [ORIGINAL]


def test_repr_never_shows_the_file_name() -> None:
    f = FileRef("id1", "secret-name.png", "image/png", 3, "/file-upload/id1/secret-name.png")
    assert "secret" not in repr(f)
