"""Hostile input: byte-order marks, bytes that are not UTF-8, line separators inside lines,
media paths that leave the dataset, overlong lines. Nothing is rewritten or moved silently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from smp_platform.sources import read_source, reason_kind
from tests.unit.test_sources import post, reasons, row_of, smp_video_dir, user, write_smpd

BOM = b"\xef\xbb\xbf"
# Characters str.splitlines() takes for line ends; in these files they are content.
SEPARATORS = ("\u2028", "\x85", "\x0c", "\x1c", "\x0b")


def prepend(path: Path, data: bytes) -> None:
    path.write_bytes(data + path.read_bytes())


# --- byte-order marks -------------------------------------------------------------------------


def test_bom_at_the_start_of_jsonl_files_is_dropped(tmp_path: Path) -> None:
    folder = smp_video_dir(
        tmp_path, [post("P1")], [user("U1")], labels=[{"pid": "P1", "popularity": 2.0}]
    )
    for name in ("x_posts_train.jsonl", "x_users_train.jsonl", "x_popularity_train.jsonl"):
        prepend(folder / name, BOM)

    batch = read_source("smp-video", folder)

    assert batch.quarantine.empty  # no first row lost, and so no cascade onto the user's posts
    assert batch.posts.post_id.tolist() == ["P1"]
    assert batch.labels.popularity.tolist() == [2.0]


def test_bom_at_the_start_of_smpd_files_is_dropped(tmp_path: Path) -> None:
    folder = write_smpd(
        tmp_path, [{"Pid": 1, "Uid": "u1"}, {"Pid": 2, "Uid": "u1"}], labels=["1.5", "2.5"]
    )
    for path in folder.iterdir():
        prepend(path, BOM)

    batch = read_source("smpd", folder)

    assert batch.quarantine.empty
    assert dict(zip(batch.labels.post_id, batch.labels.popularity, strict=True)) == {
        "1": 1.5,
        "2": 2.5,
    }
    assert batch.posts.media_path.tolist() == ["train/u1/1.jpg", "train/u1/2.jpg"]


# --- bytes that are not UTF-8 -----------------------------------------------------------------


def test_a_jsonl_line_that_is_not_utf8_is_quarantined_as_such(tmp_path: Path) -> None:
    folder = smp_video_dir(tmp_path, [post("P1"), post("P2"), post("P3")], [user("U1")])
    posts_file = folder / "x_posts_train.jsonl"
    lines = posts_file.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"text of P2", b"caf\xe9 latin-1")
    posts_file.write_bytes(b"\n".join(lines))

    batch = read_source("smp-video", folder)

    assert batch.posts.post_id.tolist() == ["P1", "P3"]
    assert reasons(batch) == [("x_posts_train.jsonl", 2, None, "not UTF-8")]
    row = batch.quarantine.iloc[0]
    assert "0xe9" in row.reason
    assert "caf\\xe9 latin-1" in row.raw  # shown as an escape, not replaced by U+FFFD
    assert not batch.posts.title.str.contains("\ufffd").any()


def test_smpd_records_and_lines_that_are_not_utf8_are_quarantined_as_such(
    tmp_path: Path,
) -> None:
    folder = write_smpd(
        tmp_path,
        [
            {"Pid": 1, "Uid": "u1", "Title": "MARK"},
            {"Pid": 2, "Uid": "u1"},
            {"Pid": 3, "Uid": "u1"},
        ],
        labels=["1.0", "LABEL", "3.0"],
    )
    text = folder / "t_text.json"
    text.write_bytes(text.read_bytes().replace(b"MARK", b"caf\xe9"))
    label = folder / "t_label.txt"
    label.write_bytes(label.read_bytes().replace(b"LABEL", b"2\xff"))

    batch = read_source("smpd", folder)

    assert batch.posts.post_id.tolist() == ["2", "3"]  # post 2 keeps no label, but is loaded
    assert reasons(batch) == [
        ("t_label.txt", 1, "1", "unknown post"),  # its post was quarantined
        ("t_label.txt", 2, "2", "not UTF-8"),
        ("t_text.json", 1, "1", "not UTF-8"),
    ]
    assert dict(zip(batch.labels.post_id, batch.labels.popularity, strict=True)) == {"3": 3.0}
    assert "caf\\xe9" in row_of(batch, "t_text.json", 1).raw
    assert row_of(batch, "t_label.txt", 2).raw == "2\\xff"


# --- line separators inside lines --------------------------------------------------------------


def test_smpd_positional_files_split_on_newline_only(tmp_path: Path) -> None:
    """30 posts; some image paths and titles hold U+2028, NEL, form feed and other characters
    that str.splitlines() would treat as line ends. Every image and label stays on its post."""
    posts = []
    for pid in range(1, 31):
        odd = SEPARATORS[pid % len(SEPARATORS)] if pid % 3 == 0 else ""
        posts.append({"Pid": pid, "Uid": f"u{pid % 4}", "Title": f"title{odd}of {pid}"})
    labels = [f"{pid}.25" for pid in range(1, 31)]
    folder = write_smpd(tmp_path, posts, labels=labels)
    image_paths = [
        f"train/u{pid % 4}/{SEPARATORS[pid % len(SEPARATORS)] if pid % 3 == 0 else ''}{pid}.jpg"
        for pid in range(1, 31)
    ]
    (folder / "t_img_filepath.txt").write_text("\n".join(image_paths) + "\n", encoding="utf-8")
    assert len((folder / "t_img_filepath.txt").read_text(encoding="utf-8").splitlines()) > 30

    batch = read_source("smpd", folder)

    assert batch.quarantine.empty
    posts_by_id = batch.posts.set_index("post_id")
    for pid in range(1, 31):
        assert posts_by_id.loc[str(pid), "media_path"] == image_paths[pid - 1]
        assert posts_by_id.loc[str(pid), "title"] == posts[pid - 1]["Title"]
    assert dict(zip(batch.labels.post_id, batch.labels.popularity, strict=True)) == {
        str(pid): pid + 0.25 for pid in range(1, 31)
    }


def test_smp_video_lines_split_on_newline_only(tmp_path: Path) -> None:
    # JSON allows U+2028 and NEL unescaped inside strings (control characters it does not).
    titles = ["a\u2028b", "c\x85d", "e\u2029f"]
    folder = smp_video_dir(tmp_path, [], [user("U1")])
    (folder / "x_posts_train.jsonl").write_text(
        "\n".join(
            json.dumps(post(f"P{i}", post_content=title), ensure_ascii=False)
            for i, title in enumerate(titles)
        )
        + "\n",
        encoding="utf-8",
    )

    batch = read_source("smp-video", folder)

    assert batch.quarantine.empty
    assert batch.posts.title.tolist() == titles


# --- media paths --------------------------------------------------------------------------------


def test_media_paths_leaving_the_dataset_are_quarantined_and_never_resolved(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(b"not yours")
    dataset = tmp_path / "dataset"
    folder = write_smpd(
        dataset / "part",
        [{"Pid": pid, "Uid": "u1"} for pid in range(1, 6)],
        labels=["1", "2", "3", "4", "5"],
    )
    inside = dataset / "images" / "ok.jpg"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"jpg")
    (dataset / "images" / "link_out.jpg").symlink_to(secret)
    (dataset / "images" / "link_in.jpg").symlink_to(inside)
    (dataset / "leak").symlink_to(outside, target_is_directory=True)
    (folder / "t_img_filepath.txt").write_text(
        "\n".join(
            [
                str(secret),  # absolute
                "../outside/secret.jpg",  # climbs out of the dataset (and of part/)
                "images/link_out.jpg",  # a link that leads out
                "leak/secret.jpg",  # a folder link that leads out
                "images/link_in.jpg",  # a link that stays inside: fine
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    batch = read_source("smpd", folder)

    assert reasons(batch) == [
        ("t_img_filepath.txt", line, str(line), "unsafe media path") for line in range(1, 5)
    ]
    posts = batch.posts.set_index("post_id")
    assert len(posts) == 5  # the posts stay, without their media
    assert posts.loc[["1", "2", "3", "4"], "media_path"].isna().all()
    assert posts.loc["5", "media_path"] == str(inside.resolve())
    assert not batch.posts.media_path.fillna("").str.contains("secret").any()
    assert len(batch.labels) == 5


def test_smp_video_absolute_media_path_is_quarantined(tmp_path: Path) -> None:
    folder = smp_video_dir(
        tmp_path / "train",
        [post("P1", video_path="/etc/passwd"), post("P2", video_path="train/../../x.mp4")],
        [user("U1")],
    )
    batch = read_source("smp-video", folder)
    assert reasons(batch) == [
        ("x_posts_train.jsonl", 1, "P1", "unsafe media path"),
        ("x_posts_train.jsonl", 2, "P2", "unsafe media path"),
    ]
    assert batch.posts.media_path.isna().all()


# --- overlong lines -----------------------------------------------------------------------------


def test_an_overlong_line_is_quarantined_with_a_clear_reason(tmp_path: Path) -> None:
    folder = smp_video_dir(
        tmp_path, [post("P1"), post("P2", post_content="x" * 5000), post("P3")], [user("U1")]
    )
    batch = read_source("smp-video", folder, max_line_bytes=2000)

    assert batch.posts.post_id.tolist() == ["P1", "P3"]
    (row,) = batch.quarantine.itertuples()
    assert (row.line, reason_kind(row.reason)) == (2, "line too long")
    assert "limit of 2,000" in row.reason
    assert len(row.raw) < 300  # a preview, not the whole line


def test_an_overlong_smpd_line_keeps_later_lines_on_their_posts(tmp_path: Path) -> None:
    folder = write_smpd(
        tmp_path, [{"Pid": p, "Uid": "u1"} for p in (1, 2, 3)], labels=["1.0", "2" * 500, "3.0"]
    )
    batch = read_source("smpd", folder, max_line_bytes=100)
    assert reasons(batch) == [("t_label.txt", 2, "2", "line too long")]
    assert dict(zip(batch.labels.post_id, batch.labels.popularity, strict=True)) == {
        "1": 1.0,
        "3": 3.0,
    }
    assert pd.Series(batch.posts.post_id).tolist() == ["1", "2", "3"]


@pytest.mark.parametrize("name", ["with space", "it's", "données ✓"])
def test_datasets_in_folders_with_odd_names_are_read(tmp_path: Path, name: str) -> None:
    folder = smp_video_dir(tmp_path / name / "train", [post("P1")], [user("U1")])
    media = tmp_path / name / "train" / "U1" / "P1.mp4"
    media.parent.mkdir(parents=True)
    media.write_bytes(b"")
    batch = read_source("smp-video", folder)
    assert batch.quarantine.empty
    assert batch.posts.media_path.tolist() == [str(media.resolve())]
