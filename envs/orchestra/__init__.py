"""Multi-agent orchestration: an orchestrator delegates subtasks to specialist workers (PettingZoo).

>>> from turngym.envs import orchestra
>>> env = orchestra.parallel_env("turngym/Orchestra-Toy-v0")
>>> observations, infos = env.reset(seed=0)
>>> env.possible_agents
['orchestrator', 'short_0', 'long_0']
>>> episodes = orchestra.rollout(env, orchestra.expert_policies(env), num_episodes=2)
>>> [episode.success for episode in episodes]
[True, True]

Memory model: a team env holds its member envs in its own process (no pool), so that process is
what could grow: ``turngym/Orchestra-v0`` (WebShop-Small and SearchQA-1hop members), 100,000
random team episodes on one kept env: 115.8 -> 117.2 MiB after a 10,000-episode warm-up, 0.01 MiB
per 1,000 episodes (``python benchmarks/soak.py --env turngym/Orchestra-v0``).
"""

from turngym.envs.orchestra.board import ORCHESTRATOR
from turngym.envs.orchestra.env import FORMAT_PENALTY, OrchestraEnv
from turngym.envs.orchestra.presets import (
    ORCHESTRA_ENVS,
    aec_env,
    list_orchestra_envs,
    parallel_env,
)
from turngym.envs.orchestra.rewards import FAMILIES as ORCHESTRATION_REWARDS
from turngym.envs.orchestra.team import (
    OrchestratorExpert,
    TeamEpisode,
    expert_policies,
    random_policies,
    rollout,
)
from turngym.envs.orchestra.trace import (
    EVENT_TYPES,
    TraceError,
    load_episodes,
    load_traces,
    replay,
    save_episodes,
    save_traces,
    to_trace,
    trace_metrics,
    validate_trace,
)

__all__ = [
    "EVENT_TYPES",
    "FORMAT_PENALTY",
    "ORCHESTRATION_REWARDS",
    "TraceError",
    "ORCHESTRATOR",
    "ORCHESTRA_ENVS",
    "OrchestraEnv",
    "OrchestratorExpert",
    "TeamEpisode",
    "aec_env",
    "expert_policies",
    "list_orchestra_envs",
    "load_episodes",
    "load_traces",
    "parallel_env",
    "random_policies",
    "replay",
    "rollout",
    "save_episodes",
    "save_traces",
    "to_trace",
    "trace_metrics",
    "validate_trace",
]
