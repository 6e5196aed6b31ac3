"""TextWorld env family: quest games generated offline with Microsoft's ``textworld`` package.

Ids: ``turngym/TextWorld-v1`` (medium) and ``turngym/TextWorld-{Easy,Medium,Hard}-v1`` (``-v0``:
the same games with the interpreter's raw text, kept loadable by ``turngym.make``; see
CHANGELOG.md). Games are
generated on first use (one per task id = game seed) and cached on disk; see
:mod:`turngym.envs.textworld.env` for actions, observations, rewards and tasks,
:mod:`turngym.envs.textworld.games` for generation and pools, and
:mod:`turngym.envs.textworld.expert` for the walkthrough-following expert.
Needs ``pip install 'turngym[textworld]'`` (textworld >= 1.7 with its bundled Inform 7 compiler).
"""
