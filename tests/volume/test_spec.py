"""The environment's identity (`utils.volume.spec`): every input changes it, and a new one gets a new
directory beside the old, which stays untouched."""

from dataclasses import replace
from pathlib import Path

from tests.support.bootstrap_wheels import unpack_wheel
from tests.support.volume_env import (
    make_settings,
    write_requirements,
)
from utils import volume as volume_env


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.lstat().st_mtime_ns, p.lstat().st_size)
        for p in directory.rglob("*")
    }


def test_a_changed_specification_gets_a_new_directory_and_the_old_one_is_untouched(
    volume: Path, wheelhouse: Path
) -> None:
    requirements = write_requirements(volume, wheelhouse)
    settings = make_settings(volume, requirements)
    old = volume_env.ensure_built(settings)
    before = snapshot(old.build_dir.parent)

    write_requirements(volume, wheelhouse, "huggingface_hub==0.0.1")
    new = volume_env.ensure_built(settings)

    assert new.spec_id != old.spec_id
    assert new.build_dir.parent != old.build_dir.parent
    assert (new.site_packages / "huggingface_hub").is_dir()
    assert snapshot(old.build_dir.parent) == before
    assert volume_env.find_ready(settings) == new


def test_the_spec_id_covers_every_input(volume: Path, wheelhouse: Path) -> None:
    requirements = write_requirements(volume, wheelhouse)
    container = volume / "container-site"
    container.mkdir()
    settings = make_settings(volume, requirements)
    base = volume_env.compute_spec(settings).id
    assert volume_env.compute_spec(make_settings(volume, requirements)).id == base

    ids = {base}
    settings.container_requirements.write_text("numpy==2.4.6\n", encoding="utf-8")
    ids.add(volume_env.compute_spec(settings).id)
    unpack_wheel(wheelhouse / "numpy-1.26.4-py3-none-any.whl", container)
    ids.add(volume_env.compute_spec(replace(settings, container_paths=(container,))).id)
    ids.add(volume_env.compute_spec(replace(settings, extra_packages=("einops==0.8.1",))).id)
    requirements.write_text(
        requirements.read_text(encoding="utf-8") + "# any byte counts\n", encoding="utf-8"
    )
    ids.add(volume_env.compute_spec(settings).id)
    assert len(ids) == 5
