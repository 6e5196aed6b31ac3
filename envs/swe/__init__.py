"""SWE sandboxes: real repositories, shell and edit tools, tests as reward (see ``env``).

Memory model: a pool worker holds its envs' sandboxes' host side (the docker client, or the local
backend's per-process site folder of pytest, ~15 MB on disk) and up to 16 start trees (the buggy
repository's files, ``sandbox_base._start_tree``); sandboxes live outside it (containers, or
bubblewrap jails per command). ``benchmarks/soak.py``, random policy, 4 envs on 2 workers,
``--mode async``: local backend, 20,000 episodes, worker RSS 57-62 MiB after the first 1,000,
0.00 MiB per 1,000 episodes; docker backend, 400 episodes, 71 -> 80 MiB, flat over 250-400.
Before workers gave freed memory back (``turngym.pool_recycle``), the start trees' churn left holes
in the heap: 67 -> 84 MiB over 1,600 local episodes. Sandboxes on the host stay constant (local
workspaces, site folders and cgroups; containers), and a worker removes its own when it ends
(``turngym.exit_hooks``). ``EnvPool``'s memory ceiling recycles a worker that grows 2 GiB.
"""
