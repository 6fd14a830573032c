"""training: MoCo-v2 with ESS-MB and ESS-MW spatial positives, BYOL and SARL, with optional auxiliary heads
(needs torch: ``pip install .[train]``).

Public API::

    from training import TrainConfig, TrainMethod, train, load_encoder
    from training import MoCo, MoCoConfig, Method, BYOL, BYOLConfig, Partners, SARL, SARLConfig, AuxConfig, AuxHead
"""

__all__ = [
    "BYOL",
    "SARL",
    "AuxConfig",
    "AuxHead",
    "BYOLConfig",
    "Method",
    "MoCo",
    "MoCoConfig",
    "Partners",
    "SARLConfig",
    "TrainConfig",
    "TrainMethod",
    "load_encoder",
    "train",
]

_HOMES = {
    "TrainConfig": "config", "TrainMethod": "config", "train": "trainer",
    "MoCo": "moco", "MoCoConfig": "moco", "Method": "moco",
    "BYOL": "byol", "BYOLConfig": "byol", "Partners": "byol",
    "SARL": "sarl", "SARLConfig": "sarl",
    "AuxConfig": "heads", "AuxHead": "heads",
    "load_encoder": "encoder",
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"training.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
