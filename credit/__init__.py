"""Turn-level credit assignment: pure tensor functions over a padded :class:`TurnBatch`.

Every method is ``method(batch, **hyperparameters) -> Tensor[n_traj, max_turns]`` (0 on
padding), runs on whatever device the batch lives on, and loops over neither turns nor
trajectories in Python:

=============  ==============================================================================
method         what it computes
=============  ==============================================================================
``grpo``       group-relative trajectory advantage (mean, optionally std), on every turn
``rloo``       leave-one-out baseline within the group
``reinforce``  discounted reward-to-go minus a none/batch/group baseline
``returns``    discounted reward-to-go ``G_t``
``gae``        generalised advantage estimation from per-turn values
``gigpo``      episode advantage + w * step advantage over anchor states (same group & state)
``salt``       trajectory-graph edge advantages (edges merged across a group's trajectories)
``igpo``       information-gain turn rewards from p(gold answer), F1 on the last turn
``spa``        progress-estimator turn rewards + grounding bonus, then any estimator
``gated``      G-RA reward transform (returns gated per-turn *rewards*, not advantages)
=============  ==============================================================================

>>> from turngym import Trajectory, Turn
>>> from turngym.credit import TurnBatch, gigpo
>>> trajs = [Trajectory(turns=[Turn(action="go", reward=r, state_key="s0")], group_id="g", outcome=r)
...          for r in (1.0, 0.0)]
>>> gigpo(TurnBatch.from_trajectories(trajs)).shape
torch.Size([2, 1])
"""

try:  # every estimator is a tensor function
    import torch  # noqa: F401
except ImportError:
    from turngym.error import missing_dependency

    raise missing_dependency("torch", "credit") from None

from .batch import TurnBatch, action_hash, normalize_action, spread_to_tokens
from .columnar import TrajectoryRecorder
from .gae import gae
from .gated import gated
from .gigpo import gigpo
from .grpo import grpo
from .igpo import igpo
from .reinforce import reinforce
from .returns import returns
from .rloo import rloo
from .salt import salt
from .spa import (
    ProgressEstimator,
    fit_progress_estimator,
    progress_loss,
    progress_train_step,
    spa,
    spa_rewards,
)

__all__ = [
    "ProgressEstimator",
    "TrajectoryRecorder",
    "TurnBatch",
    "action_hash",
    "fit_progress_estimator",
    "gae",
    "gated",
    "gigpo",
    "grpo",
    "igpo",
    "normalize_action",
    "progress_loss",
    "progress_train_step",
    "reinforce",
    "returns",
    "rloo",
    "salt",
    "spa",
    "spa_rewards",
    "spread_to_tokens",
]
