import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_render_and_read_example(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "render_and_read.py"), str(tmp_path / "houses")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "rendered 120 views into 2 shards" in out.stdout
    assert out.stdout.count("centre pixel sees") == 2
