"""Readers on small hand-written files: good rows, each kind of bad row, unusable input."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from smp_platform.sources import (
    AUTHOR_COLUMNS,
    LABEL_COLUMNS,
    POST_COLUMNS,
    QUARANTINE_COLUMNS,
    SourceError,
    read_source,
    reason_kind,
)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows are dicts (written as JSON) or raw strings (written as they are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def post(pid: str, uid: str = "U1", **fields: Any) -> dict[str, Any]:
    row = {
        "pid": pid,
        "uid": uid,
        "post_content": f"text of {pid}",
        "post_location": "US",
        "post_suggested_words": ["a", "b"],
        "post_text_language": "en",
        "video_path": f"train/{uid}/{pid}.mp4",
        "post_time": "2022-08-25 16:15",
    }
    row.update(fields)
    return row


def user(uid: str, **counts: Any) -> dict[str, Any]:
    row = {
        "uid": uid,
        "user_following_count": 10,
        "user_follower_count": 100,
        "user_likes_count": 1000,
        "user_video_count": 5,
        "user_digg_count": 3,
        "user_heart_count": 1000,
        "user_friend_count": 0,
    }
    row.update(counts)
    return row


def video(pid: str, uid: str = "U1", **fields: Any) -> dict[str, Any]:
    row = {
        "vid": f"V{pid}",
        "pid": pid,
        "uid": uid,
        "video_height": 1024,
        "video_width": 576,
        "video_duration": 13,
        "video_ratio": "540p",
        "video_format": "mp4",
        "music_title": "original sound",
        "music_duration": 16,
    }
    row.update(fields)
    return row


def smp_video_dir(
    root: Path,
    posts: list[Any],
    users: list[Any],
    videos: list[Any] | None = None,
    labels: list[Any] | None = None,
) -> Path:
    write_jsonl(root / "x_posts_train.jsonl", posts)
    write_jsonl(root / "x_users_train.jsonl", users)
    if videos is not None:
        write_jsonl(root / "x_videos_train.jsonl", videos)
    if labels is not None:
        write_jsonl(root / "x_popularity_train.jsonl", labels)
    return root


def row_of(batch: Any, file_suffix: str, line: int) -> Any:
    q = batch.quarantine
    return q[q.source_file.str.endswith(file_suffix) & (q.line == line)].iloc[0]


def reasons(batch: Any) -> list[tuple[str, int, str | None, str]]:
    """(file name, line, post_id, reason kind) per quarantine row, sorted."""
    q = batch.quarantine
    return sorted(
        (Path(f).name, int(line), None if pd.isna(pid) else pid, reason_kind(r))
        for f, line, pid, r in zip(q.source_file, q.line, q.post_id, q.reason, strict=True)
    )


# --- SMP-Video ------------------------------------------------------------------------------


def test_smp_video_good_rows_become_canonical_posts_authors_and_labels(tmp_path: Path) -> None:
    folder = smp_video_dir(
        tmp_path,
        posts=[
            post("P1", "U1"),
            post(
                "P2", "U1", post_time="2023-01-02 03:04", post_content="", post_suggested_words=[]
            ),
        ],
        users=[user("U1")],
        videos=[video("P1"), video("P2", video_width=720)],
        labels=[{"pid": "P1", "uid": "U1", "popularity": 7.5}],
    )
    batch = read_source("smp-video", folder)

    assert list(batch.posts.columns) == list(POST_COLUMNS)
    assert list(batch.authors.columns) == list(AUTHOR_COLUMNS)
    assert list(batch.labels.columns) == list(LABEL_COLUMNS)
    assert list(batch.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert batch.quarantine.empty
    posts = batch.posts.set_index("post_id")
    assert str(batch.posts["posted_at"].dtype) == "datetime64[us]"
    assert posts.loc["P1", "posted_at"] == pd.Timestamp("2022-08-25 16:15")
    assert posts.loc["P2", "posted_at"] == pd.Timestamp("2023-01-02 03:04")
    assert posts.loc["P1", "tags"] == ["a", "b"]
    assert posts.loc["P2", "tags"] == []  # empty lists and empty text are valid
    assert posts.loc["P2", "title"] == ""
    assert posts.loc["P1", "media_type"] == "video"
    assert posts.loc["P2", "media_width"] == 720.0
    assert posts.loc["P1", "music_title"] == "original sound"
    assert posts.loc["P1", "media_path"] == "train/U1/P1.mp4"  # no such file: kept as given
    assert posts.loc["P1", "source_format"] == "smp-video"
    authors = batch.authors.set_index("post_id")
    assert authors.loc["P2", "user_id"] == "U1"
    assert authors.loc["P2", "post_count"] == 5  # user_video_count
    assert authors.loc["P2", "heart_count"] == 1000
    assert batch.labels.to_dict("records") == [{"post_id": "P1", "popularity": 7.5}]


def test_smp_video_media_path_is_absolute_when_the_file_exists(tmp_path: Path) -> None:
    folder = smp_video_dir(tmp_path / "train", [post("P1")], [user("U1")])
    media = tmp_path / "train" / "U1" / "P1.mp4"
    media.parent.mkdir(parents=True)
    media.write_bytes(b"")
    batch = read_source("smp-video", folder)
    assert batch.posts.loc[0, "media_path"] == str(media.resolve())


def test_smp_video_each_malformed_row_is_quarantined_with_reason_and_line(
    tmp_path: Path,
) -> None:
    folder = smp_video_dir(
        tmp_path,
        posts=[
            post("P1"),  # 1 good
            '{"pid": "P2", "uid": ',  # 2 bad JSON
            post("P3", uid=None),  # 3 missing id
            post("P4", post_time="yesterday"),  # 4 unparsable time
            post("P5", uid="NOBODY"),  # 5 user missing
            post("P1", post_content="edited later"),  # 6 conflicting duplicate
            post("P1"),  # 7 exact duplicate: silent
            post("P8", post_suggested_words="not a list", post_content={"a": 1}),  # 8 wrong type
            post("P9", uid="U2"),  # 9 user row was rejected
            {"uid": "U1"},  # 10 no pid
            "[1, 2]",  # 11 not an object
        ],
        users=[user("U1"), user("U2", user_follower_count="lots")],
        labels=[
            {"pid": "P1", "popularity": 3.0},
            {"pid": "P404", "popularity": 1.0},
            {"pid": "P4", "popularity": 2.0},
            {"pid": "P1", "popularity": "high"},
        ],
    )
    batch = read_source("smp-video", folder)

    assert batch.posts["post_id"].tolist() == ["P1"]
    assert batch.posts.loc[0, "title"] == "text of P1"  # the first occurrence is kept
    assert reasons(batch) == [
        ("x_popularity_train.jsonl", 2, "P404", "unknown post"),
        ("x_popularity_train.jsonl", 3, "P4", "unknown post"),
        ("x_popularity_train.jsonl", 4, "P1", "wrong type"),
        ("x_posts_train.jsonl", 2, None, "bad JSON"),
        ("x_posts_train.jsonl", 3, "P3", "missing id"),
        ("x_posts_train.jsonl", 4, "P4", "bad time"),
        ("x_posts_train.jsonl", 5, "P5", "missing user"),
        ("x_posts_train.jsonl", 6, "P1", "conflicting duplicate"),
        ("x_posts_train.jsonl", 8, "P8", "wrong type"),
        ("x_posts_train.jsonl", 9, "P9", "missing user"),
        ("x_posts_train.jsonl", 10, None, "missing id"),
        ("x_posts_train.jsonl", 11, None, "bad JSON"),
        ("x_users_train.jsonl", 2, None, "wrong type"),
    ]
    assert row_of(batch, "posts_train.jsonl", 2).raw == '{"pid": "P2", "uid": '  # as read
    assert "user NOBODY" in row_of(batch, "posts_train.jsonl", 5).reason
    assert "quarantined" in row_of(batch, "posts_train.jsonl", 9).reason
    assert "'lots'" in row_of(batch, "users_train.jsonl", 2).reason
    assert batch.labels.to_dict("records") == [{"post_id": "P1", "popularity": 3.0}]


def test_smp_video_negative_and_missing_counts_are_null_not_quarantined(tmp_path: Path) -> None:
    author = user("U1", user_likes_count=-3, user_heart_count=None, user_digg_count="12")
    del author["user_friend_count"]
    folder = smp_video_dir(tmp_path, posts=[post("P1")], users=[author])

    batch = read_source("smp-video", folder)

    assert batch.quarantine.empty
    author = batch.authors.iloc[0]
    assert pd.isna(author["likes_count"])
    assert pd.isna(author["heart_count"])
    assert pd.isna(author["friend_count"])
    assert author["digg_count"] == 12
    assert str(batch.authors["likes_count"].dtype) == "Int64"


def test_smp_video_video_rows_without_a_post_are_quarantined(tmp_path: Path) -> None:
    folder = smp_video_dir(
        tmp_path,
        [post("P1")],
        [user("U1")],
        videos=[video("P1"), video("P77"), video("P1", video_width="wide")],
    )
    batch = read_source("smp-video", folder)
    assert reasons(batch) == [
        ("x_videos_train.jsonl", 2, "P77", "unknown post"),
        ("x_videos_train.jsonl", 3, "P1", "wrong type"),
    ]
    assert batch.posts.loc[0, "media_width"] == 576.0


def test_smp_video_reads_a_folder_of_folders_as_one_load(tmp_path: Path) -> None:
    smp_video_dir(
        tmp_path / "train", [post("P1")], [user("U1")], labels=[{"pid": "P1", "popularity": 2.0}]
    )
    smp_video_dir(tmp_path / "unlabeled", [post("P2", "U2")], [user("U2"), user("U2")])
    batch = read_source("smp-video", tmp_path)
    assert sorted(batch.posts.post_id) == ["P1", "P2"]
    assert batch.quarantine.empty  # the repeated identical user row is not an error
    assert len(read_source("smp-video", tmp_path, with_labels=False).labels) == 0


def test_smp_video_content_hash_is_stable_and_follows_content(tmp_path: Path) -> None:
    first = read_source("smp-video", smp_video_dir(tmp_path / "a", [post("P1")], [user("U1")]))
    again = read_source("smp-video", smp_video_dir(tmp_path / "b", [post("P1")], [user("U1")]))
    edited = read_source(
        "smp-video",
        smp_video_dir(tmp_path / "c", [post("P1", post_content="new words")], [user("U1")]),
    )
    assert len(first.posts.content_hash[0]) == 16
    # A copy in another folder is the same content; an edit is not.
    assert first.posts.content_hash[0] == again.posts.content_hash[0]
    assert first.posts.content_hash[0] != edited.posts.content_hash[0]
    assert first.authors.content_hash[0] == edited.authors.content_hash[0]


# --- SMPD -----------------------------------------------------------------------------------


def write_smpd(
    folder: Path,
    posts: list[dict[str, Any]],
    *,
    labels: list[str] | None = None,
    user_data: dict[str, list[Any]] | None = None,
    temporal_extra: list[Any] | None = None,
) -> Path:
    """An SMPD part "t" from compact post dicts (Pid, Uid, Title, tags, date, lat, lon, ...)."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, value: Any) -> None:
        (folder / f"t_{name}").write_text(json.dumps(value), encoding="utf-8")

    dump(
        "text.json",
        [
            {
                "Uid": p["Uid"],
                "Pid": p["Pid"],
                "Title": p.get("Title", "a title"),
                "Mediatype": "photo",
                "Alltags": p.get("Alltags", "sky blue"),
            }
            for p in posts
        ],
    )
    dump(
        "temporalspatial_information.json",
        [
            {
                "Uid": p["Uid"],
                "Pid": p["Pid"],
                "Postdate": p.get("Postdate", "1446016778"),
                "Latitude": p.get("Latitude", "0"),
                "Longitude": p.get("Longitude", "0"),
                "Geoaccuracy": p.get("Geoaccuracy", "0"),
            }
            for p in posts
            if "no_time" not in p
        ]
        + (temporal_extra or []),
    )
    dump(
        "category.json",
        [
            {
                "Uid": p["Uid"],
                "Pid": p["Pid"],
                "Category": "Food",
                "Subcategory": "Drinks",
                "Concept": "coffee",
            }
            for p in posts
        ],
    )
    dump(
        "user_data.json",
        user_data
        or {
            "photo_firstdate": ["1171851508"] * len(posts),
            "photo_count": ["37"] * len(posts),
            "ispro": [1] * len(posts),
            "timezone_offset": ["+05:30"] * len(posts),
        },
    )
    (folder / "t_img_filepath.txt").write_text(
        "".join(f"train/{p['Uid']}/{p['Pid']}.jpg\n" for p in posts), encoding="utf-8"
    )
    if labels is not None:
        (folder / "t_label.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return folder


def test_smpd_reader_joins_aspects_and_positional_files(tmp_path: Path) -> None:
    folder = write_smpd(
        tmp_path,
        [
            {"Pid": 775, "Uid": "59@N00", "Postdate": 1446016778, "Alltags": "sky  blue sea"},
            {
                "Pid": "776",
                "Uid": "60@N00",
                "Latitude": "48.85",
                "Longitude": "2.35",
                "Geoaccuracy": "16",
                "Alltags": "",
            },
        ],
        labels=["6.5", "1.25"],
    )
    image = tmp_path / "train" / "60@N00" / "776.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")

    batch = read_source("smpd", folder)

    assert batch.quarantine.empty
    posts = batch.posts.set_index("post_id")
    assert list(posts.index) == ["775", "776"]  # Pid is always a string
    assert posts.loc["775", "posted_at"] == pd.Timestamp(datetime(2015, 10, 28, 7, 19, 38))
    assert posts.loc["775", "tags"] == ["sky", "blue", "sea"]
    assert posts.loc["776", "tags"] == []
    assert pd.isna(posts.loc["775", "latitude"])  # 0, 0 is Flickr's "not geotagged"
    assert posts.loc["776", "latitude"] == 48.85
    assert posts.loc["776", "geo_accuracy"] == 16.0
    assert posts.loc["775", "category"] == "Food"
    assert posts.loc["775", "concept"] == "coffee"
    assert posts.loc["775", "media_type"] == "photo"
    assert posts.loc["775", "media_path"] == "train/59@N00/775.jpg"
    assert posts.loc["776", "media_path"] == str(image.resolve())
    authors = batch.authors.set_index("post_id")
    assert authors.loc["776", "user_id"] == "60@N00"
    assert authors.loc["776", "post_count"] == 37
    assert bool(authors.loc["776", "is_pro"]) is True
    assert authors.loc["776", "timezone_offset"] == 5.5
    assert authors.loc["776", "first_post_at"] == pd.Timestamp("2007-02-19 02:18:28")
    assert pd.isna(authors.loc["776", "follower_count"])
    assert dict(zip(batch.labels.post_id, batch.labels.popularity, strict=True)) == {
        "775": 6.5,
        "776": 1.25,
    }


def test_smpd_bad_values_are_quarantined_against_the_file_that_holds_them(
    tmp_path: Path,
) -> None:
    folder = write_smpd(
        tmp_path,
        [
            {"Pid": 1, "Uid": "u1"},
            {"Pid": 2, "Uid": "u1", "Postdate": "not a date"},
            {"Pid": 3, "Uid": None},
            {"Pid": 4, "Uid": "u2", "no_time": True},
            {"Pid": 5, "Uid": "u2", "Latitude": "north"},
            {"Pid": 6, "Uid": "u2"},
        ],
        labels=["1.0", "2.0", "3.0", "4.0", "5.0", "oops", "7.0"],
        user_data={
            "photo_count": ["10", "10", "10", "10", "10", "many", "10"],
            "ispro": [0, 0, 0, 0, 0, 0, 0],
        },
        temporal_extra=[{"Uid": "u9", "Pid": 99, "Postdate": "1446016778"}],
    )
    batch = read_source("smpd", folder)

    assert batch.posts.post_id.tolist() == ["1"]
    assert reasons(batch) == [
        ("t_label.txt", 2, "2", "unknown post"),  # its post was quarantined
        ("t_label.txt", 3, "3", "unknown post"),
        ("t_label.txt", 4, "4", "unknown post"),
        ("t_label.txt", 5, "5", "unknown post"),
        ("t_label.txt", 6, "6", "wrong type"),
        ("t_label.txt", 7, None, "unknown post"),  # more labels than posts
        ("t_temporalspatial_information.json", 2, "2", "bad time"),
        ("t_temporalspatial_information.json", 4, "5", "wrong type"),
        ("t_temporalspatial_information.json", 6, "99", "unknown post"),
        ("t_text.json", 3, "3", "missing id"),
        ("t_text.json", 4, "4", "bad time"),
        ("t_user_data.json", 6, "6", "wrong type"),
        ("t_user_data.json", 7, None, "unknown post"),
    ]


def test_smpd_without_labels_skips_the_label_file(tmp_path: Path) -> None:
    folder = write_smpd(tmp_path, [{"Pid": 1, "Uid": "u1"}], labels=["x", "9"])
    batch = read_source("smpd", folder, with_labels=False)
    assert batch.labels.empty
    assert batch.quarantine.empty


# --- unusable input -------------------------------------------------------------------------


def test_missing_directory_raises_source_error_saying_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_source("smp-video", tmp_path / "nope")


def test_folder_without_posts_file_raises_source_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match=r"no \*posts\*\.jsonl"):
        read_source("smp-video", tmp_path)
    with pytest.raises(SourceError, match=r"_text\.json"):
        read_source("smpd", tmp_path)


def test_smp_video_without_users_file_raises_source_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x_posts.jsonl", [post("P1")])
    with pytest.raises(SourceError, match="users"):
        read_source("smp-video", tmp_path)


def test_smpd_unparsable_json_file_raises_source_error_with_position(tmp_path: Path) -> None:
    folder = write_smpd(tmp_path, [{"Pid": 1, "Uid": "u1"}])
    (folder / "t_category.json").write_text('[{"Pid": 1,\n "Category": }]')
    with pytest.raises(SourceError, match="line 2"):
        read_source("smpd", folder)


def test_smpd_part_without_temporal_file_raises_source_error(tmp_path: Path) -> None:
    folder = write_smpd(tmp_path, [{"Pid": 1, "Uid": "u1"}])
    (folder / "t_temporalspatial_information.json").unlink()
    with pytest.raises(SourceError, match="temporalspatial"):
        read_source("smpd", folder)
