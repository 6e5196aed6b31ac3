"""SWE sandboxes: real repositories, shell and edit tools, tests as reward (see ``env``).

Memory model: a pool worker holds its envs' sandboxes' host side (the docker client, or the local
backend's per-process site folder of pytest, ~15 MB on disk) and up to 16 start trees (the buggy
repository's files, ``sandbox_base._start_tree``); sandboxes live outside it (containers, or
bubblewrap jails per command). ``benchmarks/soak.py``, random policy, 4 envs on 2 workers:
local backend, 1,600 episodes, worker RSS 67 -> 81 MiB over the first 1,000 (caches filling),
then 81 -> 84 MiB, 3.9 MiB per 1,000 episodes over episodes 1,000-1,600 (a window too short to
tell a slow fill from a leak: a SWE episode costs ~2 s here); docker backend, 400 episodes, 71 ->
80 MiB, flat over 250-400. Sandboxes on the host stay constant: local workspaces and site folders
8-10 and cgroups 12 (22 samples), containers 4-9 (a sandbox and a ready grader per env, and
removals in flight; 21 samples). ``EnvPool``'s memory ceiling recycles a worker that grows 2 GiB.
"""
