"""The README's own-videos example end to end on the real ps7-arms videos: `gkaan train` with
no other option on persons P1 and P2, then every video of P3, a person never seen, right,
with and without `--motion track` (README "prepare, train, evaluate"; skips without
../shared/data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.model.gkaan import GKAAN

runner = CliRunner()


@pytest.fixture(scope="module")
def ps7_csv(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The README's CSV (P1 and P2 train, P3 test), written outside the data folder, with a
    data cache of its own shared by the module's runs (maps computed once)."""
    root = tmp_path_factory.mktemp("ps7")
    rows = []
    for video in sorted((data_dir / "ps7-arms").glob("*/*.avi")):
        split = "test" if "P3" in video.stem else "train"
        rows.append(f"{video.resolve()},{video.parent.name},{split}")
    csv = root / "ps7_by_person.csv"
    csv.write_text("\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GKAAN_CACHE", str(root / "cache"))
        yield csv


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], ["--motion", "track"]], ids=["default", "motion-track"])
def test_the_readme_example_gets_every_video_of_the_unseen_person_right(
    ps7_csv: Path, options: list[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(ps7_csv), "-o", str(run), "-q", *options])
    assert result.exit_code == 0, result.output
    model = GKAAN.from_pretrained(run / "best")
    assert (model.config.motion == "track") == bool(options)
    predictor = Predictor(model, device="cpu")
    rows = [line.split(",") for line in ps7_csv.read_text().splitlines()]
    tests = [(Path(path), label) for path, label, split in rows if split == "test"]
    right = [predictor.predict_video(path).top_k(1)[0][0] == label for path, label in tests]
    assert len(tests) == 9
    assert sum(right) == 9, [p.name for (p, _), ok in zip(tests, right, strict=True) if not ok]
