"""Publishing a build (`utils.volume.publish`): exactly one wins, with or without the lock; ready.json is
linked only when absent, and an unreadable one counts as absent."""

import json
import sys
from pathlib import Path

from tests.support.volume_env import (
    INSTALLER,
    WRAPPER,
    builds,
    make_settings,
    run_children,
    spec_dir,
    volume_log,
    write_requirements,
)
from utils import volume as volume_env
from utils.volume import publish
from utils.volume import settings as layout


def test_four_racing_processes_publish_exactly_one_environment(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))

    results = run_children(settings, 4)

    assert len({result["build_dir"] for result in results}) == 1
    assert builds(settings) == [Path(results[0]["build_dir"])]
    assert volume_env.find_ready(settings).build_dir == Path(results[0]["build_dir"])
    # The lock saved the work: the three others waited instead of building and discarding.
    log = volume_log(settings)
    assert log.count("building environment") == 1
    assert "discarding" not in log


def test_without_the_lock_the_first_publisher_wins_and_the_others_discard_theirs(
    volume: Path, wheelhouse: Path
) -> None:
    # The wrapper holds each installer until all four run, so four builds really overlap.
    marks = volume / "marks"
    marks.mkdir()
    wrapped = volume_env.Installer(
        INSTALLER.kind,
        (sys.executable, str(WRAPPER), "--mark", str(marks), "--barrier", "4", "--", *INSTALLER.command),
    )
    settings = make_settings(
        volume, write_requirements(volume, wheelhouse), installer=wrapped, use_lock=False
    )

    results = run_children(settings, 4)

    assert len(list(marks.iterdir())) == 4
    winner = Path(results[0]["build_dir"])
    assert {Path(result["build_dir"]) for result in results} == {winner}
    assert builds(settings) == [winner]
    assert volume_log(settings).count("was published first; discarding") == 3
    assert not list(spec_dir(settings).glob(layout.READY_TEMP_PREFIX + "*"))


def test_publishing_links_only_when_no_ready_json_exists(volume: Path) -> None:
    ready = volume / layout.READY_NAME
    first = volume / "first.tmp"
    first.write_text("first", encoding="utf-8")
    second = volume / "second.tmp"
    second.write_text("second", encoding="utf-8")

    assert publish.link_first(first, ready) is True
    assert publish.link_first(second, ready) is False
    assert ready.read_text(encoding="utf-8") == "first"


def test_an_unreadable_or_inconsistent_ready_json_counts_as_absent(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    first = volume_env.ensure_built(settings)
    ready = first.build_dir.parent / layout.READY_NAME
    valid = json.loads(ready.read_text(encoding="utf-8"))
    broken = [
        b"",
        ready.read_bytes()[:40],
        b"\x00\xff\xfe not json",
        json.dumps({**valid, "build": "b-missing-build"}).encode(),
        json.dumps({**valid, "spec_id": "0" * 16}).encode(),
        json.dumps({**valid, "build": "../escape"}).encode(),
        b"[1, 2]",
    ]
    for content in broken:
        ready.write_bytes(content)
        assert volume_env.find_ready(settings) is None, content

    second = volume_env.ensure_built(settings)

    assert second.build_dir != first.build_dir
    assert volume_env.find_ready(settings) == second
    assert first.build_dir.is_dir()  # complete builds stay: a worker may still use one
