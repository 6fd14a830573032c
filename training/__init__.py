"""training: MoCo-v2 with ESS-MB and ESS-MW spatial positives (needs torch: ``pip install .[train]``).

Public API::

    from training import TrainConfig, train, MoCo, MoCoConfig, Method, load_encoder
"""

__all__ = ["Method", "MoCo", "MoCoConfig", "TrainConfig", "load_encoder", "train"]


def __getattr__(name: str):
    if name in ("TrainConfig", "train"):
        from training import trainer

        return getattr(trainer, name)
    if name in ("MoCo", "MoCoConfig", "Method"):
        from training import moco

        return getattr(moco, name)
    if name == "load_encoder":
        from training import encoder

        return encoder.load_encoder
    raise AttributeError(f"module 'training' has no attribute {name!r}")
