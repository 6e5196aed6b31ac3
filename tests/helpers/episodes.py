"""Playing one episode by hand in tests, with the conversation a rollout would build."""

from __future__ import annotations

import gymnasium

from turngym.policy import Conversation

__all__ = ["play"]


def play(
    env: gymnasium.Env, policy, task: str, prefix: tuple[str, ...] = ()
) -> tuple[bool, list[dict]]:
    """Plays one episode of ``task``: first the ``prefix`` actions, then ``policy``.

    Returns whether it succeeded and every ``info`` (reset's first). A privileged policy gets
    ``info["privileged"]``, as ``turngym.rollout`` gives it.
    """
    observation, info = env.reset(options={"task": task})
    conversation = Conversation(messages=[{"role": "system", "content": info["instructions"]}])
    infos = [info]
    for turn in range(env.unwrapped.max_turns):
        conversation.messages.append({"role": "user", "content": observation})
        conversation.admissible_actions = info["admissible_actions"]
        conversation.privileged = (
            info["privileged"] if getattr(policy, "privileged", False) else None
        )
        action = prefix[turn] if turn < len(prefix) else policy.act([conversation])[0]
        observation, _, terminated, truncated, info = env.step(action)
        conversation.messages.append({"role": "assistant", "content": action})
        infos.append(info)
        if terminated or truncated:
            return bool(info["success"]), infos
    raise AssertionError("the episode did not end within max_turns")
