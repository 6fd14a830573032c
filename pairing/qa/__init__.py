"""Verifiable spatial QA for vision-language models: Spatial-SSRL's five tasks from rendered RGB-D views.

Public API::

    from pairing.qa import QAConfig, QATask, export_qa, qa_reward, read_records, score
    from pairing import qa_reward                 # the reward alone

- :mod:`pairing.qa.tasks`: the tile and depth tasks (reorder, flip, inpaint, depth) and the question type;
- :mod:`pairing.qa.position`: relative 3D position of two objects from depth, pose and object ids;
- :mod:`pairing.qa.objects`: what each object id is (procedural items, categories, yaws);
- :mod:`pairing.qa.images`: every task image drawn from the view and the record's ``meta``;
- :mod:`pairing.qa.reward`: answer parsers and ``0.9 * accuracy + 0.1 * format``;
- :mod:`pairing.qa.export`, :mod:`pairing.qa.records`, :mod:`pairing.qa.sheet`: the export folder.

Reference: Liu et al., "Spatial-SSRL: Enhancing Spatial Understanding via Self-Supervised Reinforcement
Learning", arXiv:2510.27606, 2025.
"""

from pairing.qa.export import QAConfig, QASummary, Split, export_qa
from pairing.qa.objects import SceneObjects, scene_objects
from pairing.qa.position import PositionConfig
from pairing.qa.records import QAError, read_records, read_responses
from pairing.qa.reward import parse_answer, qa_reward, score
from pairing.qa.tasks import DepthTaskConfig, QATask, TileConfig, parse_grid

__all__ = [
    "DepthTaskConfig",
    "PositionConfig",
    "QAConfig",
    "QAError",
    "QASummary",
    "QATask",
    "SceneObjects",
    "Split",
    "TileConfig",
    "export_qa",
    "parse_answer",
    "parse_grid",
    "qa_reward",
    "read_records",
    "read_responses",
    "scene_objects",
    "score",
]
