import h5py
import numpy as np

from envsim.job import DatasetConfig, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import RenderConfig
from envsim.store.verify import verify_dataset
from ess.main import main


def _render(out):
    cfg = DatasetConfig(shard_size=5, render=RenderConfig(width=16, height=12),
                        trajectory=TrajectoryConfig(views=12, views_per_trajectory=6))
    render_dataset(resolve_sources(["procedural:1"]), config=cfg, out=out)


def test_verify_finds_each_kind_of_damage(tmp_path, capsys):
    out = tmp_path / "d"
    _render(out)
    assert verify_dataset(out) == {}
    assert main(["verify", str(out)]) == 0
    # A flipped byte near the end of shard 0, NaN depth in shard 1, shard 2 deleted.
    data = bytearray((out / "shard-00000.h5").read_bytes())
    data[-100] ^= 0xFF
    (out / "shard-00000.h5").write_bytes(bytes(data))
    with h5py.File(out / "shard-00001.h5", "r+") as f:
        d = f["depth"][0]
        d[0, 0] = np.nan
        f["depth"][0] = d
    (out / "shard-00002.h5").unlink()
    bad = verify_dataset(out)
    assert set(bad) == {"shard-00000.h5", "shard-00001.h5", "shard-00002.h5"}
    assert any("SHA-256" in p for p in bad["shard-00000.h5"])
    assert any("non-finite depth" in p for p in bad["shard-00001.h5"])
    assert bad["shard-00002.h5"] == ["missing"]
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "shard-00000.h5" in printed and "shard-00002.h5: missing" in printed
    assert main(["verify", str(tmp_path)]) == 2
