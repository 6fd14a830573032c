"""pairing: spatial positives (ESS-MB, ESS-MW), covisibility, pretext labels, and a loader for any trainer.

Public API::

    from pairing import PairConfig, build_pairs, SpatialPairs, iter_batches, read_pairs
    from pairing import qa_reward  # the reward of an answer to a spatial QA record (pairing.qa)
"""

from pairing.store import PAIRS_NAME, read_pairs

__all__ = ["PAIRS_NAME", "PairConfig", "PartnerSampling", "PositiveRule", "SpatialPairs", "build_pairs", "iter_batches", "qa_reward", "read_pairs"]


def __getattr__(name: str):
    if name in ("PairConfig", "PositiveRule", "build_pairs"):
        from pairing import build

        return getattr(build, name)
    if name in ("SpatialPairs", "PartnerSampling", "iter_batches"):
        from pairing import loader

        return getattr(loader, name)
    if name == "qa_reward":
        from pairing.qa import reward

        return reward.qa_reward
    raise AttributeError(f"module 'pairing' has no attribute {name!r}")
