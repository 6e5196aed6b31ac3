"""ALFWorld env family: ALFWorld's household tasks on its own TextWorld PDDL engine, offline.

Ids: ``turngym/ALFWorld-v1`` (all six task types), one id per type
(``turngym/ALFWorld-{PickAndPlace,LookAtInLight,Clean,Heat,Cool,PickTwo}-v1``) and
``turngym/ALFWorld-Unseen-v1`` (test split over held-out floor plans); the ``-v0`` ids (the task
also in the first observation) stay loadable by ``turngym.make``, see CHANGELOG.md. Problems are generated over
ALFRED's real floor plans, proven solvable on the engine and cached on disk; the official data set
is played instead when ``data_dir=`` or ``$ALFWORLD_DATA`` holds ``json_2.1.1``. See
:mod:`turngym.envs.alfworld.env` for actions, observations, rewards and tasks,
:mod:`turngym.envs.alfworld.problems` for the generator, :mod:`turngym.envs.alfworld.games` for
verification and the official layout, :mod:`turngym.envs.alfworld.goals` for progress, and
:mod:`turngym.envs.alfworld.expert` for the expert. Needs ``alfworld`` (0.4.2) and ``textworld``
(>= 1.7, with ``fast_downward_textworld``).
"""
