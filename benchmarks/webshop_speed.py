"""WebShop speed: catalog + index build time, and steps/s of search + page render on one core.

Rows (all single-process, single-threaded):

* ``search step``: ``search[<instruction>]`` on the shop, uncached (a new query each step), with the
  results page rendered as WebShop text, then ``back to search``; the goal is >= 2,000 steps/s
  on a 100k-product catalog.
* ``search step, bm25s.retrieve``: the baseline, the same queries through bm25s's own ``retrieve``
  (k=50) plus the same render.
* ``search step, repeated queries``: the same with queries that repeat (a group of rollouts
  of one task), served from the engine's LRU cache.
* ``click step``: opening a result and rendering the item page.
* ``env.step, expert episodes``: full ``WebShopEnv.step`` (info, state key, shaping, reward)
  under the expert policy, each episode a different task (the policy's time is not counted).

Usage: ``python benchmarks/webshop_speed.py`` (100k products) or ``--quick`` (10k products).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=2_000, help="search steps to time")
    parser.add_argument("--quick", action="store_true", help="10k products, 500 steps")
    parser.add_argument(
        "--cache",
        default=None,
        help="cache dir (default: a fresh temporary one, so the build is cold)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.products, args.steps = 10_000, 500
    os.environ["TURNGYM_CACHE"] = args.cache or tempfile.mkdtemp(prefix="turngym-webshop-bench-")

    from turngym.envs.webshop import env as webshop_env
    from turngym.envs.webshop.catalog import GeneratedCatalog
    from turngym.envs.webshop.search import SEARCH_RETURN_N, SearchEngine
    from turngym.envs.webshop.shop import Shop, render_text

    rows: list[tuple[str, float, str]] = []
    start = time.perf_counter()
    catalog = GeneratedCatalog(args.products)
    engine = SearchEngine(catalog)
    build = time.perf_counter() - start
    start = time.perf_counter()
    SearchEngine(GeneratedCatalog(args.products))
    load = time.perf_counter() - start
    rows += [
        ("catalog + index build (cold)", build, "s"),
        ("catalog + index load (warm)", load, "s"),
    ]

    task_ids = catalog.task_ids("train")
    queries = [
        catalog.goal(task_ids[i % len(task_ids)])["instruction_text"] for i in range(args.steps)
    ]
    queries = [f"{q} {i}" for i, q in enumerate(queries)]  # distinct: no LRU hits
    shop = Shop(catalog, engine)
    shop.start(catalog.goal(task_ids[0]))
    for query in queries[:20]:  # warm up product generation caches a little
        engine.search(query + " warm")
    start = time.perf_counter()
    for query in queries:
        shop.step(f"search[{query}]")
        render_text(shop)
        shop.step("click[back to search]")
    ours = _rate(len(queries), time.perf_counter() - start)

    repeated = queries[:50]  # grouped rollouts repeat a task's searches: LRU hits
    for query in repeated:
        engine.search(query)
    start = time.perf_counter()
    for i in range(len(queries)):
        shop.step(f"search[{repeated[i % 50]}]")
        render_text(shop)
        shop.step("click[back to search]")
    cached = _rate(len(queries), time.perf_counter() - start)

    model = engine._model
    tokens = [engine.tokens(q) for q in queries]
    start = time.perf_counter()
    for terms in tokens:
        documents, _ = model.retrieve(
            [terms or ["the"]], k=SEARCH_RETURN_N, show_progress=False, n_threads=0
        )
        shop.results = tuple(engine._asins[i] for i in np.asarray(documents)[0])
        shop.page = "results"
        render_text(shop)
    baseline = _rate(len(tokens), time.perf_counter() - start)

    shop.start(catalog.goal(task_ids[0]))
    shop.step(f"search[{queries[0]}]")
    results = shop.results
    start = time.perf_counter()
    clicks = 0
    for asin in results * 20:
        shop.step(f"click[{asin}]")
        render_text(shop)
        shop.step("click[< prev]")
        clicks += 1
    click_rate = _rate(clicks, time.perf_counter() - start)

    env = webshop_env.WebShopEnv(num_products=args.products)
    from turngym.envs.webshop.expert import WebShopExpert
    from turngym.policy import Conversation

    expert, steps, step_time = WebShopExpert(), 0, 0.0
    for episode in range(max(20, args.steps // 20)):
        obs, info = env.reset(seed=episode)
        conversation = Conversation(
            messages=[{"role": "system", "content": info["instructions"]}],
            admissible_actions=info["admissible_actions"],
            privileged=info["privileged"],
        )
        done = False
        while not done:
            action = expert.act([conversation])[0]
            start = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            step_time += time.perf_counter() - start
            conversation.messages += [
                {"role": "assistant", "content": action},
                {"role": "user", "content": obs},
            ]
            conversation.admissible_actions = info["admissible_actions"]
            done, steps = terminated or truncated, steps + 1
    env_rate = _rate(steps, step_time)

    print(f"\nWebShop speed, {args.products:,} products, one core\n")
    print(f"{'measure':44s} {'value':>12s} {'ratio vs baseline':>18s}")
    for name, value, unit in rows:
        print(f"{name:44s} {value:10.2f} {unit:>1s} {'':>18s}")
    print(f"{'search step, bm25s.retrieve (baseline)':44s} {baseline:8.0f} st/s {1.0:17.2f}x")
    print(f"{'search step, turngym SearchEngine':44s} {ours:8.0f} st/s {ours / baseline:17.2f}x")
    print(
        f"{'search step, repeated queries (LRU hits)':44s} {cached:8.0f} st/s {cached / baseline:17.2f}x"
    )
    print(
        f"{'click step (item page render)':44s} {click_rate:8.0f} st/s {click_rate / baseline:17.2f}x"
    )
    print(f"{'env.step, expert episodes':44s} {env_rate:8.0f} st/s {env_rate / baseline:17.2f}x")
    goal = "meets" if ours >= 2_000 else "misses"
    print(f"\nuncached search steps {goal} the 2,000 steps/s goal ({ours:.0f}/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
