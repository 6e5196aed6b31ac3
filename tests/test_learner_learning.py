"""The learner improves a tiny model's mean reward on Corridor with GRPO and with GiGPO/SALT credit.

The tiny model starts weakly informed (about half its episodes succeed); 20 iterations of 8 groups
x 4 episodes take ~20 s on 2 CPU cores. Evaluation uses held-out seeds and 64 episodes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model  # noqa: E402
from turngym.agents.learner import Learner  # noqa: E402
from turngym.agents.learner_config import LearnerConfig  # noqa: E402

#: Required gain in mean episode return (the return ranges over [-0.4, 2]).
MARGIN = 0.4


@pytest.mark.parametrize("credit", ["grpo", "gigpo", "salt"])
def test_learning_improves_mean_reward(tmp_path, credit):
    torch.manual_seed(0)
    config = LearnerConfig(
        model=str(corridor_model()),
        env_kwargs=CORRIDOR_KWARGS,
        credit=credit,
        output_dir=str(tmp_path),
        steps=20,
        groups_per_step=8,
        group_size=4,
        max_new_tokens=4,
        learning_rate=2e-3,
        micro_batch_size=64,
        device="cpu",
        seed=1,
    )
    learner = Learner(config)  # credit from turngym.credit.<credit>
    before = learner.evaluate(num_groups=16)
    learner.train()
    after = learner.evaluate(num_groups=16)
    assert after["reward"] >= before["reward"] + MARGIN, (credit, before, after)
    assert after["success"] > before["success"]
