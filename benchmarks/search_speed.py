"""SearchQA speed: world build, BM25 index build, memory, retriever queries/s, expert EM.

Each corpus size runs in a fresh process with an empty cache folder, so build times are cold and
the peak RSS is that size's own. Per size it reports: world generation + passage store time, BM25
index time (``bm25s``), warm open time (cache verification + memory-mapped load), index size on
disk, peak RSS, BM25 queries/s on the questions' own text, and the baseline measured in the same
run: brute-force dense retrieval (cosine over 256-d hashed bag-of-words embeddings, the dense
hook's path) with its embedding time and queries/s; ``ratio`` = BM25 q/s / dense q/s. Then the
expert's and the no-search baseline's exact match on 300 test questions (100 each of 1-3 hops).

    python benchmarks/search_speed.py            # 100k and 1M passages (1M: a few minutes)
    python benchmarks/search_speed.py --quick    # 2k and 20k passages, seconds
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(size: int, queries: int, dense: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TURNGYM_CACHE"] = cache
        from turngym.envs.search import corpus as corpus_module
        from turngym.envs.search.env import SearchQAEnv
        from turngym.envs.search.expert import NoSearchPolicy, SearchExpert, evaluate
        from turngym.envs.search.retriever import (
            BM25Retriever,
            DenseRetriever,
            HashingEmbedder,
            PassageStore,
        )
        from turngym.envs.search.world import generate_world

        row: dict = {"passages": size, "rss_start_mib": _rss_mib()}
        start = time.perf_counter()
        world = generate_world(size, 0)
        folder = Path(cache) / "bench"
        (folder / "bm25").mkdir(parents=True)
        PassageStore.write(folder, world.passages())
        row["generate_s"] = time.perf_counter() - start
        del world
        store = PassageStore(folder)
        start = time.perf_counter()
        BM25Retriever.build(folder / "bm25", store.documents())
        row["bm25_build_s"] = time.perf_counter() - start
        row["index_mib"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        row["rss_build_mib"] = _rss_mib()

        # The env path: build through the cache (questions included), then a warm open.
        env = SearchQAEnv(num_passages=size, questions_per_hop=500, split="test", top_k=3)
        corpus_module.world_corpus.cache_clear()
        start = time.perf_counter()
        corpus_module.world_corpus(size, 0, 500)
        row["warm_open_s"] = time.perf_counter() - start

        texts = [q["question"] for q in env.corpus.questions][:queries]
        texts = (texts * (queries // max(1, len(texts)) + 1))[:queries]
        bm25 = env.corpus.bm25
        start = time.perf_counter()
        for text in texts:
            bm25.search(text, 3)
        row["bm25_qps"] = len(texts) / (time.perf_counter() - start)
        if dense:
            start = time.perf_counter()
            retriever = DenseRetriever(HashingEmbedder(256), store.documents(), batch_size=4096)
            row["dense_embed_s"] = time.perf_counter() - start
            dense_texts = texts[: max(20, len(texts) // 10)]
            start = time.perf_counter()
            for text in dense_texts:
                retriever.search(text, 3)
            row["dense_qps"] = len(dense_texts) / (time.perf_counter() - start)
            row["ratio"] = row["bm25_qps"] / row["dense_qps"]
        row["rss_peak_mib"] = _rss_mib()
        tasks = [t for hop in (1, 2, 3) for t in env.task_ids if t.startswith(f"h{hop}-")][:300]
        row["expert_em"] = evaluate(env, SearchExpert(), tasks)["exact_match"]
        row["nosearch_em"] = evaluate(env, NoSearchPolicy(), tasks)["exact_match"]
        bridge = [t for t in tasks if env._questions[t]["type"] == "bridge"]
        row["nosearch_bridge_em"] = evaluate(env, NoSearchPolicy(), bridge)["exact_match"]
        row["questions"] = len(tasks)
        return row


def _child(size: int, queries: int, dense: bool, out: mp.Queue) -> None:
    # One BLAS thread: on a busy 2-core machine OpenBLAS's thread hand-off made each dense
    # matrix-vector product ~15 ms instead of ~40 us, which measures the machine, not the method.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    out.put(_measure(size, queries, dense))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2k and 20k passages, 200 queries")
    parser.add_argument(
        "--sizes", default=None, help="comma-separated passage counts (default 100000,1000000)"
    )
    parser.add_argument(
        "--queries", type=int, default=None, help="BM25 queries per size (default 1000)"
    )
    parser.add_argument("--no-dense", action="store_true", help="skip the dense baseline")
    args = parser.parse_args()
    sizes = [
        int(s)
        for s in (args.sizes or ("2000,20000" if args.quick else "100000,1000000")).split(",")
    ]
    queries = args.queries or (200 if args.quick else 1000)
    context = mp.get_context("spawn")
    rows = []
    for size in sizes:
        out = context.Queue()
        process = context.Process(target=_child, args=(size, queries, not args.no_dense, out))
        process.start()
        rows.append(out.get())
        process.join()
        print(f"done {size:,} passages", flush=True)
    columns = [
        "passages",
        "generate_s",
        "bm25_build_s",
        "warm_open_s",
        "index_mib",
        "rss_build_mib",
        "rss_peak_mib",
        "bm25_qps",
        "dense_embed_s",
        "dense_qps",
        "ratio",
        "questions",
        "expert_em",
        "nosearch_em",
        "nosearch_bridge_em",
    ]
    print()
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "-")
            cells.append(
                f"{value:,.3g}"
                if isinstance(value, float)
                else f"{value:,}"
                if isinstance(value, int)
                else value
            )
        print(" | ".join(cells))
    print(
        "\nratio = BM25 queries/s / brute-force dense (hashed BoW, 256-d) queries/s, same corpus, same run."
    )


if __name__ == "__main__":
    main()
