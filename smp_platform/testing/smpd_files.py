"""Synthetic SMPD-format datasets for the scale benchmark (and tests at any size).

The files are what :func:`smp_platform.sources.read_source` ("smpd") parses: a ``train_``
prefix, JSON arrays per aspect, column-oriented user data, image paths (to images that do not
exist) and labels. The shape mimics SMPD: users with Zipf-distributed post counts, heavy-tailed
photo counts, 16 months of timestamps, a few categories, titles and tags from a small vocabulary.
The label grows with the author's (hidden) follower count and the number of tags, plus noise;
SMPD has no follower column, so the model sees followers only through photo_count and ispro,
which are drawn from them.

Per-post values are generated as numpy arrays and written in chunks of plain dicts, so memory
stays far below one Python object per field per post for the whole set at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from smp_platform.sources.assembly import gc_paused

PREFIX = "train"
CHUNK = 10_000
START = datetime(2015, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 487 * 86_400  # 16 months

# category -> (subcategories, concepts, words that its titles and tags favour)
CATEGORIES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "Travel&Active&Sports": (
        ["Travel", "Sports"],
        ["beach", "mountain", "soccer"],
        ["travel", "beach", "sunset", "hiking", "sea", "trip", "sport"],
    ),
    "Food": (
        ["Drinks", "Cooking"],
        ["coffee", "cake", "pizza"],
        ["food", "delicious", "coffee", "dinner", "recipe", "cake", "homemade"],
    ),
    "Animal": (
        ["Pets", "Wildlife"],
        ["dog", "cat", "bird"],
        ["dog", "cat", "cute", "bird", "wildlife", "pet", "nature"],
    ),
    "Urban": (
        ["Architecture", "Street"],
        ["bridge", "skyline", "street"],
        ["city", "street", "architecture", "night", "lights", "building", "urban"],
    ),
    "Fashion": (
        ["Clothes", "Beauty"],
        ["dress", "makeup", "shoes"],
        ["fashion", "style", "model", "portrait", "beauty", "outfit", "girl"],
    ),
}
COMMON_WORDS = [
    "photo",
    "canon",
    "nikon",
    "light",
    "color",
    "blue",
    "red",
    "green",
    "love",
    "happy",
    "summer",
    "winter",
    "friends",
    "family",
    "art",
    "black",
    "white",
    "photography",
    "landscape",
    "flower",
    "sky",
    "tree",
    "water",
    "life",
    "day",
]
TIMEZONES = [
    ("+00:00", "Europe/London"),
    ("-05:00", "America/New_York"),
    ("+01:00", "Europe/Berlin"),
    ("-08:00", "America/Los_Angeles"),
    ("+08:00", "Asia/Shanghai"),
    ("+09:00", "Asia/Tokyo"),
]


def write_smpd_dataset(
    out_dir: Path, n_posts: int, *, seed: int = 0, n_users: int | None = None
) -> Path:
    """Write ``n_posts`` synthetic SMPD posts under ``out_dir`` and return that folder."""
    if n_posts < 1:
        raise ValueError(f"n_posts must be at least 1, got {n_posts}")
    with gc_paused():
        return _write(Path(out_dir), n_posts, seed=seed, n_users=n_users)


def _write(out_dir: Path, n_posts: int, *, seed: int, n_users: int | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_users = n_users or max(1, n_posts // 20)

    users = _users(rng, n_users)
    # Zipf-like activity: a few users post a lot, most post once or twice.
    activity = 1.0 / np.arange(1, n_users + 1) ** 1.1
    author = rng.choice(n_users, size=n_posts, p=activity / activity.sum())
    posts = _posts(rng, n_posts, author, users)

    _write_array(out_dir / f"{PREFIX}_text.json", _text_records(posts, users))
    _write_array(out_dir / f"{PREFIX}_category.json", _category_records(posts, users))
    _write_array(
        out_dir / f"{PREFIX}_temporalspatial_information.json", _temporal_records(posts, users)
    )
    _write_array(
        out_dir / f"{PREFIX}_additional_information.json", _additional_records(posts, users)
    )
    _write_user_data(out_dir / f"{PREFIX}_user_data.json", posts["author"], users)
    _write_lines(
        out_dir / f"{PREFIX}_img_filepath.txt",
        (
            f"{PREFIX}/{users['uid'][a]}/{pid}.jpg"
            for a, pid in zip(posts["author"], posts["pid"], strict=True)
        ),
    )
    _write_lines(out_dir / f"{PREFIX}_label.txt", (f"{v:.2f}" for v in posts["label"]))
    return out_dir


def _users(rng: np.random.Generator, n_users: int) -> dict[str, np.ndarray]:
    log_followers = rng.normal(6.0, 2.0, n_users)  # heavy-tailed followers (log-normal)
    photo_count = np.exp(0.6 * log_followers + rng.normal(1.5, 1.0, n_users)).astype(np.int64)
    first_date = START.timestamp() - rng.uniform(0, 10 * 365 * 86_400, n_users)
    return {
        "uid": np.array([f"{10_000_000 + i}@N0{i % 9 + 1}" for i in range(n_users)]),
        "log_followers": log_followers,
        "photo_count": photo_count,
        "ispro": (rng.random(n_users) < 1 / (1 + np.exp(-(log_followers - 7.0)))).astype(int),
        "canbuypro": rng.integers(0, 2, n_users),
        "timezone": rng.integers(0, len(TIMEZONES), n_users),
        "first_date": first_date.astype(np.int64),
    }


def _posts(
    rng: np.random.Generator, n_posts: int, author: np.ndarray, users: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    n_tags = np.minimum(rng.geometric(0.12, n_posts) - 1, 60)  # heavy tail, many with few tags
    category = rng.integers(0, len(CATEGORIES), n_posts)
    category_effect = np.linspace(-0.6, 0.6, len(CATEGORIES))[category]
    label = (
        1.0
        + 0.45 * users["log_followers"][author]
        + 0.08 * np.minimum(n_tags, 25)
        + category_effect
        + rng.normal(0, 1.0, n_posts)
    )
    geotagged = rng.random(n_posts) < 0.3
    n_title_words = np.where(rng.random(n_posts) < 0.1, 0, rng.integers(1, 8, n_posts))
    n_words = n_title_words + n_tags
    return {
        "pid": rng.permutation(n_posts) + 100_000,
        "author": author,
        "postdate": (START.timestamp() + rng.uniform(0, SPAN_SECONDS, n_posts)).astype(np.int64),
        "category": category,
        "sub": rng.integers(0, 2, n_posts),
        "concept": rng.integers(0, 3, n_posts),
        "n_title_words": n_title_words,
        # all posts' words drawn at once; post i's are word_index[word_start[i]:][:n_words[i]]
        "word_start": np.concatenate(([0], np.cumsum(n_words)[:-1])),
        "word_index": rng.integers(0, len(_word_pool(0)), int(n_words.sum())),
        "n_tags": n_tags,
        "geotagged": geotagged,
        "latitude": np.where(geotagged, rng.uniform(-60, 70, n_posts), 0.0),
        "longitude": np.where(geotagged, rng.uniform(-180, 180, n_posts), 0.0),
        "geoaccuracy": np.where(geotagged, rng.integers(1, 17, n_posts), 0),
        "label": np.clip(label, 0.0, None),
    }


def _word_pool(category: int) -> list[str]:
    """The words one category draws from: its own words three times as likely as common ones."""
    return list(CATEGORIES.values())[category][2] * 3 + COMMON_WORDS


def _text_records(posts: dict[str, np.ndarray], users: dict[str, np.ndarray]) -> Iterator[dict]:
    pools = [_word_pool(c) for c in range(len(CATEGORIES))]
    for i in range(len(posts["pid"])):
        n_title = int(posts["n_title_words"][i])
        start = int(posts["word_start"][i])
        pool = pools[posts["category"][i]]
        drawn = posts["word_index"][start : start + n_title + int(posts["n_tags"][i])]
        words = [pool[w % len(pool)] for w in drawn]
        yield {
            "Uid": str(users["uid"][posts["author"][i]]),
            "Pid": int(posts["pid"][i]),
            "Title": " ".join(words[:n_title]).capitalize(),
            "Mediatype": "photo",
            "Alltags": " ".join(words[n_title:]),
        }


def _category_records(posts: dict[str, np.ndarray], users: dict[str, np.ndarray]) -> Iterator[dict]:
    names = list(CATEGORIES)
    for i in range(len(posts["pid"])):
        name = names[posts["category"][i]]
        subcategories, concepts, _ = CATEGORIES[name]
        yield {
            "Uid": str(users["uid"][posts["author"][i]]),
            "Pid": int(posts["pid"][i]),
            "Category": name,
            "Subcategory": subcategories[posts["sub"][i]],
            "Concept": concepts[posts["concept"][i]],
        }


def _temporal_records(posts: dict[str, np.ndarray], users: dict[str, np.ndarray]) -> Iterator[dict]:
    for i in range(len(posts["pid"])):
        yield {
            "Uid": str(users["uid"][posts["author"][i]]),
            "Pid": int(posts["pid"][i]),
            "Postdate": str(posts["postdate"][i]),
            "Latitude": f"{posts['latitude'][i]:.6g}",
            "Longitude": f"{posts['longitude'][i]:.6g}",
            "Geoaccuracy": str(posts["geoaccuracy"][i]),
        }


def _additional_records(
    posts: dict[str, np.ndarray], users: dict[str, np.ndarray]
) -> Iterator[dict]:
    for i in range(len(posts["pid"])):
        uid = str(users["uid"][posts["author"][i]])
        yield {
            "Uid": uid,
            "Pid": int(posts["pid"][i]),
            "Pathalias": "None",
            "Ispublic": 1,
            "Mediastatus": "ready",
        }


def _write_joined(out: IO[str], items: Iterator[str], separator: str) -> None:
    """Write items with separators, CHUNK at a time, never holding the whole file."""
    batch: list[str] = []
    first = True
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK:
            out.write(("" if first else separator) + separator.join(batch))
            first, batch = False, []
    if batch:
        out.write(("" if first else separator) + separator.join(batch))


def _write_array(path: Path, records: Iterator[dict]) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        _write_joined(out, (json.dumps(r, ensure_ascii=False) for r in records), ",\n")
        out.write("]\n")


def _write_user_data(path: Path, author: np.ndarray, users: dict[str, np.ndarray]) -> None:
    """Column-oriented, row i for post i (as in the SMPD release); one column at a time."""
    first_date = users["first_date"][author]
    timezone = users["timezone"][author]
    columns: dict[str, Any] = {
        "photo_firstdate": (str(v) for v in first_date),
        "photo_count": (int(v) for v in users["photo_count"][author]),
        "ispro": (int(v) for v in users["ispro"][author]),
        "canbuypro": (int(v) for v in users["canbuypro"][author]),
        "timezone_offset": (TIMEZONES[t][0] for t in timezone),
        "photo_firstdatetaken": (
            datetime.fromtimestamp(int(v), tz=UTC).strftime("%Y-%m-%d %H:%M:%S") for v in first_date
        ),
        "timezone_id": (TIMEZONES[t][1] for t in timezone),
        "user_description": ("" for _ in author),
        "location_description": (TIMEZONES[t][1].split("/")[1] for t in timezone),
    }
    with path.open("w", encoding="utf-8") as out:
        out.write("{")
        for n, (name, values) in enumerate(columns.items()):
            out.write(("" if n == 0 else ", ") + json.dumps(name) + ": ")
            out.write("[")
            _write_joined(out, (json.dumps(v) for v in values), ", ")
            out.write("]")
        out.write("}\n")


def _write_lines(path: Path, lines: Iterator[str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        _write_joined(out, lines, "\n")
        out.write("\n")
